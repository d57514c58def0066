"""OpenAI SDK → ferryllm → Anthropic mock provider: JSON and streams (every recorded fixture)."""
from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import make_config
from tests.mockprovider import MockProvider, Reply, sse_frames
from tests.streamsummary import FIXTURES, fixture_names, summarise

FINISH = {"end_turn": "stop", "max_tokens": "length", "tool_use": "tool_calls",
          "stop_sequence": "stop", "refusal": "content_filter",
          "model_context_window_exceeded": "length"}
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}]
MESSAGES = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in San Francisco?"}]


async def client_for(gateway, provider, sdk, mock):
    url = await provider(mock)
    base = await gateway(make_config({"anth": ("anthropic", url)},
                                     [{"match": "gpt-", "provider": "anth",
                                       "rewrite_model": "claude-opus-4-6"}]))
    return sdk.openai(base)


def stream_reply(name: str) -> Reply:
    return Reply(chunks=sse_frames((FIXTURES / "anthropic" / f"{name}.sse").read_text(encoding="utf-8")))


async def test_json_tool_calls_from_anthropic_provider(gateway, provider, sdk):
    mock = MockProvider(Reply(body={
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-opus-4-6",
        "content": [{"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
                     "input": {"location": "San Francisco, CA"}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 90,
                  "cache_creation_input_tokens": 5}}))
    client = await client_for(gateway, provider, sdk, mock)
    out = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=TOOLS,
                                               max_tokens=100)
    choice = out.choices[0]
    assert out.model == "gpt-4o"
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name) == ("toolu_01", "get_weather")
    assert json.loads(call.function.arguments) == {"location": "San Francisco, CA"}
    assert out.usage.prompt_tokens == 105 and out.usage.completion_tokens == 7
    assert out.usage.prompt_tokens_details.cached_tokens == 90
    sent = mock.received[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-provider-anth"
    assert sent.json["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert sent.json["max_tokens"] == 100 and sent.json["model"] == "claude-opus-4-6"


COMPLETE = [n for n in fixture_names("anthropic") if summarise("anthropic", n).complete]
FAILING = [n for n in fixture_names("anthropic") if summarise("anthropic", n).error]


@pytest.mark.parametrize("name", COMPLETE)
async def test_stream_fixture_through_openai_sdk(gateway, provider, sdk, name):
    want = summarise("anthropic", name)
    client = await client_for(gateway, provider, sdk, MockProvider(stream_reply(name)))
    chunks = []
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=TOOLS, stream=True,
        stream_options={"include_usage": True})
    async for chunk in stream:
        chunks.append(chunk)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or ""
                        for c in chunks if c.choices)
    calls: dict[int, dict] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            slot = calls.setdefault(tc.index, {"id": None, "name": None, "args": ""})
            if tc.id:
                assert slot["id"] is None, "a tool call id must be sent once"
                slot["id"], slot["name"] = tc.id, tc.function.name
            slot["args"] += tc.function.arguments or ""
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert text == want.text
    assert reasoning == want.thinking
    assert [(s["id"], s["name"], s["args"]) for _, s in sorted(calls.items())] == want.tools
    assert finishes == [FINISH[want.stop_reason]]
    usage = chunks[-1].usage
    u = want.usage
    assert usage.prompt_tokens == u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"]
    assert usage.completion_tokens == u["output_tokens"]


@pytest.mark.parametrize("name", FAILING)
async def test_stream_error_reaches_openai_sdk(gateway, provider, sdk, name):
    client = await client_for(gateway, provider, sdk, MockProvider(stream_reply(name)))
    with pytest.raises(openai.APIError):
        stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        async for _ in stream:
            pass


async def test_stream_ends_with_done_and_sse_headers(gateway, provider):
    import aiohttp
    url = await provider(MockProvider(stream_reply("text")))
    base = await gateway(make_config({"anth": ("anthropic", url)}))
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1/chat/completions", json={
                "model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
                headers={"accept-encoding": "gzip"}) as r:
            body = await r.read()
            assert r.headers["cache-control"] == "no-cache"
            assert r.headers["x-accel-buffering"] == "no"
            assert "content-encoding" not in r.headers
    assert body.endswith(b"data: [DONE]\n\n")
