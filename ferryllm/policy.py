"""IR → IR policies applied per provider before an adapter encodes a request (`apply`).

For every provider:
- prompt-cache hygiene: system lines starting with a `[prompt_cache] strip_system_prefixes`
  entry are removed (Claude Code's first system block, `x-anthropic-billing-header:
  cc_version=…; cc_entrypoint=…;`, changes with every version and entry point), so consecutive
  turns send a byte-identical prefix and the provider's prompt cache hits;
- the reasoning policy (`[server] reasoning_policy`, below);
- `max_tokens` is capped by the provider's `max_tokens_cap` (Claude Code asks for 64000 or more,
  which most OpenAI-compatible backends reject);
- deferred tools are resolved (`resolve_deferred`) unless the body passes through to a provider
  of the client's own protocol (Anthropic loads deferred tools itself).

For providers whose adapter says `prompt_cache_key = True` (OpenAI-compatible ones) also:
- tool input schemas are cleaned for strict backends (`ferryllm.schema.clean_schema`);
- `Request.prompt_cache_key` is set (when `[prompt_cache] prompt_cache_key`, the default) to a
  stable digest of (provider name, backend model, tools, system) — the same for every turn of a
  conversation and for every worker process — which the adapter sends as `prompt_cache_key`.
  A request with neither tools nor system gets none (there is no shared prefix to route by).

Claude Code resends the same system prompt and ~20 tools every turn: the cleaned tools and the
digests are memoized by content (serialized bytes / text hash), so a repeated request costs a
serialization and a few dictionary look-ups.

Reasoning policies (efforts ordered minimal < low < medium < high < xhigh < max; see
docs/reasoning.md for the budget ↔ effort table):
- `preserve`: the client's reasoning request goes through unchanged.
- `fill_missing` (default): when the client asked for no effort and no budget (none at all, or
  Claude Code's `thinking: {"type": "adaptive"}` alone), `default_reasoning_effort` is used (if
  configured); an explicit client choice is kept.
- `cap`: like `fill_missing`, then an effort above `max_reasoning_effort` is lowered to it and a
  thinking budget above that effort's budget is lowered to the budget (and, when the client gave
  no effort, the effort is set to the ceiling).
- `force`: `default_reasoning_effort` replaces whatever the client asked for.
A client that explicitly disabled reasoning keeps it disabled except under `force`.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Callable

import orjson

from . import protocols, toolsearch
from .config import Config, ProviderConfig
from .ir import EFFORT_BUDGETS, EFFORT_ORDER, Message, Reasoning, Request, TextBlock, Tool
from .schema import clean_schema

_RANK = {effort: rank for rank, effort in enumerate(EFFORT_ORDER)}
PROMPT_CACHE_KEY_LEN = 32  # hex characters (128 bits)

_NO_NAMES: frozenset[str] = frozenset()
_MEMO_MAX = 256
_tools_memo: dict[bytes, tuple[list[Tool] | None, bytes]] = {}
_system_memo: dict[tuple[int, int], bytes] = {}


def apply(req: Request, cfg: Config, provider: ProviderConfig,
          model: str | None = None) -> Request:
    """The request as `provider` gets it; `model` (the backend model) replaces the client's in
    the same copy. The client's request is never changed."""
    changes: dict = {}
    stable_tools = None  # the tools of the prompt-cache key: those every turn declares
    if (req.tools or len(req.messages) > 1) and not (
            req.native is not None and req.native_protocol == provider.type):
        # (a tool reference needs a turn before it) pass-through bodies keep deferral for the
        # provider (Anthropic runs tool search)
        resolved = resolve_deferred(req, provider.type)
        if resolved is not req:
            stable_tools = [t for t in req.tools if not t.deferred]
            changes["tools"], changes["messages"] = resolved.tools, resolved.messages
            req = resolved
    if model is not None and model != req.model:
        changes["model"] = model
    else:
        model = req.model
    system = strip_volatile_system(req.system, cfg.prompt_cache.strip_system_prefixes)
    if system is not req.system:
        changes["system"] = system
    reasoning = apply_reasoning_policy(req.reasoning, cfg)
    if reasoning is not req.reasoning:
        changes["reasoning"] = reasoning
    cap = provider.max_tokens_cap
    if cap and req.max_tokens is not None and req.max_tokens > cap:
        changes["max_tokens"] = cap
    if (req.tools or system or cfg.prompt_cache.prompt_cache_key) and _wants_cache_key(provider):
        cleaned, tools_digest = _tools(req.tools)
        if cleaned is not None:
            changes["tools"] = cleaned
        if stable_tools is not None:  # a tool a search loaded does not change the key
            tools_digest = _tools(stable_tools)[1]
        if cfg.prompt_cache.prompt_cache_key and (req.tools or system):
            changes["prompt_cache_key"] = prompt_cache_key(provider.name, model,
                                                           tools_digest, _system_digest(system))
    return replace(req, **changes) if changes else req


