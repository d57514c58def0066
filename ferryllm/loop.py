"""The runtime every ferryllm process runs on (the gateway, its workers, the benchmarks): the event
loop and the garbage collector's settings."""
from __future__ import annotations

import asyncio
import gc
from typing import Callable


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where the platform has it, for `asyncio.Runner(loop_factory=...)` (Python 3.11
    has no `asyncio.run(loop_factory=...)`); None means asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return None
    return uvloop.new_event_loop


# Collect the youngest generation every 10,000 net container allocations instead of every 700.
# A request allocates a few thousand containers, nearly all freed by reference counting, so the
# default runs a collection several times per request; each one walks every object of the
# requests in flight (hundreds at concurrency 64). Measured on the stream path at concurrency
# 64 (perf): the collector's functions were about 5 % of the gateway's CPU, and fell below the
# profile's noise with this threshold. Cyclic garbage waits at most one such interval.
GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    """After start-up: freeze what start-up allocated (modules, config, routes: never garbage, so
    never walked again by a full collection) and collect the youngest generation less often."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
