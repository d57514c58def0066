"""entry/openai_sse.StreamEncoder: IR events → chunks the official openai SDK accepts.

Oracles: the SDK's own `ChatCompletionChunk` model validates every chunk, and its stream
accumulator (`ChatCompletionStreamState`) rebuilds content, tool calls and finish_reason.
"""
from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from ferryllm import ir
from ferryllm.protocols.openai.adapter_stream import StreamDecoder
from ferryllm.protocols.openai.entry_stream import StreamEncoder
from ferryllm.errors import RateLimited, UpstreamProtocolError
from ferryllm.protocols.openai.entry_stream import DONE as OPENAI_DONE
from ferryllm.sse import COMMENT_KEEPALIVE as OPENAI_KEEPALIVE, SSEParser

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openai"
USAGE = ir.Usage(input_tokens=10, output_tokens=7, cache_read_input_tokens=90,
                 cache_creation_input_tokens=5)

TOOL_STREAM = [
    ir.MessageStart("msg_01ABC", "claude-x", ir.Usage()),
    ir.ThinkingStart(0), ir.ThinkingDelta(0, "hmm "), ir.ThinkingDelta(0, "ok"),
    ir.SignatureDelta(0, "sig"), ir.BlockStop(0),
    ir.TextStart(1), ir.TextDelta(1, "héllo — 世界 🚀"), ir.TextDelta(1, ' "quoted"\n'), ir.BlockStop(1),
    ir.ToolUseStart(2, "toolu_1", "get_weather"), ir.ToolArgsDelta(2, '{"city":'),
    ir.ToolArgsDelta(2, ""), ir.ToolArgsDelta(2, ' "Paris"}'), ir.BlockStop(2),
    ir.ToolUseStart(3, "toolu_2", "now"), ir.BlockStop(3),
    ir.MessageDelta(ir.TOOL_USE, None, USAGE), ir.MessageStop(),
]


def frames(data: bytes) -> list[bytes]:
    parser = SSEParser()
    return [ev.data for ev in parser.feed(data) + parser.close()]


def chunks(data: bytes) -> list[dict]:
    out = frames(data)
    assert out[-1] == b"[DONE]"
    return [orjson.loads(f) for f in out[:-1]]


def sdk_final(data: bytes):
    state = ChatCompletionStreamState()
    for chunk in chunks(data):
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    return state.current_completion_snapshot  # get_final_completion() raises on length/filter


