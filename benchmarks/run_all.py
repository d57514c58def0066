"""Run the issue-6 target scenarios and print the results table (markdown).

    python -m benchmarks.run_all                       # every scenario, 3 repeats, medians
    python -m benchmarks.run_all --scenarios 1,6 --repeat 1

ferryllm is pinned to one core (`taskset -c 0`), the mock upstream and the load tester to the
other (`-c 1`). Every process this starts is stopped by its PID. Raw JSON of every load run is
kept in --out. Scenarios (20-chunk streams of 20 bytes, OpenAI-compatible mock → ferryllm →
Anthropic client, against the Anthropic mock directly in the same run):
  1  gateway CPU per streamed request at concurrency 64 (/proc/PID/stat)
  2  open loop at 10 and 1,000 requests/s: time to first content over direct
  3  10,000 streams at concurrency 512, 200 ms provider time to first byte: errors, requests/s vs direct
  4  RSS with 512 concurrent streams (from 3), and RSS at 10,000 vs 100,000 requests (one long run)
  5  --workers 2 vs 1 (both unpinned: 2 cores shared with the mock and the load tester)
  6  JSON (non-streaming) path: gateway CPU per request at concurrency 64
  g1 Gemini entry: scenario 1's load from a Gemini client (`:streamGenerateContent?alt=sse`) to the
     OpenAI-compatible mock; with 1 in the same run, its CPU per request over scenario 1's
  g2 Gemini adapter: scenario 1's load from an Anthropic client to the Gemini mock (model
     via-gemini); with 1 in the same run, the same ratio
  r1 Responses entry (what Codex speaks): scenario 1's load from a Responses client to the
     OpenAI-compatible mock, legs interleaved with scenario 1's own in the same run: its CPU per
     request over the Anthropic entry's (target ≤ 1.25×)
  r2 Responses adapter: scenario 1's load from an Anthropic client to the Responses mock (model
     via-responses), interleaved the same way: its CPU over the OpenAI-compatible adapter's
  floor  the loads of 1, 2 and 6 through benchmarks/floor.py (a bare aiohttp pass-through proxy)
         in ferryllm's place: what the fixed shape costs before any of ferryllm's own work
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone

import orjson

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _wait_http(url: str, proc: subprocess.Popen, seconds: float = 15.0) -> None:
    """Until `url` answers 200 and `proc` (the process meant to answer it) is still running."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{' '.join(proc.args)} exited with {proc.returncode} (see servers.log)")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200 and proc.poll() is None:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


