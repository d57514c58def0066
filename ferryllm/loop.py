"""The event loop every ferryllm process runs on (the gateway, its workers, the benchmarks)."""
from __future__ import annotations

import asyncio
from typing import Callable


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where the platform has it, for `asyncio.Runner(loop_factory=...)` (Python 3.11
    has no `asyncio.run(loop_factory=...)`); None means asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return None
    return uvloop.new_event_loop
