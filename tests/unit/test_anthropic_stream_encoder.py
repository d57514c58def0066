"""entry/anthropic_sse.StreamEncoder: IR events → Anthropic SSE bytes.

Checked three ways: frame by frame (parsed back with SSEParser), round trip through the provider
decoder over every fixture, and against the official anthropic SDK as the oracle (its
`accumulate_event` and a real `Anthropic` client reading our bytes over a mock transport)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import anthropic
import orjson
import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent

from ferryllm import ir
from ferryllm.protocols.anthropic.adapter_stream import StreamDecoder
from ferryllm.protocols.anthropic.entry_stream import StreamEncoder
from ferryllm.errors import Overloaded, UpstreamError
from ferryllm.protocols.anthropic.entry_stream import PING as ANTHROPIC_PING
from ferryllm.sse import SSEParser

try:  # the installed anthropic SDK is built on httpx2; older ones on httpx
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "anthropic"
COMPLETE = ["text", "text_crlf", "thinking", "redacted_thinking", "text_then_tool",
            "parallel_tools", "server_tool_skipped", "unknown_events", "pings_midstream",
            "cache_usage", "no_final_blank_line", "event_name_fallback"]
EVENT_ADAPTER = pydantic.TypeAdapter(RawMessageStreamEvent)


def frames(data: bytes) -> list[tuple[str, dict]]:
    parser = SSEParser()
    events = parser.feed(data) + parser.close()
    return [(e.event.decode(), orjson.loads(e.data)) for e in events]


def decode_fixture(name: str) -> list[ir.StreamEvent]:
    dec = StreamDecoder(provider="p")
    return dec.feed((FIXTURES / f"{name}.sse").read_bytes()) + dec.close()


def accumulate(data: bytes):
    snapshot, bufs = None, {}
    for name, obj in frames(data):
        assert obj["type"] == name  # the event name always matches the data's type
        if name == "ping":  # the SDK's SSE layer drops pings before accumulating
            continue
        snapshot = accumulate_event(event=EVENT_ADAPTER.validate_python(obj),
                                    current_snapshot=snapshot, json_bufs=bufs)
    return snapshot


USAGE = ir.Usage(input_tokens=10, output_tokens=0, cache_read_input_tokens=5,
                 cache_creation_input_tokens=2)
FULL = [
    ir.MessageStart("abc", "backend-model", USAGE),
    ir.ThinkingStart(0), ir.ThinkingDelta(0, "let me think — 世界"), ir.SignatureDelta(0, "c2ln"),
    ir.BlockStop(0),
    ir.TextStart(1), ir.TextDelta(1, 'héllo "quoted"\n'), ir.TextDelta(1, "🚀\u2028end"),
    ir.BlockStop(1),
    ir.ToolUseStart(2, "toolu_01", "get_weather"), ir.ToolArgsDelta(2, '{"city": "Pa'),
    ir.ToolArgsDelta(2, 'ris", "days": [1, 2]}'), ir.BlockStop(2),
    ir.MessageDelta("tool_use", None, ir.Usage(10, 42, 5, 2)), ir.MessageStop(),
]


# ---------------------------------------------------------------- frames


def test_message_start_then_ping_immediately():
    data = StreamEncoder("claude-display").encode(FULL[:1])
    assert data.endswith(b"\n\n" + ANTHROPIC_PING)
    (name, start), (ping_name, ping) = frames(data)
    assert name == "message_start" and ping_name == "ping" and ping == {"type": "ping"}
    assert start == {"type": "message_start", "message": {
        "id": "msg_abc", "type": "message", "role": "assistant", "model": "claude-display",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 2,
                  "cache_read_input_tokens": 5, "output_tokens": 0}}}


def test_every_frame_shape():
    got = frames(StreamEncoder("m").encode(FULL))
    assert [n for n, _ in got] == [
        "message_start", "ping",
        "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop",
        "message_delta", "message_stop"]
    objs = [o for _, o in got]
    assert objs[2] == {"type": "content_block_start", "index": 0,
                       "content_block": {"type": "thinking", "thinking": "", "signature": ""}}
    assert objs[3] == {"type": "content_block_delta", "index": 0,
                       "delta": {"type": "thinking_delta", "thinking": "let me think — 世界"}}
    assert objs[4] == {"type": "content_block_delta", "index": 0,
                       "delta": {"type": "signature_delta", "signature": "c2ln"}}
    assert objs[5] == {"type": "content_block_stop", "index": 0}
    assert objs[6] == {"type": "content_block_start", "index": 1,
                       "content_block": {"type": "text", "text": ""}}
    assert objs[7] == {"type": "content_block_delta", "index": 1,
                       "delta": {"type": "text_delta", "text": 'héllo "quoted"\n'}}
    assert objs[8]["delta"]["text"] == "🚀\u2028end"
    assert objs[10] == {"type": "content_block_start", "index": 2, "content_block": {
        "type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}}
    assert objs[11] == {"type": "content_block_delta", "index": 2,
                        "delta": {"type": "input_json_delta", "partial_json": '{"city": "Pa'}}
    assert objs[14] == {"type": "message_delta",
                        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 2,
                                  "cache_read_input_tokens": 5, "output_tokens": 42}}
    assert objs[15] == {"type": "message_stop"}


def test_frames_are_exact_bytes():
    enc = StreamEncoder("m")
    assert enc.encode([ir.TextStart(3), ir.TextDelta(3, "hi")]) == (
        b'event: content_block_start\ndata: {"type":"content_block_start","index":3,'
        b'"content_block":{"type":"text","text":""}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":3,'
        b'"delta":{"type":"text_delta","text":"hi"}}\n\n')
    assert enc.encode([ir.BlockStop(3), ir.MessageStop()]) == (
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":3}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


def test_delta_index_is_the_events_own():
    # the cached prefix belongs to the last opened block; another index is still encoded right
    enc = StreamEncoder("m")
    enc.encode([ir.TextStart(0)])
    assert frames(enc.encode([ir.TextDelta(7, "x")]))[0][1]["index"] == 7
    assert frames(enc.encode([ir.TextDelta(0, "y")]))[0][1]["index"] == 0


def test_redacted_thinking_start():
    (_, obj), = frames(StreamEncoder("m").encode([ir.ThinkingStart(0, redacted_data="b3BhcXVl")]))
    assert obj == {"type": "content_block_start", "index": 0,
                   "content_block": {"type": "redacted_thinking", "data": "b3BhcXVl"}}


def test_message_id_kept_when_prefixed():
    (_, obj), _ = frames(StreamEncoder("m").encode([ir.MessageStart("msg_x", "b", ir.Usage())]))
    assert obj["message"]["id"] == "msg_x"


def test_empty_event_list():
    assert StreamEncoder("m").encode([]) == b""


def test_error_frame():
    enc = StreamEncoder("m")
    assert StreamEncoder.PING == ANTHROPIC_PING
    data = enc.error(UpstreamError("Overloaded", status=529, provider="p"))
    assert data.startswith(b"event: error\ndata: ") and data.endswith(b"\n\n")
    assert frames(data) == [("error", {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}})]
    assert frames(enc.error(Overloaded("busy")))[0][1]["error"]["type"] == "overloaded_error"


# ---------------------------------------------------------------- round trip


@pytest.mark.parametrize("name", COMPLETE)
def test_round_trip_through_the_decoder(name):
    events = decode_fixture(name)
    data = StreamEncoder("display").encode(events)
    again = StreamDecoder(provider="p")
    back = again.feed(data) + again.close()
    first, back_first = events[0], back[0]
    assert back_first.id == (first.id if first.id.startswith("msg_") else "msg_" + first.id)
    assert back_first.model == "display" and back_first.usage == first.usage
    assert [dataclasses.asdict(e) for e in back[1:]] == [dataclasses.asdict(e) for e in events[1:]]


# ---------------------------------------------------------------- SDK oracle


def test_sdk_accumulator_builds_the_message():
    message = accumulate(StreamEncoder("claude-display").encode(FULL))
    assert message.id == "msg_abc" and message.model == "claude-display"
    thinking, text, tool = message.content
    assert (thinking.type, thinking.thinking, thinking.signature) == (
        "thinking", "let me think — 世界", "c2ln")
    assert text.type == "text" and text.text == 'héllo "quoted"\n🚀\u2028end'
    assert tool.type == "tool_use" and tool.id == "toolu_01" and tool.name == "get_weather"
    assert tool.input == {"city": "Paris", "days": [1, 2]}
    assert message.stop_reason == "tool_use" and message.stop_sequence is None
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens,
            usage.cache_creation_input_tokens) == (10, 42, 5, 2)


@pytest.mark.parametrize("name", COMPLETE)
def test_sdk_accumulator_over_fixtures(name):
    events = decode_fixture(name)
    message = accumulate(StreamEncoder("display").encode(events))
    expected = {"text": "", "thinking": "", "tools": []}
    for ev in events:
        if isinstance(ev, ir.TextDelta):
            expected["text"] += ev.text
        elif isinstance(ev, ir.ThinkingDelta):
            expected["thinking"] += ev.thinking
    assert "".join(b.text for b in message.content if b.type == "text") == expected["text"]
    assert "".join(b.thinking for b in message.content if b.type == "thinking") == \
        expected["thinking"]
    final = events[-2]
    assert message.stop_reason == final.stop_reason
    assert message.stop_sequence == final.stop_sequence
    assert message.usage.output_tokens == final.usage.output_tokens
    assert message.usage.input_tokens == final.usage.input_tokens
    assert message.usage.cache_read_input_tokens == final.usage.cache_read_input_tokens
    assert message.usage.cache_creation_input_tokens == final.usage.cache_creation_input_tokens
    assert len(message.content) == sum(isinstance(e, ir.BlockStop) for e in events)


def test_real_sdk_client_reads_our_stream():
    body = StreamEncoder("claude-display").encode(FULL)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/messages"
        assert json.loads(request.content)["stream"] is True
        chunks = [body[i:i + 7] for i in range(0, len(body), 7)]  # split everywhere
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              stream=httpx.ByteStream(b"".join(chunks)))

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        client = anthropic.Anthropic(api_key="test", base_url="http://gateway.test",
                                     http_client=http, max_retries=0)
        with client.messages.stream(model="claude-display", max_tokens=100,
                                    messages=[{"role": "user", "content": "hi"}]) as stream:
            texts = list(stream.text_stream)
            message = stream.get_final_message()
    assert "".join(texts) == 'héllo "quoted"\n🚀\u2028end'
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[0].signature == "c2ln"
    assert message.content[2].input == {"city": "Paris", "days": [1, 2]}
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 42 and message.usage.cache_read_input_tokens == 5


def test_real_sdk_client_raises_on_in_band_error():
    enc = StreamEncoder("m")
    body = enc.encode(FULL[:7]) + enc.error(UpstreamError("Overloaded", status=529, provider="p"))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        client = anthropic.Anthropic(api_key="test", base_url="http://gateway.test",
                                     http_client=http, max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as info:
            with client.messages.stream(model="m", max_tokens=10,
                                        messages=[{"role": "user", "content": "hi"}]) as stream:
                stream.get_final_message()
    assert "Overloaded" in str(info.value)
