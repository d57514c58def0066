"""Prometheus metrics: names, bounded label values, and multi-process aggregation."""
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ferryllm.ir import Usage
from ferryllm.metrics import ERROR_KINDS, Metrics

ENTRIES = ("anthropic", "openai")

ROOT = pathlib.Path(__file__).resolve().parents[2]


def samples(body: bytes) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(body: bytes, name: str, **labels) -> float:
    return samples(body)[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def metrics(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    return Metrics(provider_names=["main", "backup"], entries=ENTRIES)


def test_render_contains_every_metric_name(metrics):
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    text = body.decode()
    for name in ("ferryllm_requests_total", "ferryllm_request_duration_seconds_bucket",
                 "ferryllm_time_to_first_token_seconds_bucket", "ferryllm_in_flight_requests",
                 "ferryllm_upstream_errors_total", "ferryllm_retries_total",
                 "ferryllm_circuit_state", "ferryllm_tokens_total"):
        assert name in text, name
    # pre-created children: known providers show zeros before any traffic
    assert value(body, "ferryllm_requests_total", entry="openai", provider="main",
                 status_class="2xx") == 0
    assert value(body, "ferryllm_upstream_errors_total", provider="backup", kind="stream") == 0
    assert value(body, "ferryllm_circuit_state", provider="main") == 0


def test_request_lifecycle(metrics):
    metrics.request_started("anthropic")
    metrics.request_started("anthropic")
    body, _ = metrics.render()
    assert value(body, "ferryllm_in_flight_requests", entry="anthropic") == 2
    metrics.request_finished("anthropic", "main", 200, 1.5, 0.2)
    metrics.request_finished("anthropic", None, 429, 0.001)
    body, _ = metrics.render()
    assert value(body, "ferryllm_in_flight_requests", entry="anthropic") == 0
    assert value(body, "ferryllm_requests_total", entry="anthropic", provider="main",
                 status_class="2xx") == 1
    assert value(body, "ferryllm_requests_total", entry="anthropic", provider="none",
                 status_class="4xx") == 1
    assert value(body, "ferryllm_request_duration_seconds_sum", entry="anthropic",
                 provider="main") == 1.5
    assert value(body, "ferryllm_time_to_first_token_seconds_count", entry="anthropic",
                 provider="main") == 1
    assert value(body, "ferryllm_time_to_first_token_seconds_bucket", entry="anthropic",
                 provider="main", le="0.25") == 1
    assert value(body, "ferryllm_time_to_first_token_seconds_bucket", entry="anthropic",
                 provider="main", le="0.1") == 0
    # no TTFT for the refused request
    assert value(body, "ferryllm_time_to_first_token_seconds_count", entry="anthropic",
                 provider="none") == 0


def test_ttft_buckets_span_5ms_to_60s(metrics):
    body, _ = metrics.render()
    les = {dict(labels)["le"] for (name, labels) in samples(body)
           if name == "ferryllm_time_to_first_token_seconds_bucket"}
    assert {"0.005", "60.0", "+Inf"} <= les


def test_upstream_counters(metrics):
    metrics.upstream_error("main", "timeout")
    metrics.upstream_error("main", "status_429")
    metrics.retry("main")
    metrics.fallback("main", "backup")
    metrics.circuit("main", "open")
    metrics.circuit("backup", "half_open")
    metrics.tokens("main", Usage(input_tokens=100, output_tokens=20, cache_read_input_tokens=50,
                                 cache_creation_input_tokens=7))
    metrics.tokens("main", Usage(input_tokens=1))
    metrics.tokens("main", None)
    metrics.tokens("main", Usage(input_tokens=-5, output_tokens=-1))  # a buggy provider: skipped
    body, _ = metrics.render()
    assert value(body, "ferryllm_upstream_errors_total", provider="main", kind="timeout") == 1
    assert value(body, "ferryllm_upstream_errors_total", provider="main", kind="status_429") == 1
    assert value(body, "ferryllm_retries_total", provider="main") == 1
    assert value(body, "ferryllm_fallbacks_total", from_provider="main",
                 to_provider="backup") == 1
    assert value(body, "ferryllm_circuit_state", provider="main") == 1
    assert value(body, "ferryllm_circuit_state", provider="backup") == 2
    for t, n in (("input", 101), ("output", 20), ("cache_read", 50), ("cache_write", 7)):
        assert value(body, "ferryllm_tokens_total", provider="main", type=t) == n
    metrics.circuit("main", "closed")
    body, _ = metrics.render()
    assert value(body, "ferryllm_circuit_state", provider="main") == 0


def test_label_values_are_bounded(metrics):
    """Client input never becomes a label value."""
    metrics.request_started("evil\nentry")
    metrics.request_finished("evil\nentry", "client-chosen-model", 200, 0.1, None)
    metrics.request_finished("openai", "main", 999, 0.1, None)
    metrics.upstream_error("who", "made-up-kind")
    metrics.retry("who")
    metrics.fallback("who", "main")
    metrics.tokens("who", Usage(input_tokens=3))
    body, _ = metrics.render()
    assert "evil" not in body.decode() and "client-chosen" not in body.decode()
    assert "who" not in body.decode() and "made-up" not in body.decode()
    assert value(body, "ferryllm_requests_total", entry="other", provider="none",
                 status_class="2xx") == 1
    assert value(body, "ferryllm_requests_total", entry="openai", provider="main",
                 status_class="other") == 1
    assert value(body, "ferryllm_upstream_errors_total", provider="none", kind="other") == 1
    assert value(body, "ferryllm_tokens_total", provider="none", type="input") == 3
    assert value(body, "ferryllm_in_flight_requests", entry="other") == 0
    assert set(ERROR_KINDS) == {"connect", "timeout", "status_4xx", "status_429", "status_5xx",
                                "protocol", "stream"}


def test_instances_do_not_share_a_registry(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    a, b = Metrics(["p"], ENTRIES), Metrics(["p"], ENTRIES)
    a.retry("p")
    assert value(a.render()[0], "ferryllm_retries_total", provider="p") == 1
    assert value(b.render()[0], "ferryllm_retries_total", provider="p") == 0


WORKER = textwrap.dedent("""
    import os, sys
    import prometheus_client  # imported BEFORE the env var is set, as `serve --workers` does
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
    from ferryllm.metrics import Metrics
    from ferryllm.ir import Usage
    m = Metrics(["main"], ("anthropic", "openai"))
    n = int(sys.argv[2])
    for _ in range(n):
        m.request_started("openai")
    m.request_finished("openai", "main", 200, 0.5, 0.1)
    m.tokens("main", Usage(input_tokens=10))
    m.circuit("main", sys.argv[3])
    if sys.argv[4] == "render":
        sys.stdout.write(m.render()[0].decode())
    if sys.argv[4] == "dead":
        Metrics.mark_process_dead(int(sys.argv[5]))
        sys.stdout.write(m.render()[0].decode())
    print(os.getpid(), file=sys.stderr)
""")


def run_worker(tmp_path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return subprocess.run([sys.executable, "-c", WORKER, str(tmp_path), *map(str, args)],
                          env=env, capture_output=True, check=True, timeout=60)


def test_multiprocess_render_aggregates_workers(tmp_path):
    first = run_worker(tmp_path, 3, "open", "-")  # exits with 2 requests still in flight
    second = run_worker(tmp_path, 1, "closed", "render")
    body = second.stdout
    assert value(body, "ferryllm_requests_total", entry="openai", provider="main",
                 status_class="2xx") == 2
    assert value(body, "ferryllm_tokens_total", provider="main", type="input") == 20
    assert value(body, "ferryllm_request_duration_seconds_count", entry="openai",
                 provider="main") == 2
    # live gauges: the first worker's values count until it is marked dead
    assert value(body, "ferryllm_in_flight_requests", entry="openai") == 2
    assert value(body, "ferryllm_circuit_state", provider="main") == 1  # the worst worker
    dead_pid = int(first.stderr.split()[-1])
    third = run_worker(tmp_path, 1, "closed", "dead", dead_pid)
    body = third.stdout
    assert value(body, "ferryllm_in_flight_requests", entry="openai") == 0
    assert value(body, "ferryllm_circuit_state", provider="main") == 0
    assert value(body, "ferryllm_requests_total", entry="openai", provider="main",
                 status_class="2xx") == 3  # counters of dead workers are kept
