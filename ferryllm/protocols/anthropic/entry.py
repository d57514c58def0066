"""Anthropic Messages entry: client JSON ⇄ IR (sans-IO).

`decode_request` validates what the IR needs (naming the offending field in `param`, e.g.
`messages.2.content.0.input`) and is lenient about everything else: unknown content blocks are
dropped (debug log, type name only), server tools are dropped (info log, type only) and fields the
IR does not model (`context_management`, `container`, `mcp_servers`, `service_tier`, …) are
accepted and ignored here — the same-protocol pass-through keeps them via `Request.native`.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import orjson

from ... import ir
from ...errors import GatewayError, InvalidRequest
from ...jsonfields import Bad as _Bad, array_at as _list, number_at as _number, obj_at as _dict

log = logging.getLogger("ferryllm.translate")

FORWARD_HEADERS = ("anthropic-version", "anthropic-beta")
EFFORTS = frozenset({"minimal", "low", "medium", "high", "xhigh", "max"})
_TOOL_CHOICES = frozenset({"auto", "any", "tool", "none"})
TOOL_SEARCH_PREFIX = "tool_search_tool_"  # tool_search_tool_regex_20251119, …_bm25_20251119


# ---------------------------------------------------------------- small validators


def _str(obj: dict, key: str, *where: str | int, required: bool = True) -> str | None:
    value = obj.get(key)
    if isinstance(value, str):
        return value
    if value is None:
        if not required:
            return None
        raise _Bad("a string is required", *where, key)
    raise _Bad("must be a string", *where, key)


def _int(value: Any, *path: str | int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad("must be an integer", *path)
    return value


# ---------------------------------------------------------------- content blocks


def _image(block: dict) -> ir.ImageBlock | None:
    source = _dict(block.get("source"), "source")
    kind = source.get("type")
    if kind == "base64":
        return ir.ImageBlock(media_type=_str(source, "media_type", "source"),
                             data=_str(source, "data", "source"))
    if kind == "url":
        return ir.ImageBlock(url=_str(source, "url", "source"))
    log.debug("dropped image block with source type %s", kind if isinstance(kind, str) else "?")
    return None


def _tool_result_content(content: Any) -> list[ir.TextBlock | ir.ImageBlock]:
    if content is None:
        return []
    if isinstance(content, str):
        return [ir.TextBlock(content)]
    out: list[ir.TextBlock | ir.ImageBlock] = []
    for i, block in enumerate(_list(content)):
        try:
            kind = _dict(block).get("type")
            if kind == "text":
                out.append(ir.TextBlock(_str(block, "text")))
            elif kind == "image":
                image = _image(block)
                if image is not None:
                    out.append(image)
            elif kind == "tool_reference":  # a tool search's answer: "this tool is loaded"
                out.append(ir.ToolReferenceBlock(_str(block, "tool_name")))
            else:
                log.debug("dropped %s block inside tool_result",
                          kind if isinstance(kind, str) else "?")
        except _Bad as bad:
            raise bad.at(i) from None
    return out


def _block(block: Any) -> ir.Block | None:
    if not isinstance(block, dict):
        raise _Bad("must be an object")
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")  # the common case checked inline: a call is ~15 % of a block
        return ir.TextBlock(text if isinstance(text, str) else _str(block, "text"))
    if kind == "tool_use":
        return ir.ToolUseBlock(_str(block, "id"), _str(block, "name"),
                               _dict(block.get("input"), "input"))
    if kind == "tool_result":
        is_error = block.get("is_error")
        if is_error is not None and not isinstance(is_error, bool):
            raise _Bad("must be a boolean", "is_error")
        tool_use_id = _str(block, "tool_use_id")
        try:
            content = _tool_result_content(block.get("content"))
        except _Bad as bad:
            raise bad.at("content") from None
        return ir.ToolResultBlock(tool_use_id, content, bool(is_error))
    if kind == "image":
        return _image(block)
    if kind == "thinking":
        return ir.ThinkingBlock(thinking=_str(block, "thinking"),
                                signature=_str(block, "signature", required=False))
    if kind == "redacted_thinking":
        return ir.ThinkingBlock(redacted=True, data=_str(block, "data"))
    if kind == "server_tool_use" and str(block.get("name")).startswith(TOOL_SEARCH_PREFIX):
        return ir.ServerToolUseBlock(_str(block, "id"), _str(block, "name"),
                                     _dict(block.get("input"), "input"))
    if kind == "tool_search_tool_result":
        return _tool_search_result(block)
    if not isinstance(kind, str):
        raise _Bad("a string is required", "type")
    # document, server_tool_use, web_search_tool_result, container_upload, search_result, …
    log.debug("dropped %s block", kind[:64])
    return None


def _tool_search_result(block: dict) -> ir.ToolSearchResultBlock:
    tool_use_id = _str(block, "tool_use_id")
    content = _dict(block.get("content"), "content")
    if content.get("type") == "tool_search_tool_result_error":
        code = content.get("error_code")
        return ir.ToolSearchResultBlock(tool_use_id, error=code if isinstance(code, str) else "unavailable")
    names = []
    for i, ref in enumerate(_list(content.get("tool_references"), "content", "tool_references")):
        names.append(_str(_dict(ref, "content", "tool_references", i), "tool_name",
                          "content", "tool_references", i))
    return ir.ToolSearchResultBlock(tool_use_id, names)


def _content(content: Any) -> list[ir.Block]:
    if isinstance(content, str):
        return [ir.TextBlock(content)]
    out: list[ir.Block] = []
    for i, raw in enumerate(_list(content)):
        try:
            block = _block(raw)
        except _Bad as bad:
            raise bad.at(i) from None
        if block is not None:
            out.append(block)
    return out


def _messages(raw: Any) -> list[ir.Message]:
    out = []
    for i, msg in enumerate(_list(raw, "messages")):
        if not isinstance(msg, dict):
            raise _Bad("must be an object", "messages", i)
        role = msg.get("role")
        if role not in ("user", "assistant", "system"):
            raise _Bad("must be 'user', 'assistant' or 'system'", "messages", i, "role")
        if "content" not in msg:
            raise _Bad("required", "messages", i, "content")
        try:
            content = _content(msg["content"])
        except _Bad as bad:
            raise bad.at("messages", i, "content") from None
        out.append(ir.Message(role, content))
    return out


def _system(raw: Any) -> list[ir.TextBlock]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [ir.TextBlock(raw)] if raw else []
    out = []
    for i, block in enumerate(_list(raw, "system")):
        kind = _dict(block, "system", i).get("type")
        if kind == "text":
            out.append(ir.TextBlock(_str(block, "text", "system", i)))
        else:
            log.debug("dropped %s system block", kind if isinstance(kind, str) else "?")
    return out


# ---------------------------------------------------------------- tools, reasoning


def _tool_search(tool: dict, kind: str) -> ir.ServerToolSearch:
    name = tool.get("name")
    variant = "bm25" if kind.startswith(TOOL_SEARCH_PREFIX + "bm25") else "regex"
    return ir.ServerToolSearch(variant, name if isinstance(name, str) and name
                               else TOOL_SEARCH_PREFIX + variant)


def _tools(raw: Any, req: ir.Request) -> list[ir.Tool]:
    """The client tools; a server tool search among them goes to `req.tool_search`."""
    if raw is None:
        return []
    out = []
    for i, tool in enumerate(_list(raw, "tools")):
        if not isinstance(tool, dict):
            raise _Bad("must be an object", "tools", i)
        kind = tool.get("type")
        if (kind is not None and kind != "custom") or "input_schema" not in tool:
            if isinstance(kind, str) and kind.startswith(TOOL_SEARCH_PREFIX):
                req.tool_search = _tool_search(tool, kind)  # ferryllm runs it where needed
                continue
            # a server tool (web_search_*, code_execution_*, …): only Anthropic providers run it,
            # and they get it through the native body
            log.info("dropped server tool of type %s", kind if isinstance(kind, str) else "?")
            continue
        description = tool.get("description")
        if description is not None and not isinstance(description, str):
            raise _Bad("must be a string", "tools", i, "description")
        deferred = tool.get("defer_loading")
        if deferred is not None and not isinstance(deferred, bool):
            raise _Bad("must be a boolean", "tools", i, "defer_loading")
        # a deferred tool is loaded by a tool search (a tool_reference in a tool result):
        # policy.resolve_deferred decides what a provider that does not defer gets
        out.append(ir.Tool(_str(tool, "name", "tools", i), description,
                           _dict(tool["input_schema"], "tools", i, "input_schema"),
                           deferred=bool(deferred)))
    return out


def _tool_choice(raw: Any) -> ir.ToolChoice | None:
    if raw is None:
        return None
    kind = _dict(raw, "tool_choice").get("type")
    if not isinstance(kind, str) or kind not in _TOOL_CHOICES:  # a list is not hashable
        raise _Bad("must be one of auto, any, tool, none", "tool_choice", "type")
    name = _str(raw, "name", "tool_choice", required=kind == "tool")
    disable = raw.get("disable_parallel_tool_use")
    if disable is not None and not isinstance(disable, bool):
        raise _Bad("must be a boolean", "tool_choice", "disable_parallel_tool_use")
    return ir.ToolChoice(type=kind, name=name, disable_parallel=bool(disable))


def _reasoning(thinking: Any, output_config: Any) -> ir.Reasoning | None:
    reasoning = None
    if thinking is not None:
        kind = _dict(thinking, "thinking").get("type")
        if kind == "enabled":
            budget = _int(thinking.get("budget_tokens"), "thinking", "budget_tokens")
            reasoning = ir.Reasoning(budget_tokens=budget)
        elif kind in ("adaptive", "between_tools"):
            reasoning = ir.Reasoning(adaptive=True)
        elif kind == "disabled":
            reasoning = ir.Reasoning(enabled=False)
        else:
            log.debug("ignored thinking of type %s", kind if isinstance(kind, str) else "?")
    if output_config is not None:
        effort = _dict(output_config, "output_config").get("effort")
        if effort is not None:
            if not isinstance(effort, str):
                raise _Bad("must be a string", "output_config", "effort")
            if effort in EFFORTS:
                if reasoning is None:
                    reasoning = ir.Reasoning()
                reasoning.effort = effort
            else:
                log.debug("ignored unknown output_config.effort value")
    return reasoning


def _response_format(output_config: Any) -> dict | None:
    """`output_config.format` (structured outputs: a JSON schema) → the IR's `response_format`."""
    if output_config is None:
        return None
    fmt = _dict(output_config, "output_config").get("format")
    if fmt is None:
        return None
    fmt = _dict(fmt, "output_config", "format")
    schema = fmt.get("schema")
    if fmt.get("type") != "json_schema" or not isinstance(schema, dict):
        log.debug("ignored an output_config.format without a JSON schema")
        return None
    return {"type": "json_schema", "name": "response", "schema": schema}


