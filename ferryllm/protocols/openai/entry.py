"""OpenAI Chat Completions entry: client JSON ⇄ IR (sans-IO).

`decode_request` validates what the gateway reads and names the offending field in a 400
(`param="messages[2].content"`); fields the IR does not model stay in `Request.native` for an
OpenAI provider (pass-through). Every system/developer message joins `Request.system` in order;
consecutive `tool` messages (and a user message right after them) become one user turn of tool
results; unknown content parts are dropped with a debug log naming only their type.

Error bodies (`error_body`) are `{"error":{"message","type","param","code"}}`; `type` comes from
the error's `kind` (the Anthropic error type used inside the gateway):

    kind                   OpenAI type             note
    invalid_request_error  invalid_request_error
    authentication_error   authentication_error
    permission_error       permission_error
    not_found_error        not_found_error         model_not_found → invalid_request_error, as OpenAI
    request_too_large      invalid_request_error   code request_too_large
    rate_limit_error       rate_limit_error        code rate_limit_exceeded (the error's own code)
    overloaded_error       server_error            HTTP 503/529
    api_error              server_error
    (anything else)        invalid_request_error below 500, server_error from 500

`code` is the error's own code (`model_not_found`, `rate_limit_exceeded`, `upstream_error` …).

Answer parts with no Chat Completions field of their own: `model_context_window_exceeded` →
`finish_reason: "length"`; a refusal's `stop_details` → the message's `refusal` text (its
explanation or category); thinking tokens → `completion_tokens_details.reasoning_tokens`; cache
writes (any TTL) → `prompt_tokens_details.cache_write_tokens`.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import orjson

from ... import ir
from ...errors import GatewayError, InvalidRequest
from ...jsonfields import (array as _list, arguments_json as _arguments_json, boolean as _bool,
                          fail as _fail, integer as _int, number as _num, obj as _dict,
                          image_from_url, string as _str, tool_arguments)

log = logging.getLogger("ferryllm.translate")

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
# OpenAI reasoning_effort → IR effort ("none" turns reasoning off)
EFFORTS = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high",
           "xhigh": "xhigh", "max": "max"}
FINISH_REASONS = {ir.END_TURN: "stop", ir.MAX_TOKENS: "length", ir.TOOL_USE: "tool_calls",
                  ir.STOP_SEQUENCE: "stop", ir.REFUSAL: "content_filter", ir.PAUSE_TURN: "stop",
                  ir.CONTEXT_WINDOW_EXCEEDED: "length"}
ERROR_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "request_too_large": "invalid_request_error",
    "rate_limit_error": "rate_limit_error",
    "overloaded_error": "server_error",
    "api_error": "server_error",
}
_TOOL_CHOICES = {"auto": "auto", "none": "none", "required": "any"}


# ---------------------------------------------------------------- content


def _image(part: dict, param: str) -> ir.ImageBlock:
    raw = part.get("image_url")
    url = raw if isinstance(raw, str) else _str(_dict(raw, f"{param}.image_url").get("url"),
                                                f"{param}.image_url.url", required=True)
    return image_from_url(url, f"{param}.image_url.url")


def _content(content: Any, param: str, *, images: bool) -> list[ir.Block]:
    """A message's `content`: a string, or an array of parts (text; images where allowed)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [ir.TextBlock(content)] if content else []
    blocks: list[ir.Block] = []
    for i, part in enumerate(_list(content, param)):
        p = f"{param}[{i}]"
        kind = _dict(part, p).get("type")
        if kind == "text":
            text = _str(part.get("text"), f"{p}.text", required=True)
            if text:
                blocks.append(ir.TextBlock(text))
        elif kind == "refusal":  # an assistant's earlier refusal is what it said
            text = _str(part.get("refusal"), f"{p}.refusal", required=True)
            if text:
                blocks.append(ir.TextBlock(text))
        elif kind == "image_url" and images:
            blocks.append(_image(part, p))
        else:
            log.debug("dropped content part of type %s", kind if isinstance(kind, str) else "?")
    return blocks


def _arguments(raw: Any, param: str) -> dict[str, Any]:
    try:
        return tool_arguments(raw)
    except TypeError:
        raise _fail(param, "must be a string") from None


def _tool_calls(raw: Any, param: str) -> list[ir.ToolUseBlock]:
    out = []
    for i, call in enumerate(_list(raw, param)):
        p = f"{param}[{i}]"
        call = _dict(call, p)
        fn = _dict(call.get("function"), f"{p}.function")
        out.append(ir.ToolUseBlock(
            id=_str(call.get("id"), f"{p}.id", required=True),
            name=_str(fn.get("name"), f"{p}.function.name", required=True),
            input=_arguments(fn.get("arguments"), f"{p}.function.arguments")))
    return out


def _tool_result_text(content: Any, param: str) -> list[ir.TextBlock | ir.ImageBlock]:
    return [b for b in _content(content, param, images=True) if b.type in ("text", "image")]


