"""Results of a load run: percentiles, the run summary (the JSON schema), the direct-vs-gateway
comparison and the readable table. Pure functions, no I/O."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

PERCENTILES = (50, 95, 99)
SCHEMA = "ferryllm-load-test/1"


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list: the smallest value with at least p% of the
    values at or below it. None for an empty list."""
    if not sorted_values:
        return None
    if p <= 0:
        return sorted_values[0]
    rank = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def distribution(values_s: list[float]) -> dict:
    """Seconds in, milliseconds out: count, mean, p50/p95/p99, max (None when empty)."""
    v = sorted(values_s)
    out: dict = {"count": len(v), "mean": (sum(v) / len(v) * 1000) if v else None}
    for p in PERCENTILES:
        x = percentile(v, p)
        out[f"p{p}"] = None if x is None else x * 1000
    out["max"] = v[-1] * 1000 if v else None
    return out


@dataclass
class Tally:
    """What the request loop records; mutated in place, read by the progress line."""
    started: int = 0
    done: int = 0
    ok: int = 0
    status: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    latency: list[float] = field(default_factory=list)  # seconds, successful requests
    ttfc: list[float] = field(default_factory=list)  # seconds to first content, successful streams

    def record(self, status: int | None, error: str | None, latency: float, ttfc: float | None) -> None:
        self.done += 1
        if status is not None:
            self.status[status] += 1
        if error:
            self.errors[error] += 1
            return
        self.ok += 1
        self.latency.append(latency)
        if ttfc is not None:
            self.ttfc.append(ttfc)


def summarize(label: str, url: str, tally: Tally, wall_s: float, client_cpu_s: float,
              processes: dict[str, dict] | None = None) -> dict:
    """One run as a JSON-ready dict (the `runs[]` entries of the schema)."""
    n = tally.done
    procs = {}
    for name, p in (processes or {}).items():
        cpu = p.get("cpu_s")
        procs[name] = {**p, "cpu_us_per_request": (cpu / n * 1e6) if (cpu is not None and n) else None}
    return {
        "label": label,
        "url": str(url),
        "requests": n,
        "ok": tally.ok,
        "failed": n - tally.ok,
        "duration_s": wall_s,
        "requests_per_s": n / wall_s if wall_s > 0 else None,
        "status_counts": {str(k): v for k, v in sorted(tally.status.items())},
        "errors": dict(sorted(tally.errors.items())),
        "latency_ms": distribution(tally.latency),
        "ttfc_ms": distribution(tally.ttfc),
        "client_cpu_us_per_request": client_cpu_s / n * 1e6 if n else None,
        "processes": procs,
        "gateway_cpu_us_per_request": procs.get("gateway", {}).get("cpu_us_per_request"),
    }


def compare(direct: dict, gateway: dict) -> dict:
    """Gateway over direct: ratios of throughput, differences of latency percentiles."""
    def ratio(a, b):
        return a / b if (a is not None and b) else None

    def deltas(key: str) -> dict:
        return {k: (gateway[key][k] - direct[key][k]
                    if gateway[key][k] is not None and direct[key][k] is not None else None)
                for k in ("p50", "p95", "p99", "max")}

    return {
        "requests_per_s_ratio": ratio(gateway["requests_per_s"], direct["requests_per_s"]),
        "latency_ms_over_direct": deltas("latency_ms"),
        "ttfc_ms_over_direct": deltas("ttfc_ms"),
        "latency_p99_ratio": ratio(gateway["latency_ms"]["p99"], direct["latency_ms"]["p99"]),
    }


def document(config: dict, runs: list[dict], comparison: dict | None) -> dict:
    return {"schema": SCHEMA, "config": config, "runs": runs, "compare": comparison,
            "ok": all(r["failed"] == 0 for r in runs)}


def _f(x, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def table(doc: dict) -> str:
    """The readable form of `document()`."""
    c = doc["config"]
    mode = f"rate {c['rate']}/s (open loop)" if c.get("rate") else f"concurrency {c['concurrency']}"
    lines = [f"preset {c['preset']}  {c['protocol']}  model {c['model']}  "
             f"{'stream' if c['stream'] else 'json'}  {mode}  client {c['client']}"]
    runs = doc["runs"]
    width = max(12, *(len(r["label"]) for r in runs))
    rows = [("url", lambda r: r["url"]),
            ("requests", lambda r: f"{r['requests']} ({r['ok']} ok, {r['failed']} failed)"),
            ("requests/s", lambda r: _f(r["requests_per_s"], ".1f")),
            ("status", lambda r: " ".join(f"{k}:{v}" for k, v in r["status_counts"].items()) or "-"),
            ("errors", lambda r: " ".join(f"{k}:{v}" for k, v in r["errors"].items()) or "0")]
    for key, name in (("latency_ms", "latency ms"), ("ttfc_ms", "first content ms")):
        rows.append((name, lambda r, key=key: "p50 {} p95 {} p99 {} max {}".format(
            *(_f(r[key][p]) for p in ("p50", "p95", "p99", "max")))))
    rows.append(("client CPU/req", lambda r: _f(r["client_cpu_us_per_request"], ".0f") + " µs"))
    names = sorted({n for r in runs for n in r["processes"]})
    for n in names:
        rows.append((f"{n} CPU/req", lambda r, n=n: _f(r["processes"].get(n, {}).get("cpu_us_per_request"), ".0f") + " µs"))
        rows.append((f"{n} RSS MB", lambda r, n=n: "peak {} end {}".format(
            _f(r["processes"].get(n, {}).get("rss_mb_peak"), ".1f"),
            _f(r["processes"].get(n, {}).get("rss_mb_end"), ".1f"))))
    col = max(len(fn(r)) for r in runs for _, fn in rows) if runs else 10
    lines.append(f"{'':18} " + " ".join(f"{r['label']:<{max(width, col)}}" for r in runs))
    for name, fn in rows:
        lines.append(f"{name:18} " + " ".join(f"{fn(r):<{max(width, col)}}" for r in runs))
    cmp = doc.get("compare")
    if cmp:
        lines.append("gateway vs direct: requests/s ratio {}  latency p50/p99 +{}/+{} ms  "
                     "first content p50/p99 +{}/+{} ms".format(
                         _f(cmp["requests_per_s_ratio"], ".3f"),
                         _f(cmp["latency_ms_over_direct"]["p50"], ".3f"),
                         _f(cmp["latency_ms_over_direct"]["p99"], ".3f"),
                         _f(cmp["ttfc_ms_over_direct"]["p50"], ".3f"),
                         _f(cmp["ttfc_ms_over_direct"]["p99"], ".3f")))
    lines.append("result: " + ("ok" if doc["ok"] else "FAILED (some requests failed)"))
    return "\n".join(lines)
