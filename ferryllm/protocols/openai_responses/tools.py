"""A client's Responses tools → IR tools, and the way back for the names a provider calls.

- `function` → an IR tool as it is.
- `custom` (freeform: the model writes raw text, e.g. Codex's `apply_patch`) → an IR tool with
  `freeform` set to its `format` and an input schema of one string property `input` (with the
  grammar, if any, in its description), so a provider without freeform tools calls it as a
  function; the answer goes back to the client as a `custom_tool_call` with the raw text.
- `namespace` → its function/custom tools flattened to `<namespace>__<name>` (shortened to 64
  characters by `toolnames.shorten` when longer), returned with `name` and `namespace` apart.
- hosted tools (`web_search`, `file_search`, `tool_search`, `mcp`, `code_interpreter`, …) run on
  OpenAI's side only: dropped, with a debug log.

`ClientTools` remembers, per name the provider sees, the client's name, namespace and kind.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ... import ir
from ...toolnames import shorten
from ...jsonfields import array, fail, obj, string

log = logging.getLogger("ferryllm.translate")

MAX_GRAMMAR = 16_000  # characters of a custom tool's grammar shown to a function-calling model
EMPTY_SCHEMA = {"type": "object", "properties": {}}
_CHOICES = {"auto": "auto", "none": "none", "required": "any"}


@dataclass(slots=True, frozen=True)
class ClientTool:
    name: str
    namespace: str | None = None
    freeform: bool = False


@dataclass(slots=True)
class ClientTools:
    """Provider-visible name → the client's tool, for names that differ or are freeform."""

    special: dict[str, ClientTool] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def lookup(self, name: str) -> ClientTool:
        return self.special.get(name) or ClientTool(name)


def flat_name(name: str, namespace: str | None) -> str:
    return shorten(f"{namespace}__{name}") if namespace else name


def freeform_schema(fmt: dict) -> dict:
    text = "The raw input for this tool, as plain text (not JSON)."
    if fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
        syntax = fmt.get("syntax") if isinstance(fmt.get("syntax"), str) else "lark"
        text += (f" It must follow this {syntax} grammar:\n"
                 + fmt["definition"][:MAX_GRAMMAR])
    return {"type": "object", "properties": {"input": {"type": "string", "description": text}},
            "required": ["input"], "additionalProperties": False}


def _one(tool: dict, param: str, namespace: str | None, out: list[ir.Tool],
         names: ClientTools) -> None:
    kind = tool.get("type")
    if kind not in ("function", "custom"):
        log.debug("dropped a hosted tool of type %s", kind if isinstance(kind, str) else "?")
        return
    name = string(tool.get("name"), f"{param}.name", required=True)
    if not name:
        raise fail(f"{param}.name", "must not be empty")
    description = string(tool.get("description"), f"{param}.description")
    flat = flat_name(name, namespace)
    if flat in names.seen:
        log.debug("dropped a repeated tool definition")
        return
    names.seen.add(flat)
    if kind == "function":
        params = tool.get("parameters")
        schema = obj(params, f"{param}.parameters") if params is not None else EMPTY_SCHEMA
        out.append(ir.Tool(flat, description, schema))
        freeform = False
    else:
        fmt = tool.get("format")
        fmt = obj(fmt, f"{param}.format") if fmt is not None else {"type": "text"}
        out.append(ir.Tool(flat, description, freeform_schema(fmt), freeform=fmt))
        freeform = True
    if namespace or freeform:
        names.special[flat] = ClientTool(name, namespace, freeform)


def decode_tools(raw: Any, param: str, out: list[ir.Tool], names: ClientTools) -> None:
    """Append the tools of a `tools` array (top level or an `additional_tools` item)."""
    for i, tool in enumerate(array(raw, param)):
        p = f"{param}[{i}]"
        tool = obj(tool, p)
        if tool.get("type") == "namespace":
            ns = string(tool.get("name"), f"{p}.name", required=True)
            for j, inner in enumerate(array(tool.get("tools") or [], f"{p}.tools")):
                _one(obj(inner, f"{p}.tools[{j}]"), f"{p}.tools[{j}]", ns, out, names)
        else:
            _one(tool, p, None, out, names)


def decode_tool_choice(raw: Any, tools: list[ir.Tool]) -> tuple[ir.ToolChoice | None,
                                                                list[ir.Tool]]:
    """(the IR tool choice, the tools it leaves available)."""
    if raw is None:
        return None, tools
    if raw.__class__ is str:
        if raw not in _CHOICES:
            raise fail("tool_choice", "must be auto, none, required or an object")
        return ir.ToolChoice(_CHOICES[raw]), tools
    raw = obj(raw, "tool_choice")
    kind = raw.get("type")
    if kind in ("function", "custom"):
        name = string(raw.get("name"), "tool_choice.name", required=True)
        ns = string(raw.get("namespace"), "tool_choice.namespace")
        return ir.ToolChoice("tool", flat_name(name, ns)), tools
    if kind == "allowed_tools":
        mode = raw.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise fail("tool_choice.mode", "must be auto or required")
        allowed = set()
        for i, t in enumerate(array(raw.get("tools"), "tool_choice.tools")):
            t = obj(t, f"tool_choice.tools[{i}]")
            name = t.get("name")
            if isinstance(name, str):
                allowed.add(flat_name(name, t.get("namespace")
                                      if isinstance(t.get("namespace"), str) else None))
        return ir.ToolChoice(_CHOICES[mode]), [t for t in tools if t.name in allowed]
    log.debug("tool_choice of type %s treated as auto", kind if isinstance(kind, str) else "?")
    return ir.ToolChoice("auto"), tools
