"""The load tester's arithmetic and checks: percentiles, the open-loop schedule, the result
schema, first-content detection and end-of-stream checks, and the exit status."""
import asyncio
import socket
import time

import orjson
import pytest

from benchmarks import load_test
from benchmarks.load_test import StreamCheck, closed_loop, due_time, open_loop
from benchmarks.mock_upstream import ENCODERS, Shape
from benchmarks.report import Tally, compare, distribution, document, percentile, summarize, table
from tests.chunking import chunkings


# -- percentiles ------------------------------------------------------------------------------

def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1
    ten = [float(i) for i in range(1, 11)]
    assert percentile(ten, 50) == 5  # ceil(5.0) = 5th value
    assert percentile(ten, 95) == 10  # ceil(9.5) = 10th value
    assert percentile(ten, 99) == 10
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_distribution_is_in_milliseconds():
    d = distribution([0.003, 0.001, 0.002, 0.004])
    assert d == {"count": 4, "mean": pytest.approx(2.5), "p50": pytest.approx(2.0),
                 "p95": pytest.approx(4.0), "p99": pytest.approx(4.0), "max": pytest.approx(4.0)}
    assert distribution([]) == {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None,
                                "max": None}


# -- schedulers -------------------------------------------------------------------------------

def test_due_times_follow_the_rate():
    assert [due_time(10.0, i, 4.0) for i in range(5)] == [10.0, 10.25, 10.5, 10.75, 11.0]
    assert due_time(0.0, 1000, 1000.0) == pytest.approx(1.0)


async def test_open_loop_starts_on_schedule_whatever_the_completions():
    """Each request is slow (150 ms) but requests still start every 10 ms: the loop never waits
    for completions, and each run is handed its scheduled start, not its actual start."""
    dues, starts, inflight, peak = [], [], [0], [0]

    async def run(due: float) -> None:
        dues.append(due)
        starts.append(time.perf_counter())
        inflight[0] += 1
        peak[0] = max(peak[0], inflight[0])
        await asyncio.sleep(0.15)
        inflight[0] -= 1

    lag: list[float] = []
    t0 = time.perf_counter()
    await open_loop(20, 100.0, None, run, lag=lag)
    elapsed = time.perf_counter() - t0
    assert len(dues) == 20 and len(lag) == 20
    gaps = [b - a for a, b in zip(dues, dues[1:])]
    assert all(g == pytest.approx(0.01, abs=1e-9) for g in gaps)  # the schedule itself is exact
    assert all(s >= d - 1e-4 for s, d in zip(starts, dues))  # never early
    assert sorted(lag)[10] < 0.05  # the median start is close to its schedule (noisy machine)
    assert peak[0] >= 10  # concurrency grew with the schedule, not capped by completions
    assert elapsed < 0.19 + 0.15 + 1.0  # about 190 ms of schedule + one request, not 20 × 150 ms


async def test_open_loop_stops_at_the_deadline():
    seen = []

    async def run(due: float) -> None:
        seen.append(due)

    start = time.perf_counter()
    await open_loop(1000, 200.0, start + 0.1, run)
    assert 10 <= len(seen) <= 25  # ~0.1 s at 200/s, never the 1000 requested


async def test_closed_loop_keeps_concurrency_requests_in_flight():
    inflight, peak, count = [0], [0], [0]

    async def run(t0: float) -> None:
        count[0] += 1
        inflight[0] += 1
        peak[0] = max(peak[0], inflight[0])
        await asyncio.sleep(0.005)
        inflight[0] -= 1

    await closed_loop(50, 8, None, run)
    assert count[0] == 50 and peak[0] == 8


# -- result schema ----------------------------------------------------------------------------

def _tally(latencies, ttfcs, errors=()):
    t = Tally()
    for lat, ttfc in zip(latencies, ttfcs):
        t.started += 1
        t.record(200, None, lat, ttfc)
    for status, kind in errors:
        t.started += 1
        t.record(status, kind, 1.0, None)
    return t


