"""OpenAI SDK's Responses client → ferryllm → OpenAI-compatible and Anthropic mocks: JSON and
streams (every recorded fixture); the SDK's accumulator (`get_final_response`) must hold
exactly the text, function calls and usage the provider sent."""
from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import make_config
from tests.mockprovider import MockProvider, Reply, sse_frames
from tests.streamsummary import FIXTURES, fixture_names, summarise

TOOLS = [{"type": "function", "name": "get_weather", "description": "Weather",
          "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
          "strict": False},
         {"type": "function", "name":
          "mcp__github.com__create_or_update_file_contents_in_repository_branch",
          "parameters": {"type": "object"}, "strict": False}]
INPUT = [{"role": "developer", "content": "Be brief."},
         {"role": "user", "content": "Weather in San Francisco?"}]


async def client_for(gateway, provider, sdk, mock, kind: str):
    url = await provider(mock)
    base = await gateway(make_config({"prov": (kind, url)},
                                     [{"match": "gpt-", "provider": "prov",
                                       "rewrite_model": "backend-model"}]))
    return sdk.openai(base)


def stream_reply(kind: str, name: str) -> Reply:
    text = (FIXTURES / kind / f"{name}.sse").read_text(encoding="utf-8")
    return Reply(chunks=sse_frames(text))


def expected_usage(usage: dict) -> tuple[int, int, int]:
    prompt = (usage["input_tokens"] + usage["cache_read_input_tokens"]
              + usage["cache_creation_input_tokens"])
    return prompt, usage["cache_read_input_tokens"], usage["output_tokens"]


CASES = [(kind, name) for kind in ("openai", "anthropic") for name in fixture_names(kind)
         if summarise(kind, name).complete]


@pytest.mark.parametrize("kind,name", CASES)
async def test_stream_fixture_through_responses_sdk(gateway, provider, sdk, kind, name):
    want = summarise(kind, name)
    client = await client_for(gateway, provider, sdk, MockProvider(stream_reply(kind, name)),
                              kind)
    seen = []
    cut = ("max_tokens", "refusal", "model_context_window_exceeded")
    status = "incomplete" if want.stop_reason in cut else "completed"
    async with client.responses.stream(model="gpt-5", input=INPUT, tools=TOOLS) as stream:
        async for event in stream:
            seen.append(event)
        # the SDK's accumulator ends at response.completed; an incomplete answer ends with
        # response.incomplete, which carries the same full body
        final = (await stream.get_final_response() if status == "completed"
                 else seen[-1].response)
    assert [e.sequence_number for e in seen] == list(range(len(seen)))
    assert seen[0].type == "response.created" and seen[1].type == "response.in_progress"
    assert final.model == "gpt-5"
    texts = [b["text"] for b in want.blocks if b["type"] == "text"]
    got = [c.text for item in final.output if item.type == "message" for c in item.content]
    assert got == texts
    calls = [(item.call_id, item.name, item.arguments)
             for item in final.output if item.type == "function_call"]
    assert calls == [(i, n, a or "{}") for i, n, a in want.tools]
    reasoning = ["".join(s.text for s in item.summary)
                 for item in final.output if item.type == "reasoning"]
    assert "".join(reasoning) == want.thinking
    prompt, cached, output = expected_usage(want.usage)
    assert (final.usage.input_tokens, final.usage.input_tokens_details.cached_tokens,
            final.usage.output_tokens) == (prompt, cached, output)
    assert final.usage.total_tokens == prompt + output
    assert final.status == status and seen[-1].type == f"response.{status}"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_json_text_and_usage(gateway, provider, sdk, kind):
    if kind == "openai":
        body = {"id": "chatcmpl-1", "object": "chat.completion", "model": "backend-model",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": "Checking.", "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {
                            "name": "get_weather", "arguments": "{\"location\":\"SF\"}"}}]}}],
                "usage": {"prompt_tokens": 105, "completion_tokens": 7,
                          "prompt_tokens_details": {"cached_tokens": 90}}}
    else:
        body = {"id": "msg_01", "type": "message", "role": "assistant", "model": "backend-model",
                "content": [{"type": "text", "text": "Checking."},
                            {"type": "tool_use", "id": "call_1", "name": "get_weather",
                             "input": {"location": "SF"}}],
                "stop_reason": "tool_use", "stop_sequence": None,
                "usage": {"input_tokens": 15, "output_tokens": 7, "cache_read_input_tokens": 90,
                          "cache_creation_input_tokens": 0}}
    mock = MockProvider(Reply(body=body))
    client = await client_for(gateway, provider, sdk, mock, kind)
    out = await client.responses.create(model="gpt-5", input=INPUT, tools=TOOLS,
                                        max_output_tokens=100, store=False)
    assert out.model == "gpt-5" and out.status == "completed" and out.store is False
    assert out.output_text == "Checking."
    call = [i for i in out.output if i.type == "function_call"][0]
    assert (call.call_id, call.name, json.loads(call.arguments)) == (
        "call_1", "get_weather", {"location": "SF"})
    assert (out.usage.input_tokens, out.usage.input_tokens_details.cached_tokens,
            out.usage.output_tokens, out.usage.total_tokens) == (105, 90, 7, 112)
    sent = mock.received[0].json
    assert sent["model"] == "backend-model"
    if kind == "openai":
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
        assert sent["max_tokens"] == 100
    else:
        assert sent["system"] == "Be brief." and sent["max_tokens"] == 100


async def test_previous_response_id_is_openais_400(gateway, provider, sdk):
    mock = MockProvider()
    client = await client_for(gateway, provider, sdk, mock, "openai")
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="gpt-5", input="hi", previous_response_id="resp_x")
    err = info.value.body
    assert err["code"] == "previous_response_not_found"
    assert err["param"] == "previous_response_id" and err["type"] == "invalid_request_error"
    assert mock.received == []


async def test_bad_item_names_the_field(gateway, provider, sdk):
    client = await client_for(gateway, provider, sdk, MockProvider(), "anthropic")
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="gpt-5", input=[
            {"role": "user", "content": "hi"},
            {"type": "function_call", "name": "f", "arguments": "{}"}])
    assert info.value.body["param"] == "input[1].call_id"


async def test_provider_error_mid_stream_is_response_failed(gateway, provider, sdk):
    frames = sse_frames((FIXTURES / "anthropic" / "text.sse").read_text(encoding="utf-8"))
    too_long = (b'event: error\ndata: {"type":"error","error":{"type":"invalid_request_error",'
                b'"message":"prompt is too long: 210000 tokens > 200000 maximum"}}\n\n')
    mock = MockProvider(Reply(chunks=frames[:4] + [too_long]))
    client = await client_for(gateway, provider, sdk, mock, "anthropic")
    seen = []
    async with client.responses.stream(model="gpt-5", input="hi") as stream:
        async for event in stream:
            seen.append(event)
    assert seen[-1].type == "response.failed"
    assert seen[-1].response.error.code == "context_length_exceeded"
    assert seen[-2].type == "response.output_text.delta"
    assert [e.sequence_number for e in seen] == list(range(len(seen)))
