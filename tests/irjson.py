"""IR events as plain dicts for the recorded `.expected` fixtures: `dataclasses.asdict`, minus
the IR fields added after the fixtures were recorded while they hold their default, so a new
optional field changes only the fixtures that exercise it."""
from __future__ import annotations

import dataclasses
from typing import Any

# field name → its default; dropped at any depth while equal to it
ADDED_LATER: dict[str, Any] = {"stop_details": None, "cache_creation_1h_input_tokens": 0,
                               "thinking_tokens": 0}


def event_fields(ev: Any) -> dict[str, Any]:
    return _drop(dataclasses.asdict(ev))


def _drop(d: dict[str, Any]) -> dict[str, Any]:
    for key, default in ADDED_LATER.items():
        if key in d and d[key] == default:
            del d[key]
    for value in d.values():
        if isinstance(value, dict):
            _drop(value)
    return d
