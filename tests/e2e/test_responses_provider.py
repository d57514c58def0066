"""Clients of every other protocol → ferryllm → a Responses provider (`tests/mock_responses.py`,
which rejects what the real API rejects): the Anthropic and OpenAI Chat SDKs get exactly the
text, tool calls and usage the mock sent; a Responses client is passed through."""
from __future__ import annotations

import json

import pytest

from tests.conftest import make_config
from tests.mock_responses import (ResponsesMock, custom_call, function_call, reasoning, text,
                                  turn)
from tests.responses_grammar import check_stream, parse_sse

TOOLS_OPENAI = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}]
TOOLS_ANTHROPIC = [{"name": "get_weather", "description": "Weather", "input_schema": {
    "type": "object", "properties": {"location": {"type": "string"}}}}]


async def gateway_for(gateway, aiohttp_server, mock: ResponsesMock) -> str:
    server = await aiohttp_server(mock.app())
    return await gateway(make_config(
        {"resp": ("openai_responses", f"http://127.0.0.1:{server.port}")},
        [{"match": "*", "provider": "resp", "rewrite_model": "mock-responses-1"}]))


def tool_turn():
    return turn(reasoning("Need the weather."), text("Checking both."),
                function_call("get_weather", {"location": "Oslo"}, call_id="call_a"),
                function_call("get_weather", {"location": "Bergen"}, call_id="call_b"),
                input_tokens=120, cached_tokens=100, output_tokens=30)


async def test_openai_chat_stream_from_responses_provider(gateway, aiohttp_server, sdk):
    mock = ResponsesMock(tool_turn())
    client = sdk.openai(await gateway_for(gateway, aiohttp_server, mock))
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Weather?"}], tools=TOOLS_OPENAI,
        stream=True, stream_options={"include_usage": True}, reasoning_effort="low")
    chunks = [c async for c in stream]
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    calls: dict[int, dict] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            slot = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
            slot["id"] += tc.id or ""
            slot["name"] += (tc.function.name or "") if tc.function else ""
            slot["args"] += (tc.function.arguments or "") if tc.function else ""
    assert content == "Checking both."
    assert [(c["id"], c["name"], json.loads(c["args"])) for c in calls.values()] == [
        ("call_a", "get_weather", {"location": "Oslo"}),
        ("call_b", "get_weather", {"location": "Bergen"})]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens,
            usage.completion_tokens) == (120, 100, 30)
    sent = mock.accepted[0]
    assert sent["store"] is False and sent["stream"] is True
    assert sent["reasoning"] == {"effort": "low", "summary": "auto"}
    assert sent["include"] == ["reasoning.encrypted_content"]
    assert sent["tools"][0]["name"] == "get_weather"


async def test_anthropic_round_trip_replays_reasoning(gateway, aiohttp_server, sdk):
    """Turn 1 streams reasoning (signature from encrypted_content), text and two calls to an
    Anthropic client; turn 2 sends them back: the mock (which rejects a stateless reasoning
    item without encrypted_content, or a call without its output) accepts it."""
    mock = ResponsesMock(tool_turn(), turn(text("Rain in both.")))
    client = sdk.anthropic(await gateway_for(gateway, aiohttp_server, mock))
    messages = [{"role": "user", "content": "Weather?"}]
    async with client.messages.stream(model="claude-sonnet-4-5", max_tokens=2000,
                                      messages=messages, tools=TOOLS_ANTHROPIC,
                                      thinking={"type": "enabled", "budget_tokens": 1024}) as s:
        first = await s.get_final_message()
    kinds = [b.type for b in first.content]
    assert kinds == ["thinking", "text", "tool_use", "tool_use"]
    assert first.content[0].thinking == "Need the weather."
    assert first.content[0].signature == "openai_responses:gAAAA-mock-encrypted"
    assert [(b.id, b.input) for b in first.content[2:]] == [
        ("call_a", {"location": "Oslo"}), ("call_b", {"location": "Bergen"})]
    assert first.stop_reason == "tool_use"
    assert (first.usage.input_tokens, first.usage.cache_read_input_tokens,
            first.usage.output_tokens) == (20, 100, 30)
    messages += [{"role": "assistant", "content": [b.model_dump() for b in first.content]},
                 {"role": "user", "content": [
                     {"type": "tool_result", "tool_use_id": "call_a", "content": "rain"},
                     {"type": "tool_result", "tool_use_id": "call_b", "content": "rain"}]}]
    second = await client.messages.create(model="claude-sonnet-4-5", max_tokens=2000,
                                          messages=messages, tools=TOOLS_ANTHROPIC)
    assert second.content[0].text == "Rain in both."
    assert [s.status for s in mock.seen] == [200, 200]
    replay = mock.accepted[1]["input"]
    assert [i["type"] for i in replay] == ["message", "reasoning", "message", "function_call",
                                           "function_call", "function_call_output",
                                           "function_call_output"]
    assert replay[1]["encrypted_content"] == "gAAAA-mock-encrypted" and "id" not in replay[1]


