"""IR → IR policies applied per provider before an adapter encodes a request: the reasoning
policy (`[server] reasoning_policy`) and the prompt-cache hygiene (`[prompt_cache]`).

Reasoning policies (efforts ordered minimal < low < medium < high < max):
- `preserve`: the client's reasoning request goes through unchanged.
- `fill_missing` (default): when the client asked for no effort, `default_reasoning_effort`
  is used (if configured); an explicit client choice is kept.
- `cap`: like `fill_missing`, then any effort above `max_reasoning_effort` is lowered to it.
- `force`: `default_reasoning_effort` replaces whatever the client asked for.
A client that explicitly disabled reasoning keeps it disabled except under `force`.
"""
from __future__ import annotations

from dataclasses import replace

from .config import REASONING_EFFORTS, Config, ProviderConfig
from .ir import Reasoning, Request, TextBlock

_RANK = {effort: rank for rank, effort in enumerate(REASONING_EFFORTS)}


def apply(req: Request, cfg: Config, provider: ProviderConfig) -> Request:
    changes = {}
    system = strip_volatile_system(req.system, cfg.prompt_cache.strip_system_prefixes)
    if system is not req.system:
        changes["system"] = system
    reasoning = apply_reasoning_policy(req.reasoning, cfg)
    if reasoning is not req.reasoning:
        changes["reasoning"] = reasoning
    return replace(req, **changes) if changes else req


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
    if policy == "cap" and ceiling and reasoning is not None and reasoning.effort is not None:
        if _RANK.get(reasoning.effort, 0) > _RANK[ceiling]:
            reasoning = replace(reasoning, effort=ceiling)
    return reasoning