def _wants_cache_key(provider: ProviderConfig) -> bool:
    return getattr(protocols.get(provider.type).adapter, "prompt_cache_key", False)




# ---------------------------------------------------------------- deferred tools


def resolve_deferred(req: Request, provider_type: str | None = None) -> Request:
    """Deferred tools (`Tool.deferred`, Anthropic's `defer_loading`) for a provider that does
    not load them itself: a deferred tool that a tool reference anywhere in the conversation
    names is sent as an ordinary tool, the others (Claude Code's `DeferredToolPlaceholder`
    among them) are not; each tool reference inside a tool result becomes text carrying the
    tool's definition, in the form Claude Code's `ToolSearch` promises the model:
    `<functions><function>{"description": …, "name": …, "parameters": …}</function></functions>`
    (named as a provider of `provider_type` knows the tool: its adapter's `provider_tool_name`).
    A server tool search the client declared (`Request.tool_search`) becomes a function
    (`toolsearch.search_tool`), and its earlier searches a call of it with its result
    (`toolsearch.unfold`). Deterministic, so consecutive turns stay byte-identical. The request
    is returned as it is when there is nothing to do."""
    search = req.tool_search
    messages = req.messages if search is None else toolsearch.unfold(req.messages)
    referenced = _referenced(messages) if len(messages) > 1 else _NO_NAMES
    if not referenced and search is None:
        for tool in req.tools:  # a loop, not any(<generator>): most requests get here
            if tool.deferred:
                break
        else:
            return req
    tools = [replace(t, deferred=False) if t.deferred else t for t in req.tools
             if not t.deferred or t.name in referenced]
    if search is not None:  # a server tool search the provider does not have: a function
        tools.insert(0, toolsearch.search_tool(search))
    if referenced:
        by_name = {t.name: t for t in req.tools}
        tool_name = (getattr(protocols.get(provider_type).adapter, "provider_tool_name", None)
                     if provider_type else None)
        messages = [_expand_references(m, by_name, tool_name) for m in messages]
    return replace(req, tools=tools, messages=messages)


def _referenced(messages: list[Message]) -> set[str]:
    names: set[str] = set()
    for msg in messages:
        if msg.role != "user":
            continue
        for block in msg.content:
            if block.type == "tool_result":
                for part in block.content:
                    if part.type == "tool_reference":
                        names.add(part.tool_name)
    return names


def _expand_references(msg: Message, tools: dict[str, Tool],
                       tool_name: Callable[[str], str] | None) -> Message:
    """`msg` with the tool references of its tool results turned into definition text (a copy
    when one changes; the client's request is never changed)."""
    if msg.role != "user":
        return msg
    content = None
    for i, block in enumerate(msg.content):
        if block.type != "tool_result" or not any(p.type == "tool_reference"
                                                   for p in block.content):
            continue
        parts: list = []
        refs: list[str] = []
        for part in [*block.content, None]:  # None flushes the last run of references
            if part is not None and part.type == "tool_reference":
                refs.append(part.tool_name)
                continue
            if refs:
                parts.append(TextBlock(tool_definitions(refs, tools, tool_name)))
                refs = []
            if part is not None:
                parts.append(part)
        if content is None:
            content = list(msg.content)
        content[i] = replace(block, content=parts)
    return msg if content is None else replace(msg, content=content)


def tool_definitions(names: list[str], tools: dict[str, Tool],
                     tool_name: Callable[[str], str] | None = None) -> str:
    """The definitions of the named tools as one text block (unknown names said so)."""
    lines = ["<functions>"]
    for name in names:
        tool = tools.get(name)
        shown = tool_name(name) if tool_name else name
        if tool is None:
            lines.append(f"<function>{orjson.dumps({'name': shown}).decode()}</function> "
                         "(not declared in this request: it cannot be called)")
            continue
        definition = {"description": tool.description or "", "name": shown,
                      "parameters": clean_schema(tool.input_schema)}
        lines.append(f"<function>{orjson.dumps(definition).decode()}</function>")
    lines.append("</functions>")
    return "\n".join(lines)