async def test_openai_chat_json_custom_tool_and_incomplete(gateway, aiohttp_server, sdk):
    mock = ResponsesMock(turn(custom_call("get_weather", "Oslo, tomorrow"),
                              incomplete="max_output_tokens"))
    client = sdk.openai(await gateway_for(gateway, aiohttp_server, mock))
    out = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}], tools=TOOLS_OPENAI,
        max_tokens=50)
    call = out.choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments) == {"input": "Oslo, tomorrow"}
    assert out.choices[0].finish_reason == "length"
    assert mock.accepted[0]["max_output_tokens"] == 50


async def test_provider_failure_keeps_code_and_status(gateway, aiohttp_server, sdk):
    import openai
    mock = ResponsesMock(turn(status=429, error={"error": {
        "message": "Rate limit reached. Please try again in 2s.", "type": "requests",
        "param": None, "code": "rate_limit_exceeded"}}))
    client = sdk.openai(await gateway_for(gateway, aiohttp_server, mock))
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="gpt-4o",
                                             messages=[{"role": "user", "content": "x"}])
    assert info.value.body["code"] == "rate_limit_exceeded"


async def test_responses_client_passes_through(gateway, aiohttp_server):
    """Same protocol: the client's body goes on with only the model rewritten; the provider's
    events come back as they were (model rewritten), in OpenAI's grammar."""
    import aiohttp
    mock = ResponsesMock(turn(text("Hi there.")))
    base = await gateway_for(gateway, aiohttp_server, mock)
    body = {"model": "gpt-5", "input": [{"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "hello"}]}], "stream": True, "store": False,
        "include": ["reasoning.encrypted_content"], "client_metadata": {"a": "b"}}
    async with aiohttp.ClientSession() as http:
        async with http.post(base + "/v1/responses", json=body,
                             headers={"authorization": "Bearer k"}) as resp:
            raw = await resp.read()
    final = check_stream(parse_sse(raw))
    assert final["model"] == "gpt-5" and final["status"] == "completed"
    assert mock.accepted[0] == {**body, "model": "mock-responses-1"}


async def test_responses_sdk_through_to_responses_provider(gateway, aiohttp_server, sdk):
    mock = ResponsesMock(turn(reasoning("Plan."), text("Calling."),
                              function_call("get_weather", {"location": "Oslo"},
                                            call_id="call_x"),
                              input_tokens=50, cached_tokens=10, output_tokens=9))
    client = sdk.openai(await gateway_for(gateway, aiohttp_server, mock))
    tools = [{"type": "function", "name": "get_weather", "strict": False,
              "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}]
    async with client.responses.stream(model="gpt-5", input="Weather?", tools=tools,
                                       store=False) as stream:
        final = await stream.get_final_response()
    assert final.model == "gpt-5" and final.output_text == "Calling."
    call = [i for i in final.output if i.type == "function_call"][0]
    assert (call.call_id, call.name, json.loads(call.arguments)) == (
        "call_x", "get_weather", {"location": "Oslo"})
    assert (final.usage.input_tokens, final.usage.input_tokens_details.cached_tokens,
            final.usage.output_tokens) == (50, 10, 9)
