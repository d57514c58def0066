"""OpenAI Responses entry: a client's `POST /v1/responses` body → IR (sans-IO), and its error
body.

Stateless: `store` is echoed and nothing is stored, so `previous_response_id` is answered with
OpenAI's own 400 (`code: previous_response_not_found`), and `conversation`, `background: true`
and stored `prompt` templates with a plain 400. Every field the gateway reads is validated; a
bad one is a 400 naming it (`input[3].call_id`). Fields the IR does not model stay in
`Request.native` for a Responses provider (pass-through) and are echoed in the response object.

`Context` (kept in `Request.entry_context`) is what the encoders need to answer: the client's
names for the tools the provider calls, whether `include` asks for
`reasoning.encrypted_content`, and the request's settings echoed in every response object.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import orjson

from ... import ir
from ...errors import GatewayError, InvalidRequest
from ...jsonfields import array, boolean, fail, integer, number, obj, string
from .fields import error_code
from .items import decode_input
from .tools import ClientTools, decode_tool_choice, decode_tools

ENCRYPTED = "reasoning.encrypted_content"
EFFORTS = ("minimal", "low", "medium", "high", "xhigh")
MAX_ECHO_ID = 128
# request settings a response object echoes (absent ones as OpenAI's defaults)
ECHO_DEFAULTS = (("instructions", None), ("max_output_tokens", None),
                 ("max_tool_calls", None), ("parallel_tool_calls", True),
                 ("previous_response_id", None), ("prompt_cache_key", None),
                 ("reasoning", {"effort": None, "summary": None}), ("service_tier", "auto"),
                 ("store", True), ("temperature", 1.0), ("text", {"format": {"type": "text"}}),
                 ("tool_choice", "auto"), ("tools", []), ("top_p", 1.0),
                 ("truncation", "disabled"), ("user", None), ("metadata", {}))
ERROR_TYPES = {
    "invalid_request_error": "invalid_request_error", "authentication_error":
    "authentication_error", "permission_error": "permission_error", "not_found_error":
    "not_found_error", "request_too_large": "invalid_request_error", "rate_limit_error":
    "rate_limit_error", "overloaded_error": "server_error", "api_error": "server_error",
}


@dataclass(slots=True)
class Context:
    tools: ClientTools = field(default_factory=ClientTools)
    encrypted: bool = False
    echo: bytes = b""  # `"key":value,…` of the echoed settings, serialized once


_ECHO = dict(ECHO_DEFAULTS)


def _echo(body: dict) -> bytes:
    settings = _ECHO.copy()  # in OpenAI's order; the body's own values over the defaults
    for key, value in body.items():
        if value is not None and key in settings:
            settings[key] = value
    return orjson.dumps(settings)[1:-1]


def _reject_state(body: dict) -> None:
    prev = body.get("previous_response_id")
    if prev is not None:
        shown = prev[:MAX_ECHO_ID] if isinstance(prev, str) else "?"
        raise InvalidRequest(
            f"Previous response with id '{shown}' not found. ferryllm stores no responses: "
            "send the whole conversation in `input` (with `store: false`).",
            param="previous_response_id", code="previous_response_not_found")
    if body.get("conversation") is not None:
        raise fail("conversation", "stored conversations are not supported (ferryllm is "
                   "stateless); send the whole conversation in `input`")
    if body.get("background") is True:
        raise fail("background", "background responses are not supported (ferryllm is "
                   "stateless); use stream: true for long responses")
    if body.get("prompt") is not None:
        raise fail("prompt", "stored prompt templates are not supported; send `instructions`")


def _reasoning(raw: Any) -> ir.Reasoning | None:
    if raw is None:
        return None
    raw = obj(raw, "reasoning")
    effort = string(raw.get("effort"), "reasoning.effort")
    string(raw.get("summary"), "reasoning.summary")
    if effort is None:
        return None
    if effort == "none":
        return ir.Reasoning(enabled=False)
    if effort not in EFFORTS:
        raise fail("reasoning.effort", "must be one of none, minimal, low, medium, high, xhigh")
    return ir.Reasoning(effort=effort)


def _text_format(raw: Any) -> dict | None:
    if raw is None:
        return None
    fmt = obj(raw, "text").get("format")
    if fmt is None:
        return None
    kind = obj(fmt, "text.format").get("type")
    if kind == "json_schema":
        return {"type": "json_schema",
                "name": string(fmt.get("name"), "text.format.name") or "response",
                "schema": obj(fmt.get("schema"), "text.format.schema"),
                "strict": boolean(fmt.get("strict"), "text.format.strict")}
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "text":
        raise fail("text.format.type", "must be text, json_schema or json_object")
    return None


def decode_request(body: dict, headers: Mapping[str, str] | None = None) -> ir.Request:
    """A Responses request body → IR. Raises `InvalidRequest` naming the field."""
    body = obj(body, "body")
    model = string(body.get("model"), "model", required=True)
    if not model:
        raise fail("model", "must not be empty")
    _reject_state(body)
    ctx = Context()
    system: list[ir.TextBlock] = []
    instructions = string(body.get("instructions"), "instructions")
    if instructions:
        system.append(ir.TextBlock(instructions))
    tools: list[ir.Tool] = []
    if body.get("tools") is not None:
        decode_tools(body["tools"], "tools", tools, ctx.tools)
    if body.get("input") is None:
        raise fail("input", "is required")
    messages = decode_input(body["input"], system, tools, ctx.tools)
    if not messages:
        raise fail("input", "must contain at least one message or tool output")
    choice, tools = decode_tool_choice(body.get("tool_choice"), tools)
    parallel = boolean(body.get("parallel_tool_calls"), "parallel_tool_calls")
    if parallel is False:
        choice = choice or ir.ToolChoice("auto")
        choice.disable_parallel = True
    include = body.get("include")
    if include is not None:
        include = array(include, "include")
        for i, value in enumerate(include):
            string(value, f"include[{i}]", required=True)
        ctx.encrypted = ENCRYPTED in include
    for key in ("store", "stream"):
        boolean(body.get(key), key)
    if body.get("metadata") is not None:
        obj(body["metadata"], "metadata")
    user = string(body.get("user"), "user") or string(body.get("safety_identifier"),
                                                      "safety_identifier")
    ctx.echo = _echo(body)
    return ir.Request(
        model=model, messages=messages, system=system, tools=tools, tool_choice=choice,
        max_tokens=integer(body.get("max_output_tokens"), "max_output_tokens", minimum=1),
        temperature=number(body.get("temperature"), "temperature"),
        top_p=number(body.get("top_p"), "top_p"), stream=bool(body.get("stream")), user=user,
        reasoning=_reasoning(body.get("reasoning")), parallel_tool_calls=parallel,
        prompt_cache_key=string(body.get("prompt_cache_key"), "prompt_cache_key"),
        response_format=_text_format(body.get("text")),
        native_protocol="openai_responses", native=body, entry_context=ctx)


def error_body(err: GatewayError) -> bytes:
    """OpenAI's error body; `code` is one Codex classifies (`fields.error_code`)."""
    kind = err.kind
    if kind == "not_found_error" and err.code == "model_not_found":
        kind = "invalid_request_error"
    etype = ERROR_TYPES.get(kind) or (
        "server_error" if err.status >= 500 else "invalid_request_error")
    code = err.code if err.code in ("previous_response_not_found", "model_not_found") \
        else error_code(err)
    message = getattr(err, "message", None) or str(err)
    return orjson.dumps({"error": {"message": message, "type": etype, "param": err.param,
                                   "code": code}})
