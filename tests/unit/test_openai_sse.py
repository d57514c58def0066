"""adapters/openai_sse.StreamDecoder: every fixture in every chunking gives one output.

`tests/fixtures/openai/NAME.sse` is a provider byte stream; `NAME.expected` the IR events it
must produce, one JSON object per line (`render`), and for a stream that must fail a last line
`{"raise": …}`. Events the decoder returns before it raises are a prefix of the expected ones
(a raising `feed()` returns nothing for its own read).
"""
from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ferryllm import ir
from ferryllm.protocols.openai.fields import split_think, usage_from_openai
from ferryllm.protocols.openai.adapter_stream import StreamDecoder
from ferryllm.errors import GatewayError, UpstreamError, UpstreamProtocolError
from tests.chunking import chunkings
from tests.irjson import event_fields

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openai"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.sse"))
LONG_NAME = "mcp__github.com__create_or_update_file_contents_in_repository_branch"
REQUEST = ir.Request(
    model="backend-model", messages=[ir.Message("user", [ir.TextBlock("hi")])],
    tools=[ir.Tool(LONG_NAME, None, {"type": "object"}), ir.Tool("get_weather", None, {})],
    stop=["STOP"], stream=True)


def render(ev: ir.StreamEvent) -> str:
    return orjson.dumps({"event": type(ev).__name__, **event_fields(ev)}).decode()


def render_error(err: GatewayError) -> str:
    return orjson.dumps({"raise": type(err).__name__, "status": err.status,
                         "message": err.message}).decode()


def run(chunks: list[bytes], req: ir.Request = REQUEST) -> tuple[list[str], str | None]:
    dec = StreamDecoder(req, "prov")
    lines: list[str] = []
    try:
        for chunk in chunks:
            lines.extend(render(ev) for ev in dec.feed(chunk))
        lines.extend(render(ev) for ev in dec.close())
    except GatewayError as err:
        return lines, render_error(err)
    return lines, None


def expected(name: str) -> tuple[list[str], str | None]:
    lines = (FIXTURES / f"{name}.expected").read_text("utf-8").splitlines()
    if lines and lines[-1].startswith('{"raise"'):
        return lines[:-1], lines[-1]
    return lines, None


def check_well_formed(lines: list[str]) -> None:
    """The IR stream invariants: MessageStart; blocks one at a time with consecutive indices;
    one MessageDelta; MessageStop."""
    evs = [orjson.loads(line) for line in lines]
    assert evs[0]["event"] == "MessageStart"
    assert [e["event"] for e in evs[-2:]] == ["MessageDelta", "MessageStop"]
    open_index, next_index = None, 0
    for ev in evs[1:-2]:
        kind = ev["event"]
        if kind.endswith("Start"):
            assert open_index is None and ev["index"] == next_index
            open_index, next_index = ev["index"], next_index + 1
        elif kind == "BlockStop":
            assert ev["index"] == open_index
            open_index = None
        else:
            assert ev["index"] == open_index, ev
    assert open_index is None


@pytest.mark.parametrize("name", NAMES)
def test_fixture_every_chunking(name: str) -> None:
    data = (FIXTURES / f"{name}.sse").read_bytes()
    want, want_error = expected(name)
    for chunks in chunkings(data):
        got, error = run(chunks)
        assert error == want_error, (name, len(chunks))
        if want_error is None:
            assert got == want, (name, len(chunks))
        else:
            assert got == want[:len(got)], (name, len(chunks))
    if want_error is None:
        check_well_formed(want)


def test_fixtures_cover_the_documented_cases() -> None:
    assert len(NAMES) >= 19
    for name in NAMES:
        assert (FIXTURES / f"{name}.expected").exists(), name


def _tool_inputs(lines: list[str]) -> dict[str, dict]:
    """Tool id → parsed input, from the concatenated argument deltas."""
    names, args, current = {}, {}, None
    for ev in map(orjson.loads, lines):
        if ev["event"] == "ToolUseStart":
            current = ev["id"]
            names[current], args[current] = ev["name"], ""
        elif ev["event"] == "ToolArgsDelta":
            args[current] += ev["partial_json"]
    return {i: (names[i], orjson.loads(a) if a else {}) for i, a in args.items()}


