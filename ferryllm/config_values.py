"""Value checkers for the TOML configuration: each takes a TOML value and returns the Python
value, or raises `Bad` with what is wrong (the caller adds the key). Pure functions, no config
shapes: `ferryllm.config` owns the tables that name which checker each key gets."""
from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any
from urllib.parse import urlsplit


def normalise_base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[:-3].rstrip("/")
    return url




class Bad(Exception):
    pass


KINDS = ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"),
          (dict, "a table"), (list, "an array"))


def kind_of(v: Any) -> str:
    return next((name for t, name in KINDS if isinstance(v, t)),
                f"a {type(v).__name__}")  # TOML dates and times


def show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + (v if len(v) <= 80 else v[:77] + "...") + '"'
    if isinstance(v, int | float):
        return repr(v)
    return kind_of(v)


def number(v: Any, *, zero_ok: bool) -> float:
    if (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
            or v < 0 or (v == 0 and not zero_ok)):
        what = "a number >= 0" if zero_ok else "a positive number"
        raise Bad(f"expected {what}, got {show(v)}")
    return float(v)


pos_number = partial(number, zero_ok=False)
nonneg_number = partial(number, zero_ok=True)


def integer(v: Any, minimum: int, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise Bad(f"expected {what}, got {show(v)}")
    return v


pos_int = partial(integer, minimum=1, what="a positive integer")
nonneg_int = partial(integer, minimum=0, what="an integer >= 0")


def limit(v: Any) -> int | None:
    """An optional cap: a positive integer; 0 means off, like leaving it out."""
    return integer(v, 0, "an integer >= 0 (0 turns the limit off)") or None


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise Bad(f"expected true or false, got {show(v)}")
    return v


def text(v: Any) -> str:
    if not isinstance(v, str):
        raise Bad(f"expected a string, got {show(v)}")
    if not v.strip():
        raise Bad("must not be empty")
    return v


def strings(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise Bad(f"expected an array of strings, got {show(v)}")
    return tuple(v)


def enum(choices: tuple[str, ...], aliases: Mapping[str, str] | None = None
          ) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if isinstance(v, str):
            name = v.strip().lower()
            name = (aliases or {}).get(name, name)
            if name in choices:
                return name
        raise Bad(f"expected one of {', '.join(choices)}; got {show(v)}")
    return check


HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.\-]*[A-Za-z0-9])?")


def listen(v: Any) -> str:
    if not isinstance(v, str):
        raise Bad(f"expected HOST:PORT, got {show(v)}")
    host, sep, port = v.rpartition(":")
    if not sep or not host or not port.isdigit() or not port.isascii():
        raise Bad(f"expected HOST:PORT, got {show(v)}")
    if host.startswith("["):
        try:
            if not host.endswith("]"):
                raise ValueError
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise Bad(f"invalid IPv6 address in {show(v)}") from None
    elif ":" in host:
        raise Bad(f"an IPv6 host needs brackets, e.g. \"[::1]:{port}\"; got {show(v)}")
    elif not HOST.fullmatch(host):
        raise Bad(f"invalid host in {show(v)}")
    if not 1 <= int(port) <= 65535:
        raise Bad(f"port must be 1-65535, got {int(port)}")
    return v


def base_url(v: Any) -> str:
    if not isinstance(v, str):
        raise Bad(f"must be an http(s) URL, got {show(v)}")
    url = normalise_base_url(v)
    shown = "" if "@" in v else f", got {show(v)}"  # user:password@host stays private
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise Bad(f"must be an http(s) URL{shown}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise Bad(f"must be an http(s) URL{shown}")
    if parts.query or parts.fragment:
        raise Bad(f"must not have a query or fragment{shown}")
    return url


def secret(v: Any) -> str:
    """The value itself never appears in a message."""
    if not isinstance(v, str):
        raise Bad(f"expected a string, got {kind_of(v)}")
    return clean_secret(v)


def clean_secret(v: str) -> str:
    v = v.strip()
    if not v:
        raise Bad("must not be empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise Bad("contains a line break or control character")
    return v


TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def headers(v: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(v, dict):
        raise Bad(f"expected a table of header names to strings, got {show(v)}")
    bad = [f"{k!r} is not a valid header name" for k in v if not TOKEN.fullmatch(k)]
    bad += [f"{k!r}: expected a string value" for k, x in v.items() if not isinstance(x, str)]
    bad += [f"{k!r}: value contains a line break or control character" for k, x in v.items()
            if isinstance(x, str) and any(ord(c) < 32 and c != "\t" for c in x)]
    if bad:
        raise Bad("; ".join(bad))
    # lower case, so that a configured header replaces the adapter's own (user-agent,
    # content-type …) whatever case the config spells it in, instead of being sent twice
    return tuple((k.lower(), x) for k, x in v.items())