# ---------------------------------------------------------------- prompt cache


def strip_volatile_system(system: list[TextBlock], prefixes: tuple[str, ...]) -> list[TextBlock]:
    """Drop system lines that change every turn (Claude Code's billing header), so consecutive
    turns send a byte-identical prefix and the provider's prompt cache hits."""
    if not prefixes or not system:
        return system
    out: list[TextBlock] = []
    changed = False
    for block in system:
        text = block.text
        if not text.lstrip().startswith(prefixes) and "\n" not in text:
            out.append(block)
            continue
        kept = [line for line in text.split("\n") if not line.lstrip().startswith(prefixes)]
        if len(kept) == text.count("\n") + 1:
            out.append(block)
            continue
        changed = True
        rest = "\n".join(kept).strip("\n")
        if rest:
            out.append(TextBlock(rest))
    return out if changed else system


def prompt_cache_key(provider: str, model: str, tools_digest: bytes, system_digest: bytes) -> str:
    """A short hex digest, stable across turns, processes and restarts."""
    h = hashlib.sha256()
    for part in (provider.encode(), model.encode(), tools_digest, system_digest):
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.hexdigest()[:PROMPT_CACHE_KEY_LEN]


def _system_digest(system: list[TextBlock]) -> bytes:
    if not system:
        return b""
    texts = tuple(b.text for b in system)
    key = (hash(texts), sum(map(len, texts)))
    digest = _system_memo.get(key)
    if digest is None:
        h = hashlib.sha256()
        for text in texts:
            data = text.encode("utf-8", "surrogatepass")
            h.update(len(data).to_bytes(8, "big"))
            h.update(data)
        digest = h.digest()
        if len(_system_memo) >= _MEMO_MAX:
            _system_memo.clear()
        _system_memo[key] = digest
    return digest


def _tools(tools: list[Tool]) -> tuple[list[Tool] | None, bytes]:
    """(the tools with cleaned schemas, or None when none changed; the tools' digest)."""
    if not tools:
        return None, b""
    fingerprint = orjson.dumps([(t.name, t.description, t.input_schema) for t in tools])
    hit = _tools_memo.get(fingerprint)
    if hit is None:
        cleaned = [replace(t, input_schema=clean_schema(t.input_schema)) for t in tools]
        changed = any(c.input_schema is not t.input_schema for c, t in zip(cleaned, tools))
        hit = (cleaned if changed else None), hashlib.sha256(fingerprint).digest()
        if len(_tools_memo) >= _MEMO_MAX:
            _tools_memo.clear()
        _tools_memo[fingerprint] = hit
    cleaned, digest = hit
    return (list(cleaned) if cleaned is not None else None), digest


# ---------------------------------------------------------------- reasoning


def apply_reasoning_policy(reasoning: Reasoning | None, cfg: Config) -> Reasoning | None:
    server = cfg.server
    policy, default, ceiling = (server.reasoning_policy, server.default_reasoning_effort,
                                server.max_reasoning_effort)
    if policy == "preserve":
        return reasoning
    if policy == "force":
        if default is None:
            return reasoning
        return Reasoning(effort=default)
    if reasoning is not None and not reasoning.enabled:
        return reasoning
    if default and (reasoning is None or (reasoning.effort is None and reasoning.budget_tokens is None)):
        reasoning = (Reasoning(effort=default) if reasoning is None
                     else replace(reasoning, effort=default))
    if policy == "cap" and ceiling and reasoning is not None:
        limit = _RANK[ceiling]
        if reasoning.effort is not None and _RANK.get(reasoning.effort, limit + 1) > limit:
            reasoning = replace(reasoning, effort=ceiling)
        if reasoning.budget_tokens is not None and reasoning.budget_tokens > EFFORT_BUDGETS[ceiling]:
            # the effort too, so a provider that speaks efforts gets the ceiling, not the
            # effort its own table would give the lowered budget
            reasoning = replace(reasoning, budget_tokens=EFFORT_BUDGETS[ceiling],
                                effort=reasoning.effort or ceiling)
    return reasoning