def _messages(raw: Any) -> tuple[list[ir.TextBlock], list[ir.Message]]:
    msgs = _list(raw, "messages")
    if not msgs:
        raise _fail("messages", "must contain at least one message")
    system: list[ir.TextBlock] = []
    out: list[ir.Message] = []
    tool_turn: ir.Message | None = None  # the user turn holding the latest run of tool results
    legacy_calls: list[str] = []  # ids given to legacy `function_call`s, for `function` results
    for i, msg in enumerate(msgs):
        p = f"messages[{i}]"
        role = _dict(msg, p).get("role")
        if role not in ROLES:
            raise _fail(f"{p}.role", "must be one of system, developer, user, assistant, tool")
        content = msg.get("content")
        if role in ("system", "developer"):
            system.extend(_content(content, f"{p}.content", images=False))
        elif role in ("tool", "function"):
            if role == "tool":
                call_id = _str(msg.get("tool_call_id"), f"{p}.tool_call_id", required=True)
            else:  # legacy: answers the oldest unanswered function_call
                call_id = legacy_calls.pop(0) if legacy_calls else f"call_fn_{i}"
            result = ir.ToolResultBlock(call_id, _tool_result_text(content, f"{p}.content"))
            if tool_turn is not None and out and out[-1] is tool_turn:
                tool_turn.content.append(result)
            else:
                tool_turn = ir.Message("user", [result])
                out.append(tool_turn)
        elif role == "user":
            blocks = _content(content, f"{p}.content", images=True)
            if tool_turn is not None and out and out[-1] is tool_turn:
                tool_turn.content.extend(blocks)
                tool_turn = None
            elif blocks:
                out.append(ir.Message("user", blocks))
        else:  # assistant
            blocks = []
            reasoning = _str(msg.get("reasoning_content"), f"{p}.reasoning_content")
            if reasoning is None and isinstance(msg.get("reasoning"), str):
                reasoning = msg["reasoning"]  # OpenRouter-style history
            if reasoning:
                blocks.append(ir.ThinkingBlock(reasoning))
            blocks.extend(_content(content, f"{p}.content", images=False))
            if msg.get("tool_calls") is not None:
                blocks.extend(_tool_calls(msg["tool_calls"], f"{p}.tool_calls"))
            elif msg.get("function_call") is not None:
                fn = _dict(msg["function_call"], f"{p}.function_call")
                call_id = f"call_fn_{i}"
                legacy_calls.append(call_id)
                blocks.append(ir.ToolUseBlock(
                    call_id, _str(fn.get("name"), f"{p}.function_call.name", required=True),
                    _arguments(fn.get("arguments"), f"{p}.function_call.arguments")))
            if blocks:
                out.append(ir.Message("assistant", blocks))
            else:
                log.debug("dropped an empty assistant message")
    return system, out


# ---------------------------------------------------------------- tools and options


def _tool(fn: Any, param: str) -> ir.Tool:
    fn = _dict(fn, param)
    params = fn.get("parameters")
    return ir.Tool(
        name=_str(fn.get("name"), f"{param}.name", required=True),
        description=_str(fn.get("description"), f"{param}.description"),
        input_schema=(_dict(params, f"{param}.parameters") if params is not None
                      else {"type": "object", "properties": {}}))


def _tools(body: dict) -> list[ir.Tool]:
    tools = []
    if body.get("tools") is not None:
        for i, tool in enumerate(_list(body["tools"], "tools")):
            kind = _dict(tool, f"tools[{i}]").get("type", "function")
            if kind != "function":
                log.debug("dropped tool of type %s", kind if isinstance(kind, str) else "?")
                continue
            tools.append(_tool(tool.get("function"), f"tools[{i}].function"))
    elif body.get("functions") is not None:  # legacy
        for i, fn in enumerate(_list(body["functions"], "functions")):
            tools.append(_tool(fn, f"functions[{i}]"))
    return tools


def _tool_choice(body: dict) -> ir.ToolChoice | None:
    if "tool_choice" in body:
        raw, param = body["tool_choice"], "tool_choice"
    else:
        raw, param = body.get("function_call"), "function_call"
    if raw is None:
        return None
    if isinstance(raw, str):
        kind = _TOOL_CHOICES.get(raw)
        if kind is None:
            raise _fail(param, "must be auto, none, required or a function")
        return ir.ToolChoice(kind)
    raw = _dict(raw, param)
    if param == "function_call":
        return ir.ToolChoice("tool", _str(raw.get("name"), f"{param}.name", required=True))
    if raw.get("type") == "function":
        fn = _dict(raw.get("function"), f"{param}.function")
        return ir.ToolChoice("tool", _str(fn.get("name"), f"{param}.function.name", required=True))
    log.debug("tool_choice of type %s treated as auto",
              raw.get("type") if isinstance(raw.get("type"), str) else "?")
    return ir.ToolChoice("auto")


def _reasoning(raw: Any) -> ir.Reasoning | None:
    effort = _str(raw, "reasoning_effort")
    if effort is None:
        return None
    if effort == "none":
        return ir.Reasoning(enabled=False)
    if effort not in EFFORTS:
        raise _fail("reasoning_effort", "must be one of none, minimal, low, medium, high, xhigh")
    return ir.Reasoning(effort=EFFORTS[effort])