def test_chunk_shapes() -> None:
    enc = StreamEncoder("display-model", include_usage=True, created=1700000000)
    got = chunks(enc.encode(TOOL_STREAM))
    for c in got:
        assert c["id"] == "chatcmpl-msg_01ABC"
        assert c["object"] == "chat.completion.chunk"
        assert c["created"] == 1700000000 and c["model"] == "display-model"
        ChatCompletionChunk.model_validate(c)
    deltas = [c["choices"][0]["delta"] for c in got if c["choices"]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "hmm "}, {"reasoning_content": "ok"},
        {"content": "héllo — 世界 🚀"}, {"content": ' "quoted"\n'},
        {"tool_calls": [{"index": 0, "id": "toolu_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]},
        {"tool_calls": [{"index": 1, "id": "toolu_2", "type": "function",
                         "function": {"name": "now", "arguments": ""}}]},
        {},
    ]
    finishes = [c["choices"][0]["finish_reason"] for c in got if c["choices"]]
    assert finishes == [None] * 9 + ["tool_calls"]
    assert got[-1]["choices"] == []
    assert got[-1]["usage"] == {"prompt_tokens": 105, "completion_tokens": 7, "total_tokens": 112,
                                "prompt_tokens_details": {"cached_tokens": 90,
                                                          "cache_write_tokens": 5}}


def test_sdk_accumulator_rebuilds_the_message() -> None:
    final = sdk_final(StreamEncoder("m", include_usage=True).encode(TOOL_STREAM))
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == 'héllo — 世界 🚀 "quoted"\n'
    calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls]
    assert calls == [("toolu_1", "get_weather", '{"city": "Paris"}'), ("toolu_2", "now", "")]
    assert final.usage.prompt_tokens == 105 and final.usage.completion_tokens == 7


def test_no_usage_chunk_unless_asked() -> None:
    got = chunks(StreamEncoder("m", include_usage=False).encode(TOOL_STREAM))
    assert all(c["choices"] for c in got)
    assert "usage" not in got[-1]


@pytest.mark.parametrize("stop, finish", [
    (ir.END_TURN, "stop"), (ir.MAX_TOKENS, "length"), (ir.TOOL_USE, "tool_calls"),
    (ir.STOP_SEQUENCE, "stop"), (ir.REFUSAL, "content_filter"), (ir.PAUSE_TURN, "stop"),
    (None, "stop"),
])
def test_finish_reasons(stop, finish) -> None:
    enc = StreamEncoder("m", include_usage=False)
    data = enc.encode([ir.MessageStart("x", "m", ir.Usage()), ir.MessageDelta(stop, None, ir.Usage()),
                       ir.MessageStop()])
    assert chunks(data)[-1]["choices"][0]["finish_reason"] == finish


def test_given_id_is_used_and_prefixed_once() -> None:
    enc = StreamEncoder("m", include_usage=False, id="chatcmpl-given")
    got = chunks(enc.encode([ir.MessageStart("other", "m", ir.Usage()),
                             ir.MessageDelta(ir.END_TURN, None, ir.Usage()), ir.MessageStop()]))
    assert {c["id"] for c in got} == {"chatcmpl-given"}


def test_events_may_arrive_in_any_grouping() -> None:
    whole = StreamEncoder("m", include_usage=True, created=5).encode(TOOL_STREAM)
    enc = StreamEncoder("m", include_usage=True, created=5)
    assert b"".join(enc.encode([ev]) for ev in TOOL_STREAM) == whole
    assert whole.endswith(OPENAI_DONE)


def test_silent_events_emit_nothing() -> None:
    enc = StreamEncoder("m", include_usage=True)
    enc.encode([ir.MessageStart("x", "m", ir.Usage())])
    assert enc.encode([ir.TextStart(0), ir.BlockStop(0), ir.ThinkingStart(1, "redacted"),
                       ir.SignatureDelta(1, "s"), ir.BlockStop(1)]) == b""


def test_error_line_and_ping() -> None:
    enc = StreamEncoder("m", include_usage=True)
    line = enc.error(RateLimited("slow down", retry_after=3))
    assert line.startswith(b"data: ") and line.endswith(b"\n\n")
    assert orjson.loads(line[6:]) == {"error": {"message": "slow down", "type": "rate_limit_error",
                                                "param": None, "code": "rate_limit_exceeded"}}
    err = orjson.loads(enc.error(UpstreamProtocolError("provider stream ended"))[6:])["error"]
    assert err["type"] == "server_error"
    assert StreamEncoder.PING == OPENAI_KEEPALIVE


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.sse")
                                        if not (FIXTURES / f"{p.stem}.expected").read_text()
                                        .rstrip().splitlines()[-1].startswith('{"raise"')))
def test_openai_provider_to_openai_client_round_trip(name: str) -> None:
    """Provider SSE → IR → client SSE, accumulated by the SDK: the same message comes out."""
    dec = StreamDecoder(ir.Request(model="m", messages=[]), "p")
    events = list(dec.feed((FIXTURES / f"{name}.sse").read_bytes())) + list(dec.close())
    text = "".join(e.text for e in events if isinstance(e, ir.TextDelta))
    thinking = "".join(e.thinking for e in events if isinstance(e, ir.ThinkingDelta))
    calls: dict[str, list] = {}
    for e in events:
        if isinstance(e, ir.ToolUseStart):
            calls[e.id] = [e.name, ""]
            last = e.id
        elif isinstance(e, ir.ToolArgsDelta):
            calls[last][1] += e.partial_json
    delta = events[-2]
    final = sdk_final(StreamEncoder("shown", include_usage=True).encode(events))
    choice = final.choices[0]
    assert (choice.message.content or "") == text
    assert (getattr(choice.message, "reasoning_content", None) or "") == thinking
    assert [(c.id, c.function.name, c.function.arguments)
            for c in choice.message.tool_calls or []] == [(i, n, a) for i, (n, a) in calls.items()]
    assert final.usage.prompt_tokens == delta.usage.prompt_tokens
    assert final.model == "shown"
