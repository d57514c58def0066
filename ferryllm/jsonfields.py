"""Protocol-neutral checks of a client's JSON body, shared by the protocol entries (which never
import each other). Two styles, one per way an entry carries the field's name:

- `fail`, `string`, `integer`, … take the finished param string (`input[3].call_id`) and raise
  `InvalidRequest` at once (the OpenAI-shaped entries);
- `Bad` and `obj_at`, `array_at`, `number_at` take the path as parts and raise `Bad`, completed
  on the way out (`Bad.at`) and rendered once at the top (`dotted` or `indexed`): a valid
  request never formats a param string.

Also images given by URL (data URLs split once for entries and adapters) and the `{"_raw": s}`
convention for tool arguments that are not a JSON object.
"""
from __future__ import annotations

import logging
from typing import Any

import orjson

from . import ir
from .errors import InvalidRequest

log = logging.getLogger("ferryllm.translate")


# ---------------------------------------------------------------- param-string checks


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


# ---------------------------------------------------------------- path checks


class Bad(Exception):
    """A field that fails validation: the reason and the path to the field."""

    def __init__(self, reason: str, *path: str | int) -> None:
        self.reason, self.path = reason, path

    def at(self, *outer: str | int) -> Bad:
        self.path = (*outer, *self.path)
        return self

    def dotted(self) -> InvalidRequest:
        """`messages.2.content.0.input: …` (Anthropic's spelling)."""
        param = ".".join(map(str, self.path))
        return InvalidRequest(f"{param}: {self.reason}", param=param)

    def indexed(self) -> InvalidRequest:
        """`contents[2].parts[0].text: …`; an empty path is the reason alone."""
        param = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path)
        param = param.removeprefix(".")
        return InvalidRequest(f"{param}: {self.reason}" if param else self.reason,
                              param=param or None)


def obj_at(value: Any, *path: str | int) -> dict:
    if not isinstance(value, dict):
        raise Bad("must be an object", *path)
    return value


def array_at(value: Any, *path: str | int) -> list:
    if not isinstance(value, list):
        raise Bad("must be an array", *path)
    return value


def number_at(value: Any, *path: str | int) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Bad("must be a number", *path)
    return value


# ---------------------------------------------------------------- images by URL


def split_data_url(url: str) -> tuple[str, str] | None:
    """`data:<media type>;base64,<data>` → (media type, data), either possibly empty; None for
    any other URL (a data URL in another encoding too)."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    media_type, _, encoding = head.partition(";")
    return (media_type, data) if sep and encoding == "base64" else None


def image_from_url(url: str, param: str) -> ir.ImageBlock:
    """A client's image URL → an image: inline data for a base64 data URL, else the URL."""
    if not url.startswith("data:"):
        return ir.ImageBlock(url=url)
    parts = split_data_url(url)
    if parts is None or not parts[0] or not parts[1]:
        raise fail(param, "data URLs must be data:<media type>;base64,<data>")
    return ir.ImageBlock(media_type=parts[0], data=parts[1])


# ---------------------------------------------------------------- tool arguments


def tool_arguments(raw: Any) -> dict:
    """A tool call's `arguments` (a JSON string, or the object itself) → the input; a string
    that is not a JSON object is kept as `{"_raw": s}`. Raises `TypeError` for any other type."""
    if raw is None or raw == "":
        return {}
    if raw.__class__ is dict:  # some clients send the object itself
        return raw
    if raw.__class__ is not str:
        raise TypeError
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if value.__class__ is dict:
        return value
    log.debug("tool call arguments are not a JSON object; kept raw (%d chars)", len(raw))
    return {"_raw": raw}


def arguments_json(value: dict) -> str:
    """Tool input → the arguments string; an input kept raw (`{"_raw": s}`) goes back as `s`."""
    if len(value) == 1 and value.get("_raw").__class__ is str:
        return value["_raw"]
    return orjson.dumps(value).decode()