def test_interleaved_arguments_are_exact() -> None:
    lines, _ = run([(FIXTURES / "tool_interleaved.sse").read_bytes()])
    assert _tool_inputs(lines) == {"call_X": ("read_file", {"path": "a.py"}),
                                   "call_Y": ("list_dir", {"dir": "src"})}
    lines, _ = run([(FIXTURES / "tool_interleaved_late.sse").read_bytes()])
    assert _tool_inputs(lines) == {"call_P": ("write_file", {"path": "x", "text": "hi"}),
                                   "call_Q": ("bash", {"cmd": "ls"})}


def test_interleaved_streams_the_first_call_live() -> None:
    """Call 0's fragments come out as they arrive, before call 1 has finished."""
    data = (FIXTURES / "tool_interleaved.sse").read_bytes()
    frames = [f + b"\n\n" for f in data.split(b"\n\n") if f]
    dec = StreamDecoder(REQUEST, "prov")
    per_frame = [list(dec.feed(f)) for f in frames]
    # frame 2 is call 0's first fragment: streamed at once
    assert per_frame[2] == [ir.ToolArgsDelta(0, '{"path":')]
    # call 1 opens as soon as call 0's arguments are a complete object
    assert [type(e).__name__ for e in per_frame[4]] == [
        "ToolArgsDelta", "BlockStop", "ToolUseStart", "ToolArgsDelta"]


def test_sequential_parallel_calls_open_at_once() -> None:
    data = (FIXTURES / "openai_tool_parallel.sse").read_bytes()
    frames = [f + b"\n\n" for f in data.split(b"\n\n") if f]
    dec = StreamDecoder(REQUEST, "prov")
    out = [list(dec.feed(f)) for f in frames]
    assert [type(e).__name__ for e in out[3]] == ["BlockStop", "ToolUseStart"]
    assert out[3][1].id == "call_B2"


def test_text_streams_delta_by_delta() -> None:
    dec = StreamDecoder(REQUEST, "prov")
    first = dec.feed(b'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"a"}}]}\n\n')
    assert [type(e).__name__ for e in first] == ["MessageStart", "TextStart", "TextDelta"]
    assert list(dec.feed(b'data: {"choices":[{"index":0,"delta":{"content":"b"}}]}\n\n')) == [
        ir.TextDelta(0, "b")]
    assert dec.feed(b'data: {"choices":[{"index":0,"delta":{}}]}\n\n') == ()
    assert dec.feed(b": ping\n\n") == ()