RUN_KEYS = {"label", "url", "requests", "ok", "failed", "duration_s", "requests_per_s",
            "status_counts", "errors", "latency_ms", "ttfc_ms", "client_cpu_us_per_request",
            "processes", "gateway_cpu_us_per_request"}


def test_summary_and_document_schema():
    direct = summarize("direct", "http://127.0.0.1:8082/v1/messages",
                       _tally([0.010] * 10, [0.002] * 10), 1.0, 0.002,
                       {"gateway": {"pid": 1, "cpu_s": 0.0}})
    gateway = summarize("gateway", "http://127.0.0.1:3000/v1/messages",
                        _tally([0.012] * 8, [0.003] * 8, [(502, "http_502"), (None, "timeout")]),
                        2.0, 0.004, {"gateway": {"pid": 1, "cpu_s": 0.005, "rss_mb_peak": 50.0}})
    assert set(direct) == RUN_KEYS and set(gateway) == RUN_KEYS
    assert gateway["requests"] == 10 and gateway["ok"] == 8 and gateway["failed"] == 2
    assert gateway["status_counts"] == {"200": 8, "502": 1}
    assert gateway["errors"] == {"http_502": 1, "timeout": 1}
    assert gateway["requests_per_s"] == pytest.approx(5.0)
    assert gateway["client_cpu_us_per_request"] == pytest.approx(400.0)
    assert gateway["gateway_cpu_us_per_request"] == pytest.approx(500.0)
    assert gateway["latency_ms"]["p50"] == pytest.approx(12.0)  # failures are not in latency
    cmp = compare(direct, gateway)
    assert cmp["requests_per_s_ratio"] == pytest.approx(0.5)
    assert cmp["ttfc_ms_over_direct"]["p50"] == pytest.approx(1.0)
    assert cmp["latency_ms_over_direct"]["p99"] == pytest.approx(2.0)
    doc = document({"preset": "anthropic-messages", "protocol": "anthropic", "model": "m", "stream": True,
                    "concurrency": 8, "rate": None, "client": "aiohttp"}, [direct, gateway], cmp)
    assert doc["schema"] == "ferryllm-load-test/1" and doc["ok"] is False
    assert orjson.loads(orjson.dumps(doc)) == doc  # valid JSON, no lossy types
    text = table(doc)
    assert "gateway vs direct" in text and "FAILED" in text and "http_502:1" in text


def test_ok_needs_every_request_ok():
    run = summarize("run", "u", _tally([0.01], [None]), 1.0, 0.0)
    assert document({}, [run], None)["ok"] is True
    assert run["ttfc_ms"]["count"] == 0 and run["ttfc_ms"]["p50"] is None


# -- stream checks ----------------------------------------------------------------------------

def _stream(protocol: str, chunks: int = 3, tool_calls: int = 0, truncate: bool = False) -> bytes:
    shape = Shape(protocol, "m", chunks, 8, tool_calls, "get_weather", truncate)
    return ENCODERS[protocol](shape).whole


def _check(protocol: str, chunks: list[bytes], validate: bool = False):
    check = StreamCheck(protocol, validate)
    first = [i for i, c in enumerate(chunks) if check.feed(c)]
    return first, check.close()


@pytest.mark.parametrize("protocol", ["anthropic", "openai", "gemini"])
@pytest.mark.parametrize("validate", [False, True])
def test_a_whole_stream_is_ok_in_every_chunking(protocol, validate):
    data = _stream(protocol, tool_calls=1)
    for chunks in chunkings(data):
        first, error = _check(protocol, chunks, validate)
        assert error is None
        assert len(first) == 1  # first content is reported once


@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
def test_first_content_is_the_first_delta_not_the_preamble(protocol):
    data = _stream(protocol)
    marker = b"event: content_block_delta" if protocol == "anthropic" else b'"delta":{"content":"'
    cut = data.index(marker)
    # everything before the first content delta, then the rest
    first, error = _check(protocol, [data[:cut], data[cut:]])
    assert first == [1] and error is None
    # one byte short of the delta's blank line: not yet
    end = data.index(b"\n\n", cut) + 1
    first, _ = _check(protocol, [data[:end], data[end:]])
    assert first == [1]


