"""Anthropic's server-side tool search, for providers that do not run it (sans-IO).

A client that declares `tool_search_tool_regex_20251119` or `tool_search_tool_bm25_20251119`
(`ir.ServerToolSearch`) with deferred tools expects the API to search them. For any other
provider, `policy.resolve_deferred` gives the model an ordinary function of the same name
(`search_tool`) and turns earlier searches in the history (`unfold`) into a call of it and its
result; `toolsearch_loop` runs the function when the model calls it (`search`) and goes on with
the found tools loaded. The search looks at names, descriptions and argument names and
descriptions, like Anthropic's:

- regex: a Python regular expression searched in that text (the `regex` engine, with a time
  limit: `REGEX_BUDGET_SECS` for the whole search), case-sensitive unless the pattern says `(?i)`;
  patterns longer than 200 characters or invalid are `invalid_tool_input`;
- bm25: Okapi BM25 (k1 1.2, b 0.75) of the query's words over each tool's words.

At most `MAX_RESULTS` tools come back, best first (regex: in declaration order).
"""
from __future__ import annotations

import math
import re

import regex
from typing import Any, Iterable

from . import ir

MAX_RESULTS = 5
MAX_PATTERN = 200
# The pattern is the model's (and so, by prompt injection, anyone's): a catastrophic one must not
# hold the event loop. The `regex` engine takes a time limit per match; the whole search gets
# at most this many seconds, shared out over the tools it matches against.
REGEX_BUDGET_SECS = 0.25
_WORD = re.compile(r"[a-z0-9]+")
_DESCRIPTIONS = {
    "regex": "Search the deferred tools (name, description, arguments) with a Python regular "
             "expression (re.search; add (?i) to ignore case) and load the matching ones, so "
             "they can be called. Returns up to 5 tool definitions.",
    "bm25": "Search the deferred tools (name, description, arguments) with a natural-language "
            "query and load the best matches, so they can be called. Returns up to 5 tool "
            "definitions.",
}
_QUERY = {"regex": "A Python regular expression, at most 200 characters",
          "bm25": "What the tool should do, in a few words"}


def search_tool(search: ir.ServerToolSearch) -> ir.Tool:
    """The function a provider without tool search sees in its place."""
    return ir.Tool(search.name, _DESCRIPTIONS[search.kind], {
        "type": "object",
        "properties": {"query": {"type": "string", "description": _QUERY[search.kind]}},
        "required": ["query"]})


def _text(tool: ir.Tool) -> str:
    parts = [tool.name, tool.description or ""]
    props = tool.input_schema.get("properties") if isinstance(tool.input_schema, dict) else None
    if isinstance(props, dict):
        for name, prop in props.items():
            parts.append(str(name))
            if isinstance(prop, dict) and isinstance(prop.get("description"), str):
                parts.append(prop["description"])
    return "\n".join(parts)


def search(kind: str, query: Any, tools: Iterable[ir.Tool]) -> tuple[list[str], str | None]:
    """(names of the matching deferred tools, best first; an error code or None)."""
    if not isinstance(query, str) or not query.strip():
        return [], "invalid_tool_input"
    deferred = [t for t in tools if t.deferred]
    if kind == "regex":
        if len(query) > MAX_PATTERN:
            return [], "invalid_tool_input"
        try:
            pattern = regex.compile(query)
        except (regex.error, RecursionError, OverflowError, ValueError):
            return [], "invalid_tool_input"
        each = REGEX_BUDGET_SECS / max(1, len(deferred))
        try:
            found = [t.name for t in deferred if pattern.search(_text(t), timeout=each)]
        except TimeoutError:
            return [], "execution_time_exceeded"
        return found[:MAX_RESULTS], None
    return _bm25(query, deferred), None


def _words(text: str) -> list[str]:
    return _WORD.findall(text.replace("_", " ").lower())


def _bm25(query: str, tools: list[ir.Tool], k1: float = 1.2, b: float = 0.75) -> list[str]:
    docs = [_words(_text(t)) for t in tools]
    if not docs:
        return []
    avg = sum(map(len, docs)) / len(docs) or 1.0
    terms = set(_words(query))
    df = {term: sum(1 for d in docs if term in d) for term in terms}
    scored = []
    for position, (tool, doc) in enumerate(zip(tools, docs)):
        score = 0.0
        for term in terms:
            tf = doc.count(term)
            if tf:
                idf = math.log(1 + (len(docs) - df[term] + 0.5) / (df[term] + 0.5))
                score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / avg))
        if score > 0:
            scored.append((-score, position, tool.name))
    return [name for _, _, name in sorted(scored)[:MAX_RESULTS]]


def unfold(messages: list[ir.Message]) -> list[ir.Message]:
    """Earlier server tool searches as a provider without them can read the history: each
    `ServerToolUseBlock` a call of the search function, each `ToolSearchResultBlock` that call's
    tool result (tool references, which `policy` turns into definitions), the assistant turn
    split around them. Messages without such blocks are kept as they are."""
    if not any(m.role == "assistant" and any(b.type in ("server_tool_use", "tool_search_result")
                                             for b in m.content) for m in messages):
        return messages
    out: list[ir.Message] = []
    for msg in messages:
        if msg.role != "assistant" or not any(
                b.type in ("server_tool_use", "tool_search_result") for b in msg.content):
            out.append(msg)
            continue
        current: list[ir.Block] = []
        for block in msg.content:
            if block.type == "server_tool_use":
                current.append(ir.ToolUseBlock(block.id, block.name, block.input))
            elif block.type == "tool_search_result":
                if current:
                    out.append(ir.Message("assistant", current))
                    current = []
                parts: list = ([ir.TextBlock(f"Tool search failed: {block.error}")]
                               if block.error is not None else
                               [ir.ToolReferenceBlock(n) for n in block.tool_names]
                               or [ir.TextBlock("No tool matched the query.")])
                out.append(ir.Message("user", [ir.ToolResultBlock(block.tool_use_id, parts)]))
            else:
                current.append(block)
        if current:
            out.append(ir.Message("assistant", current))
    return out