# ---------------------------------------------------------------- requests


def _forward_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out = {}
    if hasattr(headers, "getall"):  # aiohttp's case-insensitive multidict: two look-ups
        for name in FORWARD_HEADERS:
            values = headers.getall(name, None)
            if values:
                out[name] = values[-1]
        return out
    for key, value in headers.items():
        low = key.lower()
        if low in FORWARD_HEADERS:
            out[low] = value
    return out


def _decode(body: Any, headers: Mapping[str, str], *, need_max_tokens: bool) -> ir.Request:
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    try:
        return _decode_object(body, headers, need_max_tokens)
    except _Bad as bad:
        raise bad.dotted() from None


def _decode_object(body: dict, headers: Mapping[str, str], need_max_tokens: bool) -> ir.Request:
    model = _str(body, "model")
    if not model:
        raise _Bad("must not be empty", "model")
    if "messages" not in body:
        raise _Bad("required", "messages")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None or need_max_tokens:
        if max_tokens is None:
            raise _Bad("required", "max_tokens")
        if _int(max_tokens, "max_tokens") < 1:
            raise _Bad("must be a positive integer", "max_tokens")
    req = ir.Request(model=model, messages=_messages(body["messages"]),
                     system=_system(body.get("system")),
                     tool_choice=_tool_choice(body.get("tool_choice")), max_tokens=max_tokens,
                     native_protocol="anthropic", native=body, headers=_forward_headers(headers))
    req.tools = _tools(body.get("tools"), req)
    if req.tool_choice is not None and req.tool_choice.disable_parallel:
        req.parallel_tool_calls = False
    stop = body.get("stop_sequences")
    if stop is not None:
        for i, s in enumerate(_list(stop, "stop_sequences")):
            if not isinstance(s, str):
                raise _Bad("must be a string", "stop_sequences", i)
        req.stop = list(stop)
    temperature = body.get("temperature")
    if temperature is not None:
        req.temperature = _number(temperature, "temperature")
    top_p = body.get("top_p")
    if top_p is not None:
        req.top_p = _number(top_p, "top_p")
    top_k = body.get("top_k")
    if top_k is not None:
        req.top_k = _int(top_k, "top_k")
    stream = body.get("stream")
    if stream is not None:
        if not isinstance(stream, bool):
            raise _Bad("must be a boolean", "stream")
        req.stream = stream
    metadata = body.get("metadata")
    if metadata is not None:
        req.user = _str(_dict(metadata, "metadata"), "user_id", "metadata", required=False)
    req.reasoning = _reasoning(body.get("thinking"), body.get("output_config"))
    req.response_format = _response_format(body.get("output_config"))
    return req