def test_openai_tool_call_only_stream_has_content():
    data = _stream("openai", chunks=0, tool_calls=1)
    first, error = _check("openai", [data])
    assert first == [0] and error is None


def test_the_gemini_mock_stream_is_what_ferryllm_decodes():
    """The benchmark's Gemini mode speaks the real grammar: ferryllm's own decoder reads it."""
    from ferryllm import ir
    from ferryllm.protocols.gemini.adapter_stream import StreamDecoder
    dec = StreamDecoder()
    events = [*dec.feed(_stream("gemini", chunks=3, tool_calls=1)), *dec.close()]
    assert sum(isinstance(e, ir.TextDelta) for e in events) == 3
    assert [e.name for e in events if isinstance(e, ir.ToolUseStart)] == ["get_weather"]
    assert events[-2].stop_reason == ir.TOOL_USE and events[-2].usage.output_tokens == 11


@pytest.mark.parametrize("protocol", ["anthropic", "openai", "gemini"])
def test_a_stream_without_its_end_is_an_error(protocol):
    data = _stream(protocol, truncate=True)
    for chunks in ([data], [data[:-5], data[-5:]]):
        first, error = _check(protocol, chunks)
        assert first == [0] and error == "incomplete_stream"


def test_in_band_errors():
    anthropic = (b'event: message_start\ndata: {"type":"message_start","message":{}}\n\n'
                 b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"x"}}\n\n')
    assert _check("anthropic", [anthropic])[1] == "stream_error:overloaded_error"
    openai = (b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
              b'data: {"error":{"message":"boom","type":"server_error"}}\n\ndata: [DONE]\n\n')
    assert _check("openai", [openai]) == ([0], "stream_error:server_error")


def test_events_after_the_end_and_bad_json():
    done = b"data: [DONE]\n\n"
    assert _check("openai", [b'data: {"choices":[]}\n\n' + done + done])[1] == "data_after_end"
    assert _check("openai", [b"data: {not json\n\n" + done])[1] == "bad_json"
    bad = b'event: content_block_delta\ndata: {oops\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n'
    assert _check("anthropic", [bad])[1] is None  # by name only, without --validate
    assert _check("anthropic", [bad], validate=True)[1] == "bad_json"


def test_anthropic_events_without_event_lines_are_typed_by_their_data():
    data = (b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}\n\n'
            b'data: {"type":"message_stop"}\n\n')
    assert _check("anthropic", [data]) == ([0], None)


# -- exit status ------------------------------------------------------------------------------

def test_exit_status_is_1_when_requests_fail(capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = load_test.main(["--preset", "mock-openai", "--url", f"http://127.0.0.1:{port}",
                           "--requests", "3", "--concurrency", "2", "--timeout", "5", "--json", "--quiet"])
    doc = orjson.loads(capsys.readouterr().out)
    assert code == 1 and doc["ok"] is False
    assert doc["runs"][0]["errors"] == {"connect": 3}


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as exc:
        load_test.parse_args(["--rate", "0"])
    assert exc.value.code == 2


def test_presets_target_the_gateway_and_compare_with_their_mock():
    args = load_test.parse_args(["--compare"])
    assert (args.preset, args.url, args.model, args.compare) == (
        "mock-anthropic", "http://127.0.0.1:3000", "claude-bench", "http://127.0.0.1:8082")
    args = load_test.parse_args(["--preset", "openai-chat", "--compare", "http://127.0.0.1:9"])
    assert (args.protocol, args.compare, args.realistic) == ("openai", "http://127.0.0.1:9", True)


@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
def test_realistic_bodies_are_claude_code_sized(protocol):
    body = load_test.request_body(protocol, "m", True, 256, realistic=True)
    size = len(orjson.dumps(body))
    assert 5_000 < size < 20_000 and len(body["tools"]) == 12
