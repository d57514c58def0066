"""The Claude Code path: Anthropic SDK stream accumulator → ferryllm → OpenAI-compatible provider
streams (every recorded fixture). The SDK's final message must hold exactly what the provider
said: text, thinking, every tool_use input, stop_reason, usage."""
from __future__ import annotations

import anthropic
import jiter
import pytest

from tests.conftest import make_config
from tests.mockprovider import MockProvider, Reply, sse_frames
from tests.streamsummary import FIXTURES, fixture_names, summarise



def tools_for(*names: str) -> list[dict]:
    return [{"name": n, "description": "t", "input_schema": {"type": "object", "properties": {}}}
            for n in dict.fromkeys(names)]


TOOLS = tools_for("get_weather", "get_time", "search", "read_file", "Bash", "lookup")


def chunks(name: str) -> list[bytes]:
    return sse_frames((FIXTURES / "openai" / f"{name}.sse").read_text(encoding="utf-8"))


async def start(gateway, provider, mock: MockProvider) -> str:
    url = await provider(mock)
    return await gateway(make_config({"oai": ("openai", url)},
                                     [{"match": "claude-", "provider": "oai", "rewrite_model": "gpt-x"}]))


def parse_args(args: str):
    """As the SDK does: partial JSON (a call cut by max_tokens) is parsed as far as it goes."""
    return jiter.from_json(args.encode(), partial_mode=True) if args else {}


COMPLETE = [n for n in fixture_names("openai") if summarise("openai", n).complete]
FAILING = [n for n in fixture_names("openai") if summarise("openai", n).error]


@pytest.mark.parametrize("name", COMPLETE)
async def test_sdk_accumulator_gets_the_provider_message(gateway, provider, sdk, name):
    want = summarise("openai", name)
    mock = MockProvider(Reply(chunks=chunks(name)))
    client = sdk.anthropic(await start(gateway, provider, mock))
    tools = tools_for(*(b["name"] for b in want.blocks if b["type"] == "tool_use"), "search")
    async with client.messages.stream(model="claude-test-model", max_tokens=1024, tools=tools,
                                      stop_sequences=["STOP"],
                                      messages=[{"role": "user", "content": "go"}]) as stream:
        events = [e.type async for e in stream]
        msg = await stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert msg.model == "claude-test-model"
    got = []
    for block in msg.content:
        if block.type == "text":
            got.append({"type": "text", "text": block.text})
        elif block.type == "thinking":
            got.append({"type": "thinking", "thinking": block.thinking})
        elif block.type == "tool_use":
            got.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
    expected = []
    for block in want.blocks:
        if block["type"] == "tool_use":
            expected.append({"type": "tool_use", "id": block["id"], "name": block["name"],
                             "input": parse_args(block["args"])})
        elif block["type"] == "thinking":
            expected.append({"type": "thinking", "thinking": block["thinking"]})
        else:
            expected.append(block)
    assert got == expected
    assert msg.stop_reason == want.stop_reason
    assert msg.stop_sequence == want.stop_sequence
    u = want.usage
    assert (msg.usage.input_tokens, msg.usage.output_tokens, msg.usage.cache_read_input_tokens,
            msg.usage.cache_creation_input_tokens) == (
        u["input_tokens"], u["output_tokens"], u["cache_read_input_tokens"],
        u["cache_creation_input_tokens"])
    sent = mock.received[0].json
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == "gpt-x"


@pytest.mark.parametrize("name", FAILING)
async def test_failing_stream_raises_in_the_sdk(gateway, provider, sdk, name):
    client = sdk.anthropic(await start(gateway, provider, MockProvider(Reply(chunks=chunks(name)))))
    with pytest.raises(anthropic.APIError):
        async with client.messages.stream(model="claude-test-model", max_tokens=64,
                                          messages=[{"role": "user", "content": "go"}]) as stream:
            await stream.get_final_message()


async def test_json_and_stream_agree(gateway, provider, sdk):
    """The same content served as JSON and as a stream gives the same message."""
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-x",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Let me look.",
                "tool_calls": [{"id": "call_9", "type": "function", "function": {
                    "name": "search", "arguments": "{\"q\": \"ferry 世界\"}"}}]}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}}
    frames = [
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n',
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[{"index":0,"delta":{"content":"Let me look."},"finish_reason":null}]}\n\n',
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_9","type":"function","function":{"name":"search","arguments":""}}]},"finish_reason":null}]}\n\n',
        'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"q\\": \\"ferry 世"}}]},"finish_reason":null}]}\n\n'.encode(),
        'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"界\\"}"}}]},"finish_reason":null}]}\n\n'.encode(),
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n',
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}\n\n',
        b"data: [DONE]\n\n",
    ]
    mock = MockProvider().then(Reply(body=body), Reply(chunks=frames))
    client = sdk.anthropic(await start(gateway, provider, mock))
    kwargs = dict(model="claude-test-model", max_tokens=64, tools=TOOLS,
                  messages=[{"role": "user", "content": "go"}])
    plain = await client.messages.create(**kwargs)
    async with client.messages.stream(**kwargs) as stream:
        streamed = await stream.get_final_message()
    strip = lambda m: m.model_dump(exclude={"id"})  # noqa: E731
    assert strip(plain) == strip(streamed)
    assert streamed.content[1].input == {"q": "ferry 世界"}