def test_finish_waits_for_usage_and_done() -> None:
    dec = StreamDecoder(REQUEST, "prov")
    dec.feed(b'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"a"}}]}\n\n')
    assert dec.feed(b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n') == ()
    assert dec.feed(b'data: {"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":2,'
                    b'"prompt_tokens_details":{"cached_tokens":4}}}\n\n') == ()
    tail = dec.feed(b"data: [DONE]\n\n")
    assert tail == [ir.BlockStop(0), ir.MessageDelta("end_turn", None, ir.Usage(6, 2, 4, 0)),
                    ir.MessageStop()]
    assert dec.feed(b'data: {"choices":[{"index":0,"delta":{"content":"late"}}]}\n\n') == ()
    assert dec.close() == ()


def test_message_start_usage_is_never_invented() -> None:
    dec = StreamDecoder(REQUEST, "prov")
    (start, *_) = dec.feed(b'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n')
    assert start == ir.MessageStart("c1", "m", ir.Usage())
    dec = StreamDecoder(REQUEST, "prov")
    (start, *_) = dec.feed(b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":0}}\n\n')
    assert start == ir.MessageStart("c1", "backend-model", ir.Usage(7, 0, 0, 0))


def test_done_without_chunks_is_an_empty_message() -> None:
    dec = StreamDecoder(REQUEST, "prov")
    evs = dec.feed(b"data: [DONE]\n\n")
    assert [type(e).__name__ for e in evs] == ["MessageStart", "MessageDelta", "MessageStop"]


def test_empty_stream_raises_on_close() -> None:
    dec = StreamDecoder(REQUEST, "prov")
    assert dec.feed(b"") == ()
    with pytest.raises(UpstreamProtocolError, match="ended before completion"):
        dec.close()


@pytest.mark.parametrize("payload", [b"not json", b"[1,2]", b'"x"', b'{"choices":[{"delta":{"content":5}}]}',
                                     b'{"choices":[{"delta":{"tool_calls":{"a":1}}}]}',
                                     b'{"choices":"nope"}'])
def test_malformed_payloads_raise_protocol_errors(payload: bytes) -> None:
    dec = StreamDecoder(REQUEST, "prov")
    with pytest.raises(UpstreamProtocolError) as info:
        dec.feed(b"data: " + payload + b"\n\n")
    assert info.value.message.startswith("malformed chunk from provider")
    assert payload.decode() not in info.value.message or len(payload) < 3


@pytest.mark.parametrize("error, status", [
    ({"message": "slow down", "code": 429}, 429),
    ({"message": "boom", "code": "server_error", "type": "server_error"}, 500),
    ({"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"}, 400),
    ({"message": "odd"}, 502),
    ("plain string", 502),
])
def test_inband_errors_keep_the_status(error, status) -> None:
    dec = StreamDecoder(REQUEST, "prov")
    with pytest.raises(UpstreamError) as info:
        dec.feed(b"data: " + orjson.dumps({"error": error}) + b"\n\n")
    assert info.value.status == status
    assert info.value.provider == "prov"


def test_error_event_name_is_read_and_unknown_events_skipped() -> None:
    dec = StreamDecoder(REQUEST, "prov")
    assert dec.feed(b"event: heartbeat\ndata: tick\n\n") == ()
    with pytest.raises(UpstreamError):
        dec.feed(b'event: error\ndata: {"error":{"message":"x","code":503}}\n\n')
    with pytest.raises(UpstreamError) as info:
        StreamDecoder(REQUEST, "prov").feed(b'event: error\ndata: {"message":"overloaded","code":529}\n\n')
    assert info.value.status == 529 and info.value.message == "overloaded"


def test_usage_mapping_does_not_double_count() -> None:
    assert usage_from_openai({"prompt_tokens": 100, "completion_tokens": 5,
                              "prompt_tokens_details": {"cached_tokens": 60}}) == ir.Usage(40, 5, 60, 0)
    assert usage_from_openai({"prompt_tokens": 100, "completion_tokens": 5,
                              "prompt_tokens_details": None}) == ir.Usage(100, 5, 0, 0)
    assert usage_from_openai({"prompt_tokens": 100, "completion_tokens": 5,
                              "prompt_cache_hit_tokens": 30}) == ir.Usage(70, 5, 30, 0)
    assert usage_from_openai({"prompt_tokens": 100, "completion_tokens": 5, "prompt_tokens_details":
                              {"cached_tokens": 50, "cache_write_tokens": 20}}) == ir.Usage(30, 5, 50, 20)
    assert usage_from_openai({}) == ir.Usage()


@pytest.mark.parametrize("content, want", [
    ("<think>a</think>b", ("a", "b")),
    ("  \n<think>\nplan\n</think>\n\nanswer", ("plan\n", "answer")),
    ("<think>unfinished", ("unfinished", "")),
    ("text <think>x</think>", (None, "text <think>x</think>")),
])
def test_split_think(content, want) -> None:
    assert split_think(content) == want


def test_missing_ids_are_deterministic() -> None:
    data = (FIXTURES / "tool_late_name_finish_stop.sse").read_bytes()
    a, _ = run([data])
    b, _ = run([data])
    assert a == b
    (tool_id,) = _tool_inputs(a)
    assert tool_id.startswith("call_")


def test_tool_names_map_back_only_when_shortened() -> None:
    lines, _ = run([(FIXTURES / "text_tool_text.sse").read_bytes()])
    assert [n for n, _ in _tool_inputs(lines).values()] == [LONG_NAME]
    plain = ir.Request(model="m", messages=[])
    lines, _ = run([(FIXTURES / "text_tool_text.sse").read_bytes()], plain)
    assert [n for n, _ in _tool_inputs(lines).values()] == [
        "mcp__github_com__create_or_update_file_contents_in_repo_5d6ef0fd"]


def test_whitespace_only_late_fragment_for_finished_call_is_dropped() -> None:
    dec = StreamDecoder(REQUEST, "prov")
    chunks = [
        {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 1, "id": "b", "function": {"name": "g", "arguments": "{\"x\":1}"}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": "\n"}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    lines = []
    for c in chunks:
        lines += [render(e) for e in dec.feed(b"data: " + orjson.dumps(c) + b"\n\n")]
    lines += [render(e) for e in dec.close()]
    check_well_formed(lines)
    assert _tool_inputs(lines) == {"a": ("f", {}), "b": ("g", {"x": 1})}


def feed_all(chunks: list[dict], req: ir.Request = REQUEST) -> list[str]:
    dec = StreamDecoder(req, "prov")
    lines = []
    for c in chunks:
        lines += [render(e) for e in dec.feed(b"data: " + orjson.dumps(c) + b"\n\n")]
    lines += [render(e) for e in dec.close()]
    check_well_formed(lines)
    return lines


def delta(d: dict, finish: str | None = None) -> dict:
    return {"id": "c", "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


def test_provider_without_tool_indices() -> None:
    lines = feed_all([
        delta({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{\"x\""}}]}),
        delta({"tool_calls": [{"function": {"arguments": ": 1}"}}]}),
        delta({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
        delta({}, "tool_calls"),
    ])
    assert _tool_inputs(lines) == {"a": ("f", {"x": 1}), "b": ("g", {})}


def test_id_arriving_after_the_first_fragment_is_adopted_before_opening() -> None:
    lines = feed_all([
        delta({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
        delta({"tool_calls": [{"index": 0, "id": "real", "function": {"name": "f"}}]}),
        delta({}, "tool_calls"),
    ])
    assert _tool_inputs(lines) == {"real": ("f", {})}


def test_nameless_call_is_dropped_at_the_end() -> None:
    lines = feed_all([
        delta({"content": "hi"}),
        delta({"tool_calls": [{"index": 0, "id": "x", "function": {"arguments": "{}"}}]}),
        delta({}, "tool_calls"),
    ])
    assert not _tool_inputs(lines)
    assert orjson.loads(lines[-2])["stop_reason"] == "end_turn"


def test_leading_whitespace_before_a_tool_call_is_not_a_text_block() -> None:
    lines = feed_all([
        delta({"content": "\n\n"}),
        delta({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]}),
        delta({}, "tool_calls"),
    ])
    assert [orjson.loads(l)["event"] for l in lines] == [
        "MessageStart", "ToolUseStart", "ToolArgsDelta", "BlockStop", "MessageDelta", "MessageStop"]


def test_unclosed_think_and_partial_tags_are_flushed() -> None:
    lines = feed_all([delta({"content": "<think>abc</thi"}), delta({}, "length")])
    thinking = [orjson.loads(l) for l in lines if '"ThinkingDelta"' in l]
    assert "".join(t["thinking"] for t in thinking) == "abc</thi"
    lines = feed_all([delta({"content": "  <thi"}), delta({}, "stop")])
    assert [orjson.loads(l)["text"] for l in lines if '"TextDelta"' in l] == ["  <thi"]


def test_text_arriving_while_a_tool_call_is_incomplete_waits_its_turn() -> None:
    lines = feed_all([
        delta({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{\"k\":"}}]}),
        delta({"content": "between"}),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": "2}"}}]}),
        delta({"content": " more"}),
        delta({}, "tool_calls"),
    ])
    evs = [orjson.loads(l) for l in lines]
    assert [e["event"] for e in evs[1:-2]] == [
        "ToolUseStart", "ToolArgsDelta", "ToolArgsDelta", "BlockStop",
        "TextStart", "TextDelta", "TextDelta", "BlockStop"]
    assert _tool_inputs(lines) == {"a": ("f", {"k": 2})}


def test_arguments_sent_as_an_object_are_serialised() -> None:
    lines = feed_all([
        delta({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": {"k": [1]}}}]}),
        delta({}, "tool_calls"),
    ])
    assert _tool_inputs(lines) == {"a": ("f", {"k": [1]})}
