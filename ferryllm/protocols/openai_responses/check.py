"""Validation helpers for a client's Responses body: each failure is a 400 naming the field
(`input[3].call_id`)."""
from __future__ import annotations

from typing import Any

from ...errors import InvalidRequest


def fail(param: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {what}", param=param)


def string(value: Any, param: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise fail(param, "is required")
        return None
    if value.__class__ is not str:
        raise fail(param, "must be a string")
    return value


def integer(value: Any, param: str, *, minimum: int = 0) -> int | None:
    if value is None:
        return None
    if value.__class__ is not int:
        raise fail(param, "must be an integer")
    if value < minimum:
        raise fail(param, f"must be at least {minimum}")
    return value


def number(value: Any, param: str) -> float | None:
    if value is None:
        return None
    if value.__class__ not in (int, float):
        raise fail(param, "must be a number")
    return value


def boolean(value: Any, param: str) -> bool | None:
    if value is None:
        return None
    if value.__class__ is not bool:
        raise fail(param, "must be a boolean")
    return value


def obj(value: Any, param: str) -> dict:
    if value.__class__ is not dict:
        raise fail(param, "must be an object")
    return value


def array(value: Any, param: str) -> list:
    if value.__class__ is not list:
        raise fail(param, "must be an array")
    return value
