"""IR answers → Responses output items and the response object; shared by the JSON encoder and
the stream encoder (whose `.done` events and `response.completed` carry the same items).

Each IR block is one output item, in order: text → `message` (one `output_text` part), thinking
→ `reasoning` (its text as the one `summary_text`, always with a `summary` list; the signature in
`encrypted_content` when the request's `include` asks for it), tool use → `function_call`, or
`custom_tool_call` with the raw text for a freeform tool; namespaced tools come back with `name`
and `namespace` apart. `call_id` is the provider's tool call id, never rewritten. A `max_tokens`
stop makes the response `incomplete` (`max_output_tokens`), a refusal `incomplete`
(`content_filter`).
"""
from __future__ import annotations

import re
import uuid

import orjson

from ... import ir
from ...jsonfields import arguments_json
from .fields import secret_for, usage_json
from .tools import ClientTool

_NOT_ID = re.compile(r"[^A-Za-z0-9]")
INCOMPLETE = {ir.MAX_TOKENS: "max_output_tokens", ir.REFUSAL: "content_filter",
              ir.CONTEXT_WINDOW_EXCEEDED: "max_output_tokens"}


def response_id(ir_id: str | None) -> str:
    if ir_id and ir_id.startswith("resp_"):
        return ir_id
    core = (ir_id or "").replace("-", "").replace("_", "")
    if not (core.isascii() and core.isalnum()):
        core = _NOT_ID.sub("", core)
    return "resp_" + (core[:48] or uuid.uuid4().hex)


def item_id(prefix: str, resp_id: str, index: int) -> str:
    return f"{prefix}_{resp_id[5:]}_{index}"


def custom_input(args: dict) -> str:
    """The raw text of a freeform call from the function arguments a provider produced."""
    value = args.get("input")
    if value.__class__ is str:
        return value
    if len(args) == 1:
        (value,) = args.values()
        if value.__class__ is str:
            return value
    return orjson.dumps(args).decode()


def message_item(iid: str, text: str, status: str = "completed") -> dict:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {"id": iid, "type": "message", "status": status, "role": "assistant",
            "content": content}


def reasoning_item(iid: str, text: str, secret: str | None) -> dict:
    item = {"id": iid, "type": "reasoning",
            "summary": [{"type": "summary_text", "text": text}] if text else []}
    if secret:
        item["encrypted_content"] = secret
    return item


def call_item(iid: str, call_id: str, tool: ClientTool, payload: str,
              status: str = "completed") -> dict:
    """A `function_call` (payload: the arguments JSON) or a `custom_tool_call` (payload: the
    raw input), with its namespace apart."""
    if tool.freeform:
        item = {"id": iid, "type": "custom_tool_call", "status": status, "call_id": call_id,
                "name": tool.name, "input": payload}
    else:
        item = {"id": iid, "type": "function_call", "status": status, "arguments": payload,
                "call_id": call_id, "name": tool.name}
    if tool.namespace:
        item["namespace"] = tool.namespace
    return item


def output_items(resp: ir.Response, resp_id: str, ctx) -> list[dict]:
    out: list[dict] = []
    for block in resp.content:
        n = len(out)
        kind = block.type
        if kind == "text":
            out.append(message_item(item_id("msg", resp_id, n), block.text))
        elif kind == "thinking":
            secret = secret_for(block) if ctx is not None and ctx.encrypted else None
            text = "" if block.redacted else block.thinking
            if text or secret:
                out.append(reasoning_item(item_id("rs", resp_id, n), text, secret))
        elif kind == "tool_use":
            tool = ctx.tools.lookup(block.name) if ctx is not None else ClientTool(block.name)
            if tool.freeform:
                out.append(call_item(item_id("ctc", resp_id, n), block.id, tool,
                                     custom_input(block.input)))
            else:
                out.append(call_item(item_id("fc", resp_id, n), block.id, tool,
                                     arguments_json(block.input)))
    return out


class ResponseObject:
    """The response object of one answer, from parts: the constant ones serialized once
    (`echo` and `output` arrive as JSON), so a stream's created, in_progress and last events
    cost a join each."""

    __slots__ = ("head", "model")

    def __init__(self, resp_id: str, created: int, model: str, echo: bytes) -> None:
        self.head = b'{"id":%b,"object":"response","created_at":%d,"status":"' % (
            orjson.dumps(resp_id), created)
        self.model = b',"model":%b,%b,"output":' % (orjson.dumps(model), echo or b'"tools":[]')

    def render(self, status: str, output: bytes, usage: ir.Usage | None, *,
               error: dict | None = None, incomplete: str | None = None) -> bytes:
        return b"".join((
            self.head, status.encode(), b'","background":false,"error":',
            orjson.dumps(error) if error is not None else b"null", b',"incomplete_details":',
            b'{"reason":%b}' % orjson.dumps(incomplete) if incomplete else b"null",
            self.model, output, b',"usage":',
            usage_json(usage) if usage is not None else b"null", b"}"))


def finish_status(stop_reason: str | None) -> tuple[str, str | None]:
    reason = INCOMPLETE.get(stop_reason)
    return ("incomplete", reason) if reason else ("completed", None)


def encode_response(resp: ir.Response, display_model: str, req: ir.Request | None = None,
                    created: int = 0) -> bytes:
    """IR response → the Responses JSON body (bytes)."""
    ctx = req.entry_context if req is not None else None
    rid = response_id(resp.id)
    status, reason = finish_status(resp.stop_reason)
    output = orjson.dumps(output_items(resp, rid, ctx))
    obj = ResponseObject(rid, created, display_model, ctx.echo if ctx is not None else b"")
    return obj.render(status, output, resp.usage, incomplete=reason)
