"""What `[shared_state]` adds per request: the same gateway, the same limits, once with the local
store and once with Redis (one ADMIT round trip per request, one FINISH in the background),
driven by `load_test` in turns (local, redis, local, redis, …) so machine noise hits both.

    python -m benchmarks.shared_state [--requests 3000] [--concurrency 32 | --rate 100]
                                      [--rounds 3] [--stream] [--json]

Starts on loopback: a redis-server, the OpenAI-compatible mock, two `ferryllm serve` processes
(one per store) with a global rate limit, a concurrency cap and a named client with a token rate
and a daily budget (high enough never to refuse), so every limit is checked and every request
takes and releases a lease. Reports per request: gateway CPU (µs, /proc), Redis server CPU (µs,
INFO cpu), latency p50/p99 (ms) and requests/s, the medians over the rounds, and redis/local
ratios. `--json` prints the numbers only.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
CLIENT_KEY = "bench-client-key"

CONFIG = """
[server]
listen = "127.0.0.1:{port}"
rate_limit_per_minute = 100000000
max_concurrent_requests = 100000
[logging]
level = "warning"
[auth]
enabled = true
[[auth.clients]]
name = "bench"
api_key_env = "BENCH_CLIENT_KEY"
rate_limit_per_minute = 100000000
tokens_per_minute = 1000000000
max_concurrent_requests = 100000
daily_token_budget = 1000000000000
[[providers]]
name = "mock"
type = "openai"
base_url = "http://127.0.0.1:{mock}"
api_key = "mock"
max_connections = 4096
[[routes]]
match = "*"
provider = "mock"
{shared}
"""
SHARED = """[shared_state]
url = "redis://127.0.0.1:{redis}/0"
key_prefix = "bench"
timeout_ms = 200
"""


def wait_http(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: {what} exited")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"error: {what} did not start")


def redis_cpu(port: int) -> float:
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "cpu"], capture_output=True,
                         text=True, check=True).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])


def load(port: int, pid: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.load_test", "--preset", "mock-openai",
           "--url", f"http://127.0.0.1:{port}", "--requests", str(args.requests),
           "--concurrency", str(args.concurrency), "--warmup", "200", "--bearer", CLIENT_KEY,
           "--gateway-pid", str(pid), "--json", "--quiet"]
    if args.stream:
        cmd.append("--stream")
    if args.rate:
        cmd += ["--rate", str(args.rate)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).stdout
    run = json.loads(out)["runs"][-1]
    if run["failed"] or set(run["status_counts"]) != {"200"}:
        raise SystemExit(f"error: not every request was served: {run['status_counts']} "
                         f"{run['errors']}")
    return run


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.shared_state",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--stream", action="store_true")
    p.add_argument("--rate", type=float, help="open loop: requests per second (latency at a load "
                   "that leaves the machine idle), instead of --concurrency")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if not shutil.which("redis-server"):
        raise SystemExit("error: redis-server is not installed")
    work = tempfile.mkdtemp(prefix="ferryllm-bench-")
    procs: list[subprocess.Popen] = []
    try:
        redis_port, mock_port = free_port(), free_port()
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", work], stdout=subprocess.DEVNULL))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "benchmarks.mock_upstream", "--port", str(mock_port),
             "--protocol", "openai"], cwd=ROOT, stdout=subprocess.DEVNULL))
        gateways = {}
        env = {**os.environ, "BENCH_CLIENT_KEY": CLIENT_KEY}
        for store in ("local", "redis"):
            port = free_port()
            path = Path(work) / f"{store}.toml"
            path.write_text(CONFIG.format(port=port, mock=mock_port, shared=SHARED.format(
                redis=redis_port) if store == "redis" else ""))
            proc = subprocess.Popen([sys.executable, "-m", "ferryllm", "serve", "-c", str(path)],
                                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
            procs.append(proc)
            wait_http(f"http://127.0.0.1:{port}/health", proc, f"ferryllm ({store})")
            gateways[store] = (port, proc.pid)
        runs: dict[str, list[dict]] = {"local": [], "redis": []}
        for _ in range(args.rounds):
            for store, (port, pid) in gateways.items():
                before = redis_cpu(redis_port)
                result = load(port, pid, args)
                result["redis_cpu_us_per_request"] = (
                    (redis_cpu(redis_port) - before) / (args.requests + 200) * 1e6)
                runs[store].append(result)
        summary = {store: summarize(rs) for store, rs in runs.items()}
        summary["ratio_redis_over_local"] = {
            k: summary["redis"][k] / summary["local"][k] if summary["local"][k] else None
            for k in summary["local"]}
        summary["setup"] = {"requests": args.requests, "concurrency": args.concurrency,
                            "rate": args.rate, "rounds": args.rounds, "stream": args.stream}
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print(table(summary))
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def summarize(results: list[dict]) -> dict:
    def med(get):
        return statistics.median(get(r) for r in results)
    return {
        "gateway_cpu_us_per_request": med(lambda r: r["gateway_cpu_us_per_request"]),
        "redis_cpu_us_per_request": med(lambda r: r["redis_cpu_us_per_request"]),
        "latency_p50_ms": med(lambda r: r["latency_ms"]["p50"]),
        "latency_p99_ms": med(lambda r: r["latency_ms"]["p99"]),
        "requests_per_s": med(lambda r: r["requests_per_s"]),
    }


def table(s: dict) -> str:
    rows = [("", "local", "redis", "redis/local")]
    for key, name in (("gateway_cpu_us_per_request", "gateway CPU µs/req"),
                      ("redis_cpu_us_per_request", "redis-server CPU µs/req"),
                      ("latency_p50_ms", "latency p50 ms"), ("latency_p99_ms", "latency p99 ms"),
                      ("requests_per_s", "requests/s")):
        ratio = s["ratio_redis_over_local"][key]
        rows.append((name, f"{s['local'][key]:.2f}", f"{s['redis'][key]:.2f}",
                     f"{ratio:.3f}" if ratio is not None else "-"))
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, width)) for r in rows)


if __name__ == "__main__":
    sys.exit(main())