def _stop(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    return [_str(s, f"stop[{i}]", required=True) for i, s in enumerate(_list(raw, "stop"))]


def decode_request(body: dict, headers: Mapping[str, str]) -> ir.Request:
    """A Chat Completions request body → IR. Raises `InvalidRequest` naming the field."""
    body = _dict(body, "body")
    model = _str(body.get("model"), "model", required=True)
    if not model:
        raise _fail("model", "must not be empty")
    n = _int(body.get("n"), "n", minimum=1)
    if n is not None and n > 1:
        raise InvalidRequest("n > 1 is not supported", param="n")
    system, messages = _messages(body.get("messages"))
    max_tokens = _int(body.get("max_tokens"), "max_tokens", minimum=1)
    max_completion = _int(body.get("max_completion_tokens"), "max_completion_tokens", minimum=1)
    stream = bool(_bool(body.get("stream"), "stream"))
    include_usage = False
    if body.get("stream_options") is not None:
        opts = _dict(body["stream_options"], "stream_options")
        include_usage = bool(_bool(opts.get("include_usage"), "stream_options.include_usage"))
    tool_choice = _tool_choice(body)
    parallel = _bool(body.get("parallel_tool_calls"), "parallel_tool_calls")
    if parallel is False:
        tool_choice = tool_choice or ir.ToolChoice("auto")
        tool_choice.disable_parallel = True
    return ir.Request(
        model=model, messages=messages, system=system, tools=_tools(body),
        tool_choice=tool_choice,
        max_tokens=max_completion if max_completion is not None else max_tokens,
        temperature=_num(body.get("temperature"), "temperature"),
        top_p=_num(body.get("top_p"), "top_p"),
        stop=_stop(body.get("stop")), stream=stream, include_usage=include_usage,
        user=_str(body.get("user"), "user"), reasoning=_reasoning(body.get("reasoning_effort")),
        parallel_tool_calls=parallel, native_protocol="openai", native=body)


# ---------------------------------------------------------------- responses


def completion_id(resp_id: str) -> str:
    return resp_id if resp_id.startswith("chatcmpl-") else f"chatcmpl-{resp_id}"


def finish_reason(stop_reason: str | None) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if stop_reason else "stop"


def usage_dict(usage: ir.Usage) -> dict:
    """IR usage → OpenAI usage: `prompt_tokens` counts input, cache reads and cache writes;
    cache writes (Anthropic's `cache_creation_input_tokens`) appear as `cache_write_tokens`."""
    prompt = usage.prompt_tokens
    details = {"cached_tokens": usage.cache_read_input_tokens}
    if usage.cache_creation_input_tokens:
        details["cache_write_tokens"] = usage.cache_creation_input_tokens
    out = {"prompt_tokens": prompt, "completion_tokens": usage.output_tokens,
           "total_tokens": prompt + usage.output_tokens, "prompt_tokens_details": details}
    if usage.thinking_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.thinking_tokens}
    return out


def refusal_text(details: dict | None) -> str | None:
    """Anthropic's `stop_details` of a refusal as OpenAI's `refusal` text: its explanation, or
    its category."""
    if not details or details.get("type") != "refusal":
        return None
    explanation, category = details.get("explanation"), details.get("category")
    if isinstance(explanation, str) and explanation:
        return explanation
    return f"refused ({category})" if isinstance(category, str) and category else "refused"


def encode_response(resp: ir.Response, display_model: str, created: int = 0) -> dict:
    """IR response → `chat.completion` object. `created` comes from the caller (no clock here)."""
    texts, thinking, calls = [], [], []
    for block in resp.content:
        kind = block.type
        if kind == "text":
            texts.append(block.text)
        elif kind == "thinking":
            if not block.redacted and block.thinking:
                thinking.append(block.thinking)
        elif kind == "tool_use":
            calls.append({"id": block.id, "type": "function", "function": {
                "name": block.name, "arguments": _arguments_json(block.input)}})
        else:
            log.debug("dropped %s block from the response", kind)
    message: dict[str, Any] = {"role": "assistant",
                               "content": "".join(texts) if texts or not calls else None}
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    if calls:
        message["tool_calls"] = calls
    message["refusal"] = refusal_text(resp.stop_details)
    return {
        "id": completion_id(resp.id), "object": "chat.completion", "created": created,
        "model": display_model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason(resp.stop_reason)}],
        "usage": usage_dict(resp.usage),
    }


def error_body(err: GatewayError) -> bytes:
    kind = err.kind
    if kind == "not_found_error" and err.code == "model_not_found":
        kind = "invalid_request_error"
    etype = ERROR_TYPES.get(kind) or (
        "server_error" if err.status >= 500 else "invalid_request_error")
    message = getattr(err, "message", None) or str(err)
    return orjson.dumps({"error": {"message": message, "type": etype, "param": err.param,
                                   "code": err.code}})
