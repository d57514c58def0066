"""Tool names an OpenAI-compatible backend accepts, and the way back.

OpenAI (and most compatible backends) accept function names matching `^[A-Za-z0-9_-]{1,64}$`;
Anthropic clients (MCP tools in Claude Code: `mcp__server__tool_with_a_long_name`) may send longer
names or names with `.`, `:`, `/` …  Such a name is shortened deterministically — the same input
gives the same output in every request, so history and prompt caches stay stable:

    sanitized prefix (invalid characters → `_`, cut to 55 characters) + "_" + 8 hex of sha256(name)

A valid name is left as it is (the common case costs one regex match). `ToolNames` holds the
mapping for one request, built from its tools, tool choice and history, and maps provider names
back to the client's names (unknown names pass through unchanged).
"""
from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Iterable

from . import ir

MAX_LEN = 64
_HASH_LEN = 8
_VALID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_INVALID_CHAR = re.compile(r"[^A-Za-z0-9_-]")


@lru_cache(maxsize=4096)
def shorten(name: str) -> str:
    """The provider-safe form of `name` (itself when already valid)."""
    if _VALID.fullmatch(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LEN]
    prefix = _INVALID_CHAR.sub("_", name)[:MAX_LEN - _HASH_LEN - 1]
    return f"{prefix}_{digest}"


class ToolNames:
    """The name mapping of one request. `to_provider` shortens, `to_client` maps back."""

    __slots__ = ("_back",)

    def __init__(self, names: Iterable[str] = ()) -> None:
        back: dict[str, str] = {}
        for name in names:
            short = shorten(name)
            if short != name:
                back[short] = name
        self._back = back

    @classmethod
    def for_request(cls, req: ir.Request) -> "ToolNames":
        return cls(request_tool_names(req))

    def __bool__(self) -> bool:
        return bool(self._back)

    @staticmethod
    def to_provider(name: str) -> str:
        return shorten(name)

    def to_client(self, name: str) -> str:
        return self._back.get(name, name) if self._back else name


def request_tool_names(req: ir.Request) -> Iterable[str]:
    """Every tool name a request mentions: its tools, its tool choice, its history's tool calls."""
    for tool in req.tools:
        yield tool.name
    if req.tool_choice is not None and req.tool_choice.name:
        yield req.tool_choice.name
    for msg in req.messages:
        if msg.role == "assistant":
            for block in msg.content:
                if block.type == "tool_use":
                    yield block.name
