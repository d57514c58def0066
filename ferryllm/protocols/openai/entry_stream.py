"""IR stream events → OpenAI `chat.completion.chunk` SSE bytes, as the real API sends them.

    MessageStart   → delta {"role":"assistant","content":""}
    TextDelta      → delta {"content": …}
    ThinkingDelta  → delta {"reasoning_content": …}
    ToolUseStart   → delta {"tool_calls":[{"index":i,"id","type":"function","function":{"name","arguments":""}}]}
    ToolArgsDelta  → delta {"tool_calls":[{"index":i,"function":{"arguments": …}}]}
    MessageDelta   → empty delta with finish_reason; then, with include_usage, a usage chunk
                     (`"choices":[]`)
    MessageStop    → data: [DONE]

`i` is the tool call's ordinal (0, 1, 2 … counting tool calls only), not the IR block index.
Block starts for text/thinking, signatures and block stops have no OpenAI counterpart.

The encoder trusts the IR stream to be well-formed (see `ferryllm.ir`). Hot path: the chunk
prefix (id, object, created, model) and every delta's framing are bytes built once per stream,
so a text delta is `prefix + orjson.dumps(text) + suffix` — no dict per delta.
"""
from __future__ import annotations

import uuid

import orjson

from ... import ir
from ...errors import GatewayError
from ...sse import COMMENT_KEEPALIVE
from .entry import completion_id, error_body, finish_reason, refusal_text, usage_dict

_CHOICE = b'"choices":[{"index":0,"delta":'
_NOT_DONE = b',"logprobs":null,"finish_reason":null}]}\n\n'
_DELTA_END = b"}" + _NOT_DONE
_ROLE = b'{"role":"assistant","content":""}'
_CONTENT = b'{"content":'
_REASONING = b'{"reasoning_content":'
_TOOL_ARGS_MID = b',"function":{"arguments":'
_TOOL_ARGS_END = b"}}]}" + _NOT_DONE


DONE = b"data: [DONE]\n\n"

class StreamEncoder:
    PING = COMMENT_KEEPALIVE

    __slots__ = ("display_model", "include_usage", "created", "_id", "_head", "_text",
                 "_reasoning", "_tools", "_args")

    def __init__(self, display_model: str, include_usage: bool, created: int = 0,
                 id: str | None = None) -> None:
        self.display_model = display_model
        self.include_usage = include_usage
        self.created = created
        self._id = id
        self._head = b""  # b'data: {"id":…,"model":…,' — built at MessageStart (or here)
        self._text = self._reasoning = b""
        self._tools = 0  # tool calls seen so far (the next ordinal)
        self._args = b""  # the open tool call's argument-delta prefix
        if id is not None:
            self._prepare(id)

    def _prepare(self, resp_id: str) -> None:
        head = b'data: {"id":%b,"object":"chat.completion.chunk","created":%d,"model":%b,' % (
            orjson.dumps(completion_id(resp_id)), self.created, orjson.dumps(self.display_model))
        self._head = head
        self._text = head + _CHOICE + _CONTENT
        self._reasoning = head + _CHOICE + _REASONING

    def encode(self, events: list[ir.StreamEvent]) -> bytes:
        out: list[bytes] = []
        add = out.append
        for ev in events:
            cls = ev.__class__
            if cls is ir.TextDelta:
                add(self._text + orjson.dumps(ev.text) + _DELTA_END)
            elif cls is ir.ToolArgsDelta:
                if ev.partial_json:
                    add(self._args + orjson.dumps(ev.partial_json) + _TOOL_ARGS_END)
            elif cls is ir.ThinkingDelta:
                add(self._reasoning + orjson.dumps(ev.thinking) + _DELTA_END)
            elif cls is ir.ToolUseStart:
                add(self._tool_start(ev))
            elif cls is ir.MessageStart:
                if not self._head:
                    self._prepare(ev.id or uuid.uuid4().hex)
                add(self._head + _CHOICE + _ROLE + _NOT_DONE)
            elif cls is ir.MessageDelta:
                add(self._finish(ev))
            elif cls is ir.MessageStop:
                add(DONE)
            # TextStart, ThinkingStart, SignatureDelta, BlockStop: nothing on the wire
        return b"".join(out)

    def _tool_start(self, ev: ir.ToolUseStart) -> bytes:
        ordinal = b"%d" % self._tools
        self._tools += 1
        self._args = self._head + _CHOICE + b'{"tool_calls":[{"index":' + ordinal + _TOOL_ARGS_MID
        call = {"index": self._tools - 1, "id": ev.id, "type": "function",
                "function": {"name": ev.name, "arguments": ""}}
        return (self._head + _CHOICE + b'{"tool_calls":[' + orjson.dumps(call) + b"]}"
                + _NOT_DONE)

    def _finish(self, ev: ir.MessageDelta) -> bytes:
        reason = orjson.dumps(finish_reason(ev.stop_reason))
        out = (self._head + b'"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":'
               + reason + b"}]}\n\n")
        if ev.stop_details is not None:
            refusal = refusal_text(ev.stop_details)
            if refusal:
                out = (self._head + _CHOICE + b'{"refusal":' + orjson.dumps(refusal) + _DELTA_END
                       + out)
        if self.include_usage:
            out += (self._head + b'"choices":[],"usage":' + orjson.dumps(usage_dict(ev.usage))
                    + b"}\n\n")
        return out

    def error(self, err: GatewayError) -> bytes:
        """The in-band error line sent after the stream started (then the stream ends)."""
        return b"data: " + error_body(err) + b"\n\n"
