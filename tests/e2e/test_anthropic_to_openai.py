"""Anthropic SDK → ferryllm → OpenAI-compatible mock provider (JSON)."""
from __future__ import annotations

import anthropic
import pytest

from tests.conftest import make_config
from tests.mockprovider import MockProvider, Reply

TOOLS = [{"name": "get_weather", "description": "Weather for a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}]


def completion(message: dict, finish: str, usage: dict | None = None) -> dict:
    return {"id": "chatcmpl-abc123", "object": "chat.completion", "created": 1700000000,
            "model": "gpt-4.1", "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140,
                               "prompt_tokens_details": {"cached_tokens": 100}}}


async def client_for(gateway, provider, sdk, mock, **route):
    url = await provider(mock)
    base = await gateway(make_config({"oai": ("openai", url)},
                                     [{"match": "claude-", "provider": "oai",
                                       "rewrite_model": "gpt-4.1", **route}]))
    return sdk.anthropic(base)


async def test_tool_use_from_openai_provider(gateway, provider, sdk):
    mock = MockProvider(Reply(body=completion({"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_2", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]}, "tool_calls")))
    client = await client_for(gateway, provider, sdk, mock)
    msg = await client.messages.create(
        model="claude-test-model", max_tokens=256, tools=TOOLS,
        system="You are terse.", messages=[{"role": "user", "content": "Weather in Paris and Oslo?"}])
    assert msg.model == "claude-test-model"
    assert msg.stop_reason == "tool_use"
    assert [(b.type, b.id, b.name, b.input) for b in msg.content] == [
        ("tool_use", "call_1", "get_weather", {"city": "Paris"}),
        ("tool_use", "call_2", "get_weather", {"city": "Oslo"})]
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (20, 100, 20)
    sent = mock.received[0].json
    assert mock.received[0].path == "/v1/chat/completions"
    assert mock.received[0].headers["Authorization"] == "Bearer sk-provider-oai"
    assert sent["model"] == "gpt-4.1"
    assert sent["messages"][0] == {"role": "system", "content": "You are terse."}
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert "anthropic-version" not in {k.lower() for k in mock.received[0].headers}


async def test_tool_result_round_trip_and_text(gateway, provider, sdk):
    mock = MockProvider(Reply(body=completion(
        {"role": "assistant", "content": "It is 21°C in Paris."}, "stop",
        {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59})))
    client = await client_for(gateway, provider, sdk, mock)
    msg = await client.messages.create(
        model="claude-test-model", max_tokens=256, tools=TOOLS,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "21C"},
                {"type": "text", "text": "Thanks"}]},
        ])
    assert msg.content[0].text == "It is 21°C in Paris."
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (50, 9)
    roles = [m["role"] for m in mock.received[0].json["messages"]]
    assert roles == ["user", "assistant", "tool", "user"]
    assistant = mock.received[0].json["messages"][1]
    assert assistant["content"] == "Checking."
    assert assistant["tool_calls"][0]["id"] == "call_1"
    assert mock.received[0].json["messages"][2]["tool_call_id"] == "call_1"


async def test_provider_error_status_is_kept(gateway, provider, sdk):
    mock = MockProvider(Reply(status=429, headers={"retry-after": "7"},
                              body={"error": {"message": "slow down", "type": "rate_limit"}}))
    client = await client_for(gateway, provider, sdk, mock)
    with pytest.raises(anthropic.RateLimitError) as info:
        await client.messages.create(model="claude-x", max_tokens=5,
                                     messages=[{"role": "user", "content": "hi"}])
    assert info.value.response.headers["retry-after"] == "7"
    assert info.value.body["error"]["type"] == "rate_limit_error"
    assert "slow down" in info.value.body["error"]["message"]


async def test_provider_rejecting_gateway_credentials_is_502(gateway, provider, sdk):
    mock = MockProvider(Reply(status=401, body={"error": {"message": "bad key sk-provider-oai"}}))
    client = await client_for(gateway, provider, sdk, mock)
    with pytest.raises(anthropic.InternalServerError) as info:
        await client.messages.create(model="claude-x", max_tokens=5,
                                     messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502
    assert "credentials" in info.value.body["error"]["message"]
    assert "sk-provider-oai" not in str(info.value.body)


async def test_unrouted_model_names_model_and_patterns(gateway, provider, sdk):
    client = await client_for(gateway, provider, sdk, MockProvider())
    with pytest.raises(anthropic.NotFoundError) as info:
        await client.messages.create(model="gpt-unknown", max_tokens=5,
                                     messages=[{"role": "user", "content": "hi"}])
    message = info.value.body["error"]["message"]
    assert "gpt-unknown" in message and "claude-" in message
    assert info.value.body["error"]["type"] == "not_found_error"
