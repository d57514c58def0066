"""A client's Responses `input` → IR system blocks and messages.

- `message`: `system`/`developer` messages before any other item lead the system prompt (after
  `instructions`); later ones become IR system messages in place. Parts: `input_text`,
  `output_text`, `refusal` → text; `input_image` → an image; `input_file` and unknown parts are
  dropped with a debug log. `id`, `status` and `phase` (what Codex echoes back) are accepted.
- Assistant-side items in a row (`message` of role assistant, `reasoning`, `function_call`,
  `custom_tool_call`) make one assistant turn: parallel calls stay together.
- `function_call_output` / `custom_tool_call_output` (a string or a list of `input_text` /
  `input_image`) become tool results placed right after the turn that made the call. Every call
  gets exactly one result: an unanswered call gets `NO_RESULT`; an output whose call is not in
  the input (an "orphan") becomes user text where it stood.
- `reasoning` → a thinking block: its summary (or `reasoning_text` content) and the signature
  from `encrypted_content` (`fields.thinking_from_secret`).
- `additional_tools` → its tools join the request's tools (`tools.decode_tools`).
- `web_search_call`, `tool_search_call`/`_output`, `item_reference`, `compaction`, shell and
  computer items and unknown types carry nothing the IR can use: dropped with a debug log.
"""
from __future__ import annotations

import logging
from typing import Any

from ... import ir
from ...jsonfields import array, fail, image_from_url, obj, string, tool_arguments
from .fields import thinking_from_secret
from .tools import ClientTools, decode_tools, flat_name

log = logging.getLogger("ferryllm.translate")

NO_RESULT = "(no result: the call was not answered)"
ROLES = ("user", "assistant", "system", "developer")
_ASSISTANT_ITEMS = ("function_call", "custom_tool_call", "reasoning")
_OUTPUTS = ("function_call_output", "custom_tool_call_output")


def _image(part: dict, param: str) -> ir.ImageBlock | None:
    url = part.get("image_url")
    if url is None:
        log.debug("dropped an input_image without image_url (file_id is not supported)")
        return None
    return image_from_url(string(url, f"{param}.image_url"), f"{param}.image_url")


def _parts(content: Any, param: str, *, images: bool = True) -> list:
    if content is None:
        return []
    if content.__class__ is str:
        return [ir.TextBlock(content)] if content else []
    blocks: list = []
    for i, part in enumerate(array(content, param)):
        p = f"{param}[{i}]"
        kind = obj(part, p).get("type")
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            text = string(part.get("text"), f"{p}.text", required=True)
            if text:
                blocks.append(ir.TextBlock(text))
        elif kind == "refusal":
            text = string(part.get("refusal"), f"{p}.refusal", required=True)
            if text:
                blocks.append(ir.TextBlock(text))
        elif kind == "input_image" and images:
            image = _image(part, p)
            if image is not None:
                blocks.append(image)
        else:
            log.debug("dropped a content part of type %s", kind if isinstance(kind, str) else "?")
    return blocks


def _arguments(raw: Any, param: str) -> dict:
    try:
        return tool_arguments(raw)
    except TypeError:
        raise fail(param, "must be a string") from None


def _output(raw: Any, param: str) -> list:
    if raw.__class__ is dict and isinstance(raw.get("content"), str):
        raw = raw["content"]  # an older client's {content, success}
    if raw is None:
        return []
    if raw.__class__ is not str and raw.__class__ is not list:
        raise fail(param, "must be a string or an array")
    return [b for b in _parts(raw, param) if b.type in ("text", "image")]


def _reasoning(item: dict, param: str) -> ir.ThinkingBlock | None:
    texts = [b.text for b in _parts(item.get("summary") or [], f"{param}.summary", images=False)]
    if not texts:
        texts = [b.text for b in _parts(item.get("content") or [], f"{param}.content",
                                        images=False)]
    secret = string(item.get("encrypted_content"), f"{param}.encrypted_content")
    if not texts and not secret:
        return None
    return thinking_from_secret("\n\n".join(texts), secret)


