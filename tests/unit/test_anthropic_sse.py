"""adapters/anthropic_sse.StreamDecoder: provider SSE bytes → IR events.

Every fixture `tests/fixtures/anthropic/NAME.sse` is decoded in every chunking and must give
exactly `NAME.expected` (one JSON object per IR event; a final `{"error": …}` line when the
decoder raises). Regenerate after a deliberate change with
`python -m tests.unit.test_anthropic_sse --regen` and review the diff."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ferryllm import ir
from ferryllm.protocols.anthropic.adapter_stream import StreamDecoder
from ferryllm.errors import GatewayError, UpstreamError, UpstreamProtocolError
from tests.chunking import chunkings
from tests.irjson import event_fields

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "anthropic"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.sse"))


def render(events: list[ir.StreamEvent]) -> list[str]:
    return [json.dumps({"event": type(ev).__name__, **event_fields(ev)},
                       ensure_ascii=False) for ev in events]


def run(chunks: list[bytes]) -> list[str]:
    dec = StreamDecoder(provider="anthropic-test")
    lines: list[str] = []
    try:
        for chunk in chunks:
            lines += render(dec.feed(chunk))
        lines += render(dec.close())
    except GatewayError as err:
        lines += render(err.events)  # decoded from the same read, before the error
        lines.append(json.dumps({"error": type(err).__name__, "status": err.status,
                                 "kind": err.kind, "message": str(err)}, ensure_ascii=False))
    return lines


def expected(name: str) -> list[str]:
    return (FIXTURES / f"{name}.expected").read_text(encoding="utf-8").splitlines()


def test_fixtures_exist():
    assert len(NAMES) >= 13
    for name in NAMES:
        assert (FIXTURES / f"{name}.expected").exists(), name


@pytest.mark.parametrize("name", NAMES)
def test_fixture_every_chunking(name):
    data = (FIXTURES / f"{name}.sse").read_bytes()
    want = expected(name)
    count = 0
    for chunks in chunkings(data):
        assert run(chunks) == want, f"{name}: chunking {[len(c) for c in chunks][:8]}…"
        count += 1
    assert count > 2


def _events(name: str) -> list[dict]:
    return [json.loads(line) for line in expected(name)]


def _well_formed(events: list[dict]) -> None:
    assert events[0]["event"] == "MessageStart"
    assert [e["event"] for e in events[-2:]] == ["MessageDelta", "MessageStop"]
    assert sum(e["event"] == "MessageDelta" for e in events) == 1
    open_index, next_index = None, 0
    for e in events[1:-2]:
        if e["event"].endswith("Start"):
            assert open_index is None and e["index"] == next_index
            open_index, next_index = e["index"], next_index + 1
        elif e["event"] == "BlockStop":
            assert e["index"] == open_index
            open_index = None
        else:
            assert e["index"] == open_index
    assert open_index is None


@pytest.mark.parametrize("name", [n for n in NAMES if "error" not in n and "cut" not in n
                                  and "malformed" not in n])
def test_complete_fixtures_are_well_formed(name):
    _well_formed(_events(name))


def test_text_multibyte_and_usage():
    events = _events("text")
    assert "".join(e["text"] for e in events if e["event"] == "TextDelta").startswith(
        "héllo — 世界 🚀")
    assert events[-2]["usage"] == {"input_tokens": 25, "output_tokens": 15,
                                   "cache_read_input_tokens": 0,
                                   "cache_creation_input_tokens": 0}
    assert events[-2]["stop_reason"] == "end_turn"
    assert expected("text_crlf") == expected("text")


def test_thinking_signature():
    events = _events("thinking")
    assert events[1] == {"event": "ThinkingStart", "index": 0, "redacted_data": None}
    sig = [e for e in events if e["event"] == "SignatureDelta"]
    assert len(sig) == 1 and sig[0]["signature"].startswith("EqQBCgIYAhIM")
    # message_start had no usage: zeros; message_delta's input_tokens is taken
    assert events[0]["usage"]["input_tokens"] == 0
    assert events[-2]["usage"]["input_tokens"] == 41


def test_redacted_thinking():
    events = _events("redacted_thinking")
    assert events[1]["event"] == "ThinkingStart"
    assert events[1]["redacted_data"].startswith("EmwKAhgB")
    assert events[2] == {"event": "BlockStop", "index": 0}


def test_tool_args_concatenate_to_json():
    events = _events("text_then_tool")
    start = next(e for e in events if e["event"] == "ToolUseStart")
    assert start == {"event": "ToolUseStart", "index": 1, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                     "name": "get_weather"}
    args = "".join(e["partial_json"] for e in events if e["event"] == "ToolArgsDelta")
    assert json.loads(args) == {"location": "San Francisco, CA — 世界", "unit": "fahrenheit"}
    assert events[-2]["stop_reason"] == "tool_use"


def test_parallel_tools():
    events = _events("parallel_tools")
    starts = [e for e in events if e["event"] == "ToolUseStart"]
    assert [(s["index"], s["name"]) for s in starts] == [
        (0, "get_weather"), (1, "get_time"), (2, "list_files")]


def test_server_tool_block_skipped_and_renumbered():
    events = _events("server_tool_skipped")
    starts = [(e["event"], e["index"]) for e in events if e["event"].endswith("Start")
              and e["event"] != "MessageStart"]
    assert starts == [("TextStart", 0), ("TextStart", 1)]
    assert not any(e["event"] == "ToolArgsDelta" for e in events)
    second = "".join(e["text"] for e in events if e["event"] == "TextDelta" and e["index"] == 1)
    assert second == "Here's the current weather information for New York City: partly cloudy, 65°F."
    assert events[-2]["usage"]["input_tokens"] == 10682


def test_cache_usage_merged():
    events = _events("cache_usage")
    assert events[0]["usage"] == {"input_tokens": 3, "output_tokens": 1,
                                  "cache_read_input_tokens": 20480,
                                  "cache_creation_input_tokens": 1532}
    # message_delta carries input, cache read and output: cache creation kept from the start
    assert events[-2]["usage"] == {"input_tokens": 3, "output_tokens": 6,
                                   "cache_read_input_tokens": 20480,
                                   "cache_creation_input_tokens": 1532}


def test_stop_sequence_and_unknown_events():
    events = _events("unknown_events")
    assert events[-2]["stop_reason"] == "stop_sequence"
    assert events[-2]["stop_sequence"] == "\n\nHuman:"
    assert [e["event"] for e in events] == ["MessageStart", "TextStart", "TextDelta", "BlockStop",
                                            "MessageDelta", "MessageStop"]


def test_in_band_errors_keep_their_status():
    last = _events("error_overloaded")[-1]
    assert last == {"error": "UpstreamError", "status": 529, "kind": "overloaded_error",
                    "message": "Overloaded"}
    last = _events("error_before_content")[-1]
    assert last["status"] == 429 and last["kind"] == "rate_limit_error"


def test_malformed_and_cut_streams():
    assert _events("malformed_data")[-1]["error"] == "UpstreamProtocolError"
    last = _events("cut_before_stop")[-1]
    assert last["error"] == "UpstreamProtocolError"
    assert last["message"] == "provider stream ended before completion"


def test_error_raised_at_once_when_nothing_precedes_it():
    dec = StreamDecoder(provider="p")
    with pytest.raises(UpstreamError) as info:
        dec.feed(b'event: error\ndata: {"type":"error","error":{"type":"api_error",'
                 b'"message":"Internal server error"}}\n\n')
    assert info.value.status == 500 and str(info.value) == "Internal server error"
    assert info.value.retryable


def test_error_raised_by_the_read_that_holds_it_with_earlier_events_attached():
    data = (FIXTURES / "error_overloaded.sse").read_bytes()
    dec = StreamDecoder(provider="p")
    with pytest.raises(UpstreamError) as info:
        dec.feed(data)
    assert [type(e).__name__ for e in info.value.events] == [
        "MessageStart", "TextStart", "TextDelta"]
    cut = data.index(b"event: error")
    dec = StreamDecoder(provider="p")
    assert len(dec.feed(data[:cut])) == 3
    with pytest.raises(UpstreamError) as info:
        dec.feed(data[cut:])
    assert info.value.events == [] and info.value.status == 529


def test_empty_stream_is_cut():
    dec = StreamDecoder(provider="p")
    assert dec.feed(b"") == []
    with pytest.raises(UpstreamProtocolError):
        dec.close()


@pytest.mark.parametrize("data", [
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"x"}}\n\n',  # delta for no open block
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n',  # block before message_start
    b'data: [1, 2]\n\n',  # not an object
    b'event: message_start\ndata: {"type":"message_start"}\n\n',  # no message
])
def test_protocol_violations_raise(data):
    dec = StreamDecoder(provider="p")
    with pytest.raises(UpstreamProtocolError):
        dec.feed(data)


def test_events_after_message_stop_are_ignored():
    data = (FIXTURES / "text.sse").read_bytes()
    dec = StreamDecoder(provider="p")
    events = dec.feed(data)
    assert isinstance(events[-1], ir.MessageStop)
    assert dec.feed(b'event: ping\ndata: {"type":"ping"}\n\n') == []
    assert dec.close() == []


def _regen() -> None:
    for name in NAMES:
        lines = run([(FIXTURES / f"{name}.sse").read_bytes()])
        (FIXTURES / f"{name}.expected").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {name}.expected ({len(lines)} lines)")


if __name__ == "__main__" and "--regen" in sys.argv:
    _regen()
