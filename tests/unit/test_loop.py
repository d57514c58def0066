"""The process runtime: the garbage collector's settings after start-up."""
from __future__ import annotations

import gc

from ferryllm.loop import GEN0_THRESHOLD, tune_gc


def test_tune_gc_freezes_start_up_and_raises_the_young_threshold():
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == (GEN0_THRESHOLD, before[1], before[2])
        assert GEN0_THRESHOLD > 700  # fewer young collections than Python's default
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