def decode_request(body: dict, headers: Mapping[str, str]) -> ir.Request:
    """A `POST /v1/messages` body → IR. Raises `InvalidRequest` naming the field."""
    return _decode(body, headers, need_max_tokens=True)


def decode_count_tokens(body: dict, headers: Mapping[str, str]) -> ir.Request:
    """A `POST /v1/messages/count_tokens` body → IR (`max_tokens` not required)."""
    return _decode(body, headers, need_max_tokens=False)


# ---------------------------------------------------------------- responses


def message_id(raw: str) -> str:
    return raw if raw.startswith("msg_") else "msg_" + raw


def usage_dict(usage: ir.Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens,
            "cache_creation_input_tokens": usage.cache_creation_input_tokens,
            "cache_read_input_tokens": usage.cache_read_input_tokens,
            "output_tokens": usage.output_tokens}


def _out_block(block: ir.Block) -> dict | None:
    match block:
        case ir.TextBlock(text=text):
            return {"type": "text", "text": text}
        case ir.ThinkingBlock(redacted=True, data=data):
            return {"type": "redacted_thinking", "data": data or ""}
        case ir.ThinkingBlock(thinking=thinking, signature=signature):
            return {"type": "thinking", "thinking": thinking, "signature": signature or ""}
        case ir.ToolUseBlock(id=id_, name=name, input=input_):
            return {"type": "tool_use", "id": id_, "name": name, "input": input_}
        case ir.ServerToolUseBlock() | ir.ToolSearchResultBlock():
            return server_block(block)
    log.debug("dropped %s block from a response", block.type)
    return None


def server_block(block: ir.ServerToolUseBlock | ir.ToolSearchResultBlock) -> dict:
    """A tool search's blocks as the Anthropic API gives them."""
    if block.type == "server_tool_use":
        return {"type": "server_tool_use", "id": block.id, "name": block.name,
                "input": block.input}
    if block.error is not None:
        content = {"type": "tool_search_tool_result_error", "error_code": block.error}
    else:
        content = {"type": "tool_search_tool_search_result", "tool_references": [
            {"type": "tool_reference", "tool_name": name} for name in block.tool_names]}
    return {"type": "tool_search_tool_result", "tool_use_id": block.tool_use_id,
            "content": content}


def encode_response(resp: ir.Response, display_model: str) -> dict:
    content = []
    for block in resp.content:
        out = _out_block(block)
        if out is not None:
            content.append(out)
    return {"id": message_id(resp.id), "type": "message", "role": "assistant",
            "model": display_model, "content": content, "stop_reason": resp.stop_reason,
            "stop_sequence": resp.stop_sequence, "usage": usage_dict(resp.usage)}


def error_body(err: GatewayError) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": err.kind, "message": str(err)}})
