"""Tool input schemas made acceptable to OpenAI-compatible backends (`clean_schema`).

Claude Code and MCP servers send JSON Schema 2020-12 (`$schema`, `$defs` + `$ref`,
`additionalProperties`, pydantic's `examples` …). OpenAI itself takes most of it, but stricter
OpenAI-compatible backends (Gemini's compatibility layer, vLLM/SGLang guided decoding, some
hosted gateways) reject meta keywords or `$ref`. The cleaning only removes what carries no
meaning for the model or the validator, and rewrites what has an equivalent everyone accepts:

- dropped everywhere: `$schema`, `$id`, `$comment`, `$anchor`, `$vocabulary`,
  `$dynamicAnchor` (metadata) and the annotation-only `examples`, `deprecated`, `readOnly`,
  `writeOnly`, `contentMediaType`, `contentEncoding`, `contentSchema`;
- local references (`#/$defs/Name`, `#/definitions/Name`) are inlined when they are not
  recursive; `$defs` / `definitions` go once no `$ref` is left. A recursive schema keeps its
  `$ref`s and defs (inlining it would never end);
- `unevaluatedProperties: false` on a schema without `allOf`/`anyOf`/`oneOf` becomes
  `additionalProperties: false` (the same constraint in the older keyword); otherwise it and
  `unevaluatedItems` are dropped (loosening, never tightening);
- a top-level schema without `type` gets `"type": "object"` (function parameters must be an
  object schema).

Kept: `type`, `properties`, `required`, `items`, `enum`, `const`, `default`, `description`,
`title`, `format` (any value: OpenAI accepts unknown formats such as `uri` in non-strict
function schemas), `pattern`, numeric and length bounds, `anyOf`/`oneOf`/`allOf`,
`additionalProperties` and `prefixItems`. Property NAMES are never touched: a property called
`examples` or `$id` inside `properties` stays.

`clean_schema` never mutates its input: a schema with nothing to clean comes back as the very
same object; otherwise unchanged sub-schemas are shared with it. Results are memoized by the
schema's serialized bytes (Claude Code sends the same ~20 tools every turn). Treat the returned
dict as read-only.
"""
from __future__ import annotations

from typing import Any

import orjson

DROP = frozenset({
    "$schema", "$id", "$comment", "$anchor", "$vocabulary", "$dynamicAnchor",
    "examples", "deprecated", "readOnly", "writeOnly",
    "contentMediaType", "contentEncoding", "contentSchema",
})
_DEFS = ("$defs", "definitions")
_COMBINATORS = ("allOf", "anyOf", "oneOf")
# keywords whose value is a map of name → sub-schema (the names are data, not keywords)
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions",
                          "dependentSchemas"})
# keywords whose value is a sub-schema or a list of them
_SCHEMA_VALUES = frozenset({"items", "additionalProperties", "not", "if", "then", "else",
                            "contains", "propertyNames", "unevaluatedItems",
                            "unevaluatedProperties", "additionalItems", "prefixItems",
                            "allOf", "anyOf", "oneOf"})

_MEMO_MAX = 1024
_memo: dict[bytes, dict[str, Any] | None] = {}
_MISS = object()


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema a strict OpenAI-compatible backend accepts (see the module doc)."""
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    key = orjson.dumps(schema)
    cached = _memo.get(key, _MISS)
    if cached is _MISS:
        out = _clean_root(schema)
        cached = None if out is schema else out  # None: already clean
        if len(_memo) >= _MEMO_MAX:
            _memo.clear()
        _memo[key] = cached
    return schema if cached is None else cached


def _clean_root(schema: dict[str, Any]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for name in _DEFS:
        table = schema.get(name)
        if isinstance(table, dict):
            defs.update({f"#/{name}/{k}": v for k, v in table.items()})
    recursive = _recursive_refs(defs)
    out = _clean(schema, defs, recursive, ())
    if any(name in out for name in _DEFS):
        rest = {k: v for k, v in out.items() if k not in _DEFS}
        if not _refs(rest, set()):  # every reference was inlined: the definitions are unused
            out = rest
    if "type" not in out and not any(k in out for k in (*_COMBINATORS, "$ref")):
        out = {"type": "object", **out}
    return out


def _refs(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)
    return found


def _recursive_refs(defs: dict[str, Any]) -> frozenset[str]:
    """Refs whose definition reaches itself again: these cannot be inlined."""
    graph = {ref: _refs(body, set()) & defs.keys() for ref, body in defs.items()}
    recursive = set()
    for start in graph:
        stack, seen = list(graph[start]), set()
        while stack:
            ref = stack.pop()
            if ref == start:
                recursive.add(start)
                break
            if ref not in seen:
                seen.add(ref)
                stack.extend(graph.get(ref, ()))
    return frozenset(recursive)


def _clean(node: dict[str, Any], defs: dict[str, Any], recursive: frozenset[str],
           path: tuple[str, ...]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref in defs and ref not in recursive and ref not in path:
        target = defs[ref]
        if isinstance(target, dict):
            inlined = _clean(target, defs, recursive, (*path, ref))
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            if not siblings:
                return inlined
            # 2020-12 allows keywords beside $ref (a description, a default): theirs win
            return {**inlined, **_clean(siblings, defs, recursive, path)}
    out: dict[str, Any] = {}
    changed = False
    for key, value in node.items():
        if key in DROP:
            changed = True
            continue
        new = value
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            new = _clean_map(value, defs, recursive, path)
        elif key in _SCHEMA_VALUES:
            if isinstance(value, dict):
                new = _clean(value, defs, recursive, path)
            elif isinstance(value, list):
                new = _clean_list(value, defs, recursive, path)
        if new is not value:
            changed = True
        out[key] = new
    unevaluated = out.get("unevaluatedProperties")
    if "unevaluatedProperties" in out:
        del out["unevaluatedProperties"]
        changed = True
        if (unevaluated is False and "additionalProperties" not in out
                and not any(k in out for k in _COMBINATORS)):
            out["additionalProperties"] = False
    if "unevaluatedItems" in out:
        del out["unevaluatedItems"]
        changed = True
    return out if changed else node


def _clean_map(table: dict[str, Any], defs: dict[str, Any], recursive: frozenset[str],
               path: tuple[str, ...]) -> dict[str, Any]:
    out, changed = {}, False
    for name, sub in table.items():
        new = _clean(sub, defs, recursive, path) if isinstance(sub, dict) else sub
        changed = changed or new is not sub
        out[name] = new
    return out if changed else table


def _clean_list(items: list[Any], defs: dict[str, Any], recursive: frozenset[str],
                path: tuple[str, ...]) -> list[Any]:
    out = [_clean(sub, defs, recursive, path) if isinstance(sub, dict) else sub for sub in items]
    return out if any(a is not b for a, b in zip(out, items)) else items