class Procs:
    """Processes started here, stopped by PID (SIGTERM, then SIGKILL after 10 s)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, argv: list[str], log: str) -> subprocess.Popen:
        f = open(log, "ab")
        p = subprocess.Popen(argv, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
        f.close()
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self) -> None:
        for p in list(reversed(self.procs)):
            self.stop(p)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.procs = args, Procs()
        self.mock = self.gateway = None
        os.makedirs(args.out, exist_ok=True)
        self.log = os.path.join(args.out, "servers.log")

    def start(self, ttfb_ms: float = 0, workers: int = 1, pin: bool = True,
              floor: bool = False) -> None:
        self.stop()
        a = self.args
        busy = [p for p in (3000, 8081, 8082, 8083, 8084) if not _port_free(p)]
        if busy:
            raise RuntimeError(f"port(s) {busy} already in use: stop what listens there first")
        self.mock = self.procs.start(["taskset", "-c", a.load_core, PY, "-m", "benchmarks.mock_upstream",
                                      "--openai-port", "8081", "--anthropic-port", "8082",
                                      "--gemini-port", "8083", "--responses-port", "8084",
                                      "--ttfb-ms", str(ttfb_ms)], self.log)
        for port in (8081, 8082, 8083, 8084):
            _wait_http(f"http://127.0.0.1:{port}/health", self.mock)
        gw = ["taskset", "-c", a.gateway_core] if pin else []
        if floor:  # the bare pass-through proxy in ferryllm's place (benchmarks/floor.py)
            gw += [PY, "-m", "benchmarks.floor", "--port", "3000",
                   "--upstream", "http://127.0.0.1:8082"]
        else:
            gw += [PY, "-m", "ferryllm", "serve", "--config", a.config]
        if workers > 1:
            gw += ["--workers", str(workers)]
        self.gateway = self.procs.start(gw, self.log)
        _wait_http("http://127.0.0.1:3000/health", self.gateway, 30)
        time.sleep(0.5 if workers == 1 else 2.0)

    def stop(self) -> None:
        for p in (self.gateway, self.mock):
            if p is not None:
                self.procs.stop(p)
        self.mock = self.gateway = None

    def load(self, name: str, *flags: str, pin: bool = True, timeout: float = 900) -> dict:
        argv = (["taskset", "-c", self.args.load_core] if pin else []) + [
            PY, "-m", "benchmarks.load_test", "--json", "--quiet",
            "--gateway-pid", str(self.gateway.pid), "--watch-pid", f"mock={self.mock.pid}", *flags]
        for p in (self.gateway, self.mock):
            if p.poll() is not None:
                raise RuntimeError(f"{' '.join(p.args)} exited with {p.returncode} (see servers.log)")
        print(f"  {name}: {' '.join(flags)}", file=sys.stderr, flush=True)
        out = subprocess.run(argv, cwd=ROOT, capture_output=True, timeout=timeout)
        with open(os.path.join(self.args.out, f"{name}.json"), "wb") as f:
            f.write(out.stdout)
        doc = orjson.loads(out.stdout)
        g = doc["runs"][-1]
        print(f"    -> {g['requests_per_s']:.0f} req/s, failed {g['failed']}, gateway "
              f"{g['gateway_cpu_us_per_request'] or 0:.0f} µs/req", file=sys.stderr, flush=True)
        return doc


def med(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def gw(doc: dict) -> dict:
    return doc["runs"][-1]


def run(args: argparse.Namespace) -> list[tuple]:
    b, rows, n = Bench(args), [], args.repeat
    scen = set(args.scenarios.split(","))
    common = ["--preset", "mock-anthropic", "--compare"]
    q = 0.2 if args.quick else 1.0
    try:
        if scen & {"1", "2", "6", "g1", "g2", "r1", "r2"}:
            b.start()
        s1 = None
        if "1" in scen:
            docs = [b.load(f"s1-stream-c64-{i}", *common, "--stream", "--concurrency", "64",
                           "--requests", str(int(10000 * q)), "--warmup", "500") for i in range(n)]
            s1 = med([gw(d)["gateway_cpu_us_per_request"] for d in docs])
            rows.append(("1", "gateway CPU per streamed request, c=64", "≤ 300 µs",
                         s1, "µs",
                         f"{med([gw(d)['requests_per_s'] for d in docs]):.0f} req/s through, "
                         f"{med([d['runs'][0]['requests_per_s'] for d in docs]):.0f} direct; "
                         f"load tester {med([gw(d)['client_cpu_us_per_request'] for d in docs]):.0f} µs/req"))
        for key, label, flags in (
                ("g1", "Gemini entry → OpenAI-compatible mock",
                 ["--preset", "mock-gemini", "--compare"]),
                ("g2", "Anthropic entry → Gemini adapter (Gemini mock)",
                 ["--preset", "mock-anthropic", "--model", "via-gemini", "--compare"])):
            if key not in scen:
                continue
            docs = [b.load(f"{key}-stream-c64-{i}", *flags, "--stream", "--concurrency", "64",
                           "--requests", str(int(10000 * q)), "--warmup", "500") for i in range(n)]
            cpu = med([gw(d)["gateway_cpu_us_per_request"] for d in docs])
            ratio = f"{cpu / s1:.2f}× scenario 1's CPU" if cpu and s1 else "run with 1 for the ratio"
            rows.append((key, f"{label}: gateway CPU per streamed request, c=64",
                         "≤ 1.25× scenario 1", cpu, "µs",
                         f"{ratio}; {med([gw(d)['requests_per_s'] for d in docs]):.0f} req/s through; "
                         f"failed {sum(gw(d)['failed'] for d in docs)}"))
        for key, label, target, flags in (
                ("r1", "Responses entry / Anthropic entry", "≤ 1.25×",
                 ["--preset", "mock-responses", "--compare"]),
                ("r2", "Responses adapter / OpenAI-compatible adapter", "(reference)",
                 ["--preset", "mock-anthropic", "--model", "via-responses", "--compare"])):
            if key not in scen:
                continue
            pairs = [[b.load(f"{key}-{leg}-c64-{i}", *legs, "--stream", "--concurrency", "64",
                             "--requests", str(int(10000 * q)), "--warmup", "500")
                      for leg, legs in (("base", common), ("new", flags))]
                     for i in range(n)]  # interleaved: both legs see the same machine
            base = med([gw(a)["gateway_cpu_us_per_request"] for a, _ in pairs])
            cpu = med([gw(r)["gateway_cpu_us_per_request"] for _, r in pairs])
            rows.append((key, f"{label}: gateway CPU per streamed request, c=64", target,
                         cpu / base if cpu and base else None, "×",
                         f"{cpu:.0f} vs {base:.0f} µs/req; "
                         f"{med([gw(r)['requests_per_s'] for _, r in pairs]):.0f} req/s through; "
                         f"failed {sum(gw(r)['failed'] for _, r in pairs)}"))
        if "2" in scen:
            for rate, count, target in (("10", int(300 * q), "p50 ≤ 0.5 ms, p99 ≤ 2 ms"),
                                        ("1000", int(10000 * q), "p99 ≤ 5 ms")):
                docs = [b.load(f"s2-open-{rate}-{i}", *common, "--stream", "--rate", rate,
                               "--requests", str(count), "--warmup", "200") for i in range(n)]
                over = [d["compare"]["ttfc_ms_over_direct"] for d in docs]
                rows.append(("2", f"TTFC over direct, open loop {rate}/s", target,
                             f"p50 {med([o['p50'] for o in over]):.3f} / p99 {med([o['p99'] for o in over]):.3f}",
                             "ms", f"direct p50/p99 {med([d['runs'][0]['ttfc_ms']['p50'] for d in docs]):.3f}/"
                                   f"{med([d['runs'][0]['ttfc_ms']['p99'] for d in docs]):.3f} ms; "
                                   f"failed {sum(gw(d)['failed'] for d in docs)}"))
        if "6" in scen:
            docs = [b.load(f"s6-json-c64-{i}", *common, "--concurrency", "64",
                           "--requests", str(int(10000 * q)), "--warmup", "500") for i in range(n)]
            rows.append(("6", "gateway CPU per JSON request, c=64", "≤ 200 µs",
                         med([gw(d)["gateway_cpu_us_per_request"] for d in docs]), "µs",
                         f"{med([gw(d)['requests_per_s'] for d in docs]):.0f} req/s through, "
                         f"{med([d['runs'][0]['requests_per_s'] for d in docs]):.0f} direct"))
        if "floor" in scen:
            b.start(floor=True)
            for label, flags in (("stream", ["--stream"]), ("JSON request", [])):
                docs = [b.load(f"floor-{label.split()[0].lower()}-c64-{i}", *common, *flags,
                               "--concurrency", "64", "--requests", str(int(10000 * q)),
                               "--warmup", "500") for i in range(n)]
                rows.append(("floor", f"bare aiohttp pass-through proxy: CPU per {label}, c=64",
                             "(reference)", med([gw(d)["gateway_cpu_us_per_request"] for d in docs]),
                             "µs", f"{med([gw(d)['requests_per_s'] for d in docs]):.0f} req/s through, "
                                   f"{med([d['runs'][0]['requests_per_s'] for d in docs]):.0f} direct"))
            for rate, count in (("10", int(300 * q)), ("1000", int(10000 * q))):
                docs = [b.load(f"floor-open-{rate}-{i}", *common, "--stream", "--rate", rate,
                               "--requests", str(count), "--warmup", "200") for i in range(n)]
                over = [d["compare"]["ttfc_ms_over_direct"] for d in docs]
                rows.append(("floor", f"bare aiohttp pass-through proxy: TTFC over direct, open loop {rate}/s",
                             "(reference)", f"p50 {med([o['p50'] for o in over]):.3f} / p99 {med([o['p99'] for o in over]):.3f}",
                             "ms", f"CPU {med([gw(d)['gateway_cpu_us_per_request'] for d in docs]):.0f} µs/req"))
        if scen & {"3", "4"}:
            b.start(ttfb_ms=200)
            docs = [b.load(f"s3-c512-ttfb200-{i}", *common, "--stream", "--concurrency", "512",
                           "--requests", str(int(10000 * q))) for i in range(n)]
            errors = sum(gw(d)["failed"] for d in docs)
            rows.append(("3", "10k streams, c=512, 200 ms TTFB: gateway/direct req/s", "≥ 0.90, 0 errors",
                         med([d["compare"]["requests_per_s_ratio"] for d in docs]), "×",
                         f"{med([gw(d)['requests_per_s'] for d in docs]):.0f} vs "
                         f"{med([d['runs'][0]['requests_per_s'] for d in docs]):.0f} req/s; errors {errors}"))
            rows.append(("4", "gateway RSS peak, 512 concurrent streams", "≤ 150 MB",
                         med([gw(d)["processes"]["gateway"]["rss_mb_peak"] for d in docs]), "MB", ""))
        if "4" in scen:
            b.start(ttfb_ms=200)
            d = b.load("s4-rss-100k", "--preset", "mock-anthropic", "--stream", "--concurrency", "512",
                       "--requests", str(int(100000 * q)))
            line = gw(d)["rss_timeline"]
            at10 = next((p["gateway"] for done, p in line if done >= 10000 * q and "gateway" in p), None)
            end = gw(d)["processes"]["gateway"]["rss_mb_end"]
            change = (end / at10 - 1) * 100 if at10 and end else None
            rows.append(("4", f"RSS at {int(10000 * q)} → {int(100000 * q)} requests (c=512)", "flat ±10%",
                         change, "%", f"{at10} → {end and round(end, 1)} MB; failed {gw(d)['failed']}"))
        if "5" in scen:
            res = {}
            for w in (1, 2):
                b.start(workers=w, pin=False)
                docs = [b.load(f"s5-workers{w}-{i}", "--preset", "mock-anthropic", "--stream",
                               "--concurrency", "128", "--requests", str(int(10000 * q)), "--warmup", "500",
                               pin=False) for i in range(n)]
                res[w] = med([gw(d)["requests_per_s"] for d in docs])
            rows.append(("5", "--workers 2 / --workers 1 req/s (unpinned, shared 2 cores)", "≥ 1.7×",
                         res[2] / res[1], "×", f"{res[1]:.0f} → {res[2]:.0f} req/s"))
    finally:
        b.stop()
        b.procs.stop_all()
    return rows


def stamp() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "ferryllm"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return (f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit}{' + uncommitted ferryllm/ changes' if dirty else ''}, "
            f"nproc {os.cpu_count()}, {cpu}, Python {platform.python_version()}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__.split("\n\n")[0])
    default_cfg = "examples/config/mock-loadtest.toml"
    if not os.path.exists(os.path.join(ROOT, default_cfg)):
        default_cfg = "benchmarks/bench.toml"
    p.add_argument("--config", default=default_cfg)
    p.add_argument("--scenarios", default="1,2,3,4,6,floor")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="a fifth of the requests (a smoke run)")
    p.add_argument("--gateway-core", default="0")
    p.add_argument("--load-core", default="1")
    p.add_argument("--out", default=f"/tmp/ferryllm-bench-{int(time.time())}")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # SystemExit: `finally` stops the servers
    rows = run(args)
    print(f"\n{stamp()}; medians of {args.repeat}; raw JSON in {args.out}\n")
    print("| # | measure | target | measured | unit | notes |\n|---|---|---|---|---|---|")
    for num, name, target, value, unit, notes in rows:
        v = f"{value:.2f}" if isinstance(value, float) else str(value)
        print(f"| {num} | {name} | {target} | {v} | {unit} | {notes} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