def decode_input(raw: Any, system: list[ir.TextBlock],
                 tools: list[ir.Tool], names: ClientTools) -> list[ir.Message]:
    """`input` → messages; leading system/developer text is appended to `system`, tools from
    `additional_tools` items to `tools`."""
    if raw.__class__ is str:
        return [ir.Message("user", [ir.TextBlock(raw)])] if raw else []
    items = array(raw, "input")
    # pass 1: turns in order; outputs kept apart, keyed by call id
    turns: list[ir.Message | tuple[str, ir.ToolResultBlock]] = []
    results: dict[str, ir.ToolResultBlock] = {}
    calls: set[str] = set()
    leading = True
    for i, item in enumerate(items):
        p = f"input[{i}]"
        item = obj(item, p)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role not in ROLES:
                raise fail(f"{p}.role", "must be one of user, assistant, system, developer")
            if role in ("system", "developer"):
                blocks = _parts(item.get("content"), f"{p}.content", images=False)
                if leading:
                    system.extend(blocks)
                elif blocks:
                    turns.append(ir.Message("system", blocks))
                continue
            leading = False
            if role == "assistant":
                blocks = _parts(item.get("content"), f"{p}.content", images=False)
                _assistant(turns).content.extend(blocks)
            else:
                blocks = _parts(item.get("content"), f"{p}.content")
                if blocks:
                    turns.append(ir.Message("user", blocks))
        elif kind in _ASSISTANT_ITEMS:
            leading = False
            if kind == "reasoning":
                block = _reasoning(item, p)
                if block is not None:
                    _assistant(turns).content.append(block)
                continue
            call_id = string(item.get("call_id"), f"{p}.call_id", required=True)
            name = string(item.get("name"), f"{p}.name", required=True)
            ns = string(item.get("namespace"), f"{p}.namespace")
            if kind == "function_call":
                args = _arguments(item.get("arguments"), f"{p}.arguments")
            else:
                args = {"input": string(item.get("input"), f"{p}.input") or ""}
            if call_id in calls:
                log.debug("dropped a repeated call id")
                continue
            calls.add(call_id)
            _assistant(turns).content.append(ir.ToolUseBlock(call_id, flat_name(name, ns), args))
        elif kind in _OUTPUTS:
            leading = False
            call_id = string(item.get("call_id"), f"{p}.call_id", required=True)
            result = ir.ToolResultBlock(call_id, _output(item.get("output"), f"{p}.output"))
            if call_id not in results:
                results[call_id] = result
                turns.append((call_id, result))
        elif kind == "additional_tools":
            decode_tools(item.get("tools") or [], f"{p}.tools", tools, names)
        else:
            log.debug("dropped an input item of type %s", kind if isinstance(kind, str) else "?")
    return _pair(turns, results, calls)


def _assistant(turns: list) -> ir.Message:
    """The assistant turn being built: the last turn if it is one, else a new one."""
    last = turns[-1] if turns else None
    if last.__class__ is ir.Message and last.role == "assistant":
        return last
    msg = ir.Message("assistant", [])
    turns.append(msg)
    return msg


def _pair(turns: list, results: dict[str, ir.ToolResultBlock], calls: set[str]) -> list:
    """Pass 2: each call's result right after its turn (or NO_RESULT); orphans as user text;
    consecutive user turns merged (tool results first)."""
    out: list[ir.Message] = []
    for turn in turns:
        if turn.__class__ is tuple:
            call_id, result = turn
            if call_id in calls:
                continue  # placed after its call
            text = [b.text for b in result.content if b.type == "text"]
            msg = ir.Message("user", [ir.TextBlock(
                f"Output of tool call {call_id}:\n" + "\n\n".join(text))])
        else:
            msg = turn
        if not msg.content:
            continue
        if out and msg.role == "user" and out[-1].role == "user":
            out[-1].content.extend(msg.content)
        else:
            out.append(msg)
        if msg.role == "assistant":
            answers = [results.get(b.id) or ir.ToolResultBlock(b.id, [ir.TextBlock(NO_RESULT)])
                       for b in msg.content if b.type == "tool_use"]
            if answers:
                out.append(ir.Message("user", answers))
    return out
