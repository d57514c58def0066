"""protocols/gemini/adapter_stream.StreamDecoder: Gemini SSE bytes → IR events.

Every fixture `tests/fixtures/gemini/NAME.sse` is decoded in every chunking and must give
exactly `NAME.expected` (one JSON object per IR event; a final `{"error": …}` line when the
decoder raises). Regenerate after a deliberate change with
`python -m tests.unit.test_gemini_adapter_stream --regen` and review the diff."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ferryllm import ir
from ferryllm.errors import GatewayError, UpstreamError, UpstreamProtocolError
from ferryllm.protocols.gemini.adapter_stream import StreamDecoder
from tests.chunking import chunkings
from tests.irjson import event_fields

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gemini"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.sse"))


def render(events: list[ir.StreamEvent]) -> list[str]:
    return [json.dumps({"event": type(ev).__name__, **event_fields(ev)},
                       ensure_ascii=False) for ev in events]


def run(chunks: list[bytes], req: ir.Request | None = None) -> list[str]:
    dec = StreamDecoder(req, provider="gemini-test")
    lines: list[str] = []
    try:
        for chunk in chunks:
            lines += render(dec.feed(chunk))
        lines += render(dec.close())
    except GatewayError as err:
        lines += render(err.events)
        lines.append(json.dumps({"error": type(err).__name__, "status": err.status,
                                 "retryable": err.retryable, "message": str(err)},
                                ensure_ascii=False))
    return lines


def expected(name: str) -> list[str]:
    return (FIXTURES / f"{name}.expected").read_text(encoding="utf-8").splitlines()


def test_fixtures_exist():
    assert len(NAMES) >= 12
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


@pytest.mark.parametrize("name", [n for n in NAMES if "error" not in (_events(n) or [{}])[-1]])
def test_complete_streams_are_well_formed(name):
    events = _events(name)
    assert events[0]["event"] == "MessageStart"
    assert [e["event"] for e in events[-2:]] == ["MessageDelta", "MessageStop"]
    open_index, next_index = None, 0
    for e in events[1:-2]:
        if e["event"] in ("TextStart", "ThinkingStart", "ToolUseStart"):
            assert open_index is None and e["index"] == next_index
            open_index, next_index = e["index"], next_index + 1
        elif e["event"] == "BlockStop":
            assert e["index"] == open_index
            open_index = None
        else:
            assert e["index"] == open_index
    assert open_index is None


def test_stop_with_a_call_is_tool_use_also_across_chunks():
    assert _events("call_then_stop_later")[-2]["stop_reason"] == "tool_use"
    assert _events("text_then_call")[-2]["stop_reason"] == "tool_use"
    assert _events("parallel_calls")[-2]["stop_reason"] == "tool_use"
    assert _events("text")[-2]["stop_reason"] == "end_turn"


def test_signature_on_a_call_is_a_carrier_before_it():
    events = _events("thinking_then_call")
    kinds = [e["event"] for e in events]
    start = kinds.index("ToolUseStart")
    assert kinds[start - 3:start] == ["ThinkingStart", "SignatureDelta", "BlockStop"]
    assert events[start - 2]["signature"] == "gemini:CiQBcsjafSIG+/sig=="
    thought = [e["thinking"] for e in events if e["event"] == "ThinkingDelta"]
    assert "".join(thought) == "**Planning**\nI should list files. Then read them."


def test_signature_on_a_thought_part_signs_that_thinking_block():
    events = _events("thought_signature_on_thought")
    kinds = [e["event"] for e in events]
    assert kinds[1:5] == ["ThinkingStart", "ThinkingDelta", "SignatureDelta", "BlockStop"]
    assert events[3]["signature"] == "gemini:U0lHNA=="


def test_usage_comes_from_the_last_chunk_with_counts_without_double_count():
    usage = _events("usage_last_wins")[-2]["usage"]
    assert usage == {"input_tokens": 4, "output_tokens": 164, "cache_read_input_tokens": 8,
                     "cache_creation_input_tokens": 0}
    assert _events("usage_last_wins")[-2]["stop_reason"] == "max_tokens"


def test_malformed_function_call_is_a_retryable_upstream_error():
    last = _events("malformed_function_call")[-1]
    assert last["error"] == "UpstreamError" and last["retryable"] is True
    with pytest.raises(UpstreamError) as info:
        run_raising((FIXTURES / "malformed_function_call.sse").read_bytes())
    assert info.value.retryable


def run_raising(data: bytes) -> None:
    dec = StreamDecoder(provider="gemini-test")
    dec.feed(data)
    dec.close()


def test_inband_error_keeps_the_provider_status():
    last = _events("error_inband")[-1]
    assert last["error"] == "UpstreamError" and last["status"] == 503
    assert "overloaded" in last["message"]


def test_cut_stream_is_a_protocol_error():
    with pytest.raises(UpstreamProtocolError):
        run_raising((FIXTURES / "cut_no_finish.sse").read_bytes())


def test_blocked_prompt_is_a_refusal():
    events = _events("prompt_blocked")
    assert events[-2]["stop_reason"] == "refusal"
    assert events[-2]["usage"]["input_tokens"] == 7


def test_tool_names_shortened_upstream_come_back_as_the_client_sent_them():
    long = "mcp__server__" + "x" * 70
    from ferryllm.toolnames import shorten
    req = ir.Request(model="gemini-2.5-flash", messages=[],
                     tools=[ir.Tool(long, None, {"type": "object"})])
    data = ('data: {"candidates":[{"content":{"parts":[{"functionCall":{"name":%s,"args":{}}}],'
            '"role":"model"},"finishReason":"STOP","index":0}],"responseId":"r"}\r\n\r\n'
            % json.dumps(shorten(long))).encode()
    starts = [json.loads(x) for x in run([data], req) if '"ToolUseStart"' in x]
    assert starts[0]["name"] == long


def regen() -> None:
    for name in NAMES:
        data = (FIXTURES / f"{name}.sse").read_bytes()
        (FIXTURES / f"{name}.expected").write_text("\n".join(run([data])) + "\n",
                                                   encoding="utf-8")


if __name__ == "__main__" and "--regen" in sys.argv:
    regen()
