"""IR stream events → the Responses API's SSE grammar, as OpenAI sends it.

    event: <type>\\ndata: {"type": <type>, "sequence_number": n, …}\\n\\n   (n = 0, 1, 2 …)

    MessageStart   → response.created, response.in_progress (status in_progress, output [])
    TextStart      → output_item.added (message), content_part.added (output_text)
    TextDelta      → output_text.delta
    ThinkingStart  → output_item.added (reasoning, summary [])
    ThinkingDelta  → (reasoning_summary_part.added at the first) reasoning_summary_text.delta
    ToolUseStart   → output_item.added (function_call, or custom_tool_call for a freeform tool)
    ToolArgsDelta  → function_call_arguments.delta | custom_tool_call_input.delta (raw text)
    BlockStop      → the item's .done events with its whole text, then output_item.done with
                     the complete item
    MessageStop    → response.completed (or response.incomplete for max_tokens / refusal) whose
                     `response` is the full non-streaming body with usage

One IR block is one output item, so items come in order and never interleave. An error after
the first byte is `response.failed` with an `error.code` Codex classifies (`fields.error_code`),
preceded by response.created when nothing was sent yet. Hot path: every delta frame is a
per-item prefix + the sequence number + the JSON-encoded text + a constant suffix.
"""
from __future__ import annotations

import orjson

from ... import ir
from ...errors import GatewayError
from ...sse import COMMENT_KEEPALIVE
from .fields import error_code, secret_for
from .freeform import InputStream
from .output import (call_item, custom_input, finish_status, item_id,
                     reasoning_item, ResponseObject, response_id)
from .tools import ClientTool

_DATA = b'\ndata: {"type":"'
_SEQ = b'","sequence_number":'
_LOGPROBS_END = b',"logprobs":[]}\n\n'
_END = b"}\n\n"
_TEXT, _THINKING, _CALL, _CUSTOM = 1, 2, 3, 4
_EMPTY_SUMMARY = {"type": "summary_text", "text": ""}


def _head(kind: bytes) -> bytes:
    return b"event: " + kind + _DATA + kind + _SEQ


# every frame's constant start, built once
_HEADS = {k: _head(k.encode()) for k in (
    "response.created", "response.in_progress", "response.completed", "response.incomplete",
    "response.failed", "response.output_item.added", "response.output_item.done",
    "response.content_part.added", "response.content_part.done", "response.output_text.delta",
    "response.output_text.done", "response.reasoning_summary_part.added",
    "response.reasoning_summary_part.done", "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done", "response.function_call_arguments.delta",
    "response.function_call_arguments.done", "response.custom_tool_call_input.delta",
    "response.custom_tool_call_input.done")}
_TEXT_DONE = b',"content_index":0,"text":'
_PART_DONE = b',"content_index":0,"part":{"type":"output_text","text":'
_PART_END = b',"annotations":[],"logprobs":[]}}\n\n'
_MESSAGE_END = b',"annotations":[],"logprobs":[]}]}'


class StreamEncoder:
    PING = COMMENT_KEEPALIVE

    __slots__ = ("display_model", "ctx", "created", "seq", "_id", "_echo", "_items", "_kind",
                 "_iid", "_index", "_pieces", "_sig", "_redacted", "_tool", "_call", "_input",
                 "_part", "_tmpl", "_ref", "_stop", "_usage", "_obj")

    def __init__(self, display_model: str, ctx=None, created: int = 0,
                 id: str | None = None) -> None:
        self.display_model, self.ctx, self.created = display_model, ctx, created
        self.seq = 0
        self._id = response_id(id) if id else ""
        self._echo = ctx.echo if ctx is not None else b""
        self._items: list[bytes] = []  # complete output items, JSON
        self._kind = 0  # the open item's kind (0: none)
        self._iid, self._index = "", 0
        self._pieces: list[str] = []
        self._sig: list[str] = []
        self._redacted: str | None = None
        self._tool: ClientTool | None = None
        self._call = ""
        self._input: InputStream | None = None
        self._part = False  # a reasoning summary part is open
        self._tmpl = b""  # the open item's delta frame: % (sequence number, JSON text)
        self._ref = b""  # `,"item_id":…,"output_index":n` of the open item
        self._stop: str | None = None
        self._usage = ir.Usage()
        self._obj: ResponseObject | None = None

    # ------------------------------------------------------------ frames

    def _frame(self, kind: str, fields: dict) -> bytes:
        n = self.seq
        self.seq = n + 1
        return b"%b%d,%b\n\n" % (_HEADS[kind], n, orjson.dumps(fields)[1:])

    def _delta(self, text: str) -> bytes:
        n = self.seq
        self.seq = n + 1
        return self._tmpl % (n, orjson.dumps(text))

    def _set_delta(self, kind: str, extra: bytes = b"", end: bytes = _END) -> None:
        self._ref = (b',"item_id":' + orjson.dumps(self._iid) + b',"output_index":%d'
                     % self._index)
        self._tmpl = (_HEADS[kind].replace(b"%", b"%%") + b"%d" + self._ref + extra
                      + b',"delta":%b' + end)

    def _response(self, status: str, output: bytes, usage: ir.Usage | None, **kw) -> bytes:
        return self._obj.render(status, output, usage, **kw)

    def _wrap(self, kind: str, response: bytes) -> bytes:
        n = self.seq
        self.seq = n + 1
        return b'%b%d,"response":%b}\n\n' % (_HEADS[kind], n, response)

    def _start(self, resp_id: str | None) -> bytes:
        if not self._id:
            self._id = response_id(resp_id)
        self._obj = ResponseObject(self._id, self.created, self.display_model, self._echo)
        body = self._response("in_progress", b"[]", None)
        n = self.seq
        self.seq = n + 2
        return b'%b%d,"response":%b}\n\n%b%d,"response":%b}\n\n' % (
            _HEADS["response.created"], n, body, _HEADS["response.in_progress"], n + 1, body)

    # ------------------------------------------------------------ events

    def encode(self, events: list[ir.StreamEvent]) -> bytes:
        out: list[bytes] = []
        add = out.append
        for ev in events:
            cls = ev.__class__
            if cls is ir.TextDelta:
                text = ev.text
                self._pieces.append(text)
                n = self.seq
                self.seq = n + 1
                add(self._tmpl % (n, orjson.dumps(text)))
            elif cls is ir.ThinkingDelta:
                if not self._part:
                    add(self._open_summary())
                self._pieces.append(ev.thinking)
                add(self._delta(ev.thinking))
            elif cls is ir.ToolArgsDelta:
                if ev.partial_json:
                    add(self._args(ev.partial_json))
            elif cls is ir.SignatureDelta:
                self._sig.append(ev.signature)
            elif cls is ir.BlockStop:
                add(self._close())
            elif cls is ir.TextStart:
                add(self._open_text())
            elif cls is ir.ToolUseStart:
                add(self._open_call(ev))
            elif cls is ir.ThinkingStart:
                add(self._open_thinking(ev))
            elif cls is ir.MessageStart:
                add(self._start(ev.id))
            elif cls is ir.MessageDelta:
                self._stop, self._usage = ev.stop_reason, ev.usage
            elif cls is ir.MessageStop:
                add(self._finish())
        return b"".join(out)

    def _open(self, kind: int, prefix: str) -> None:
        self._kind, self._index = kind, len(self._items)
        self._iid = item_id(prefix, self._id, self._index)
        self._pieces = []

    def _added(self, item: dict) -> bytes:
        return self._frame("response.output_item.added",
                           {"output_index": self._index, "item": item})

    def _open_text(self) -> bytes:
        self._open(_TEXT, "msg")
        self._set_delta("response.output_text.delta", b',"content_index":0', _LOGPROBS_END)
        n = self.seq
        self.seq = n + 2
        return b"".join((
            _HEADS["response.output_item.added"], b'%d,"output_index":%d,"item":{"id":' % (
                n, self._index), orjson.dumps(self._iid),
            b',"type":"message","status":"in_progress","role":"assistant","content":[]}}\n\n',
            _HEADS["response.content_part.added"], b"%d" % (n + 1), self._ref,
            b',"content_index":0,"part":{"type":"output_text","text":"","annotations":[],'
            b'"logprobs":[]}}\n\n'))

    def _open_thinking(self, ev: ir.ThinkingStart) -> bytes:
        self._open(_THINKING, "rs")
        self._sig, self._redacted, self._part = [], ev.redacted_data, False
        self._set_delta("response.reasoning_summary_text.delta", b',"summary_index":0')
        return self._added({"id": self._iid, "type": "reasoning", "summary": []})

    def _open_summary(self) -> bytes:
        self._part = True
        return self._frame("response.reasoning_summary_part.added", {
            "item_id": self._iid, "output_index": self._index, "summary_index": 0,
            "part": _EMPTY_SUMMARY})

    def _open_call(self, ev: ir.ToolUseStart) -> bytes:
        tool = self.ctx.tools.lookup(ev.name) if self.ctx is not None else ClientTool(ev.name)
        self._tool, self._call = tool, ev.id
        if tool.freeform:
            self._open(_CUSTOM, "ctc")
            self._input = InputStream()
            self._set_delta("response.custom_tool_call_input.delta")
        else:
            self._open(_CALL, "fc")
            self._set_delta("response.function_call_arguments.delta")
        return self._added(call_item(self._iid, ev.id, tool, "", "in_progress"))

    def _args(self, piece: str) -> bytes:
        self._pieces.append(piece)
        if self._kind == _CALL:
            return self._delta(piece)
        text = self._input.feed(piece)
        return self._delta(text) if text else b""

    # ------------------------------------------------------------ closing items

    def _done(self, item: dict | bytes) -> bytes:
        raw = item if item.__class__ is bytes else orjson.dumps(item)
        self._items.append(raw)
        self._kind = 0
        n = self.seq
        self.seq = n + 1
        return b'%b%d,"output_index":%d,"item":%b}\n\n' % (
            _HEADS["response.output_item.done"], n, self._index, raw)

    def _close(self) -> bytes:
        kind, iid, index = self._kind, self._iid, self._index
        text = "".join(self._pieces)
        if kind == _TEXT:  # the text is encoded once for its three done events
            t = orjson.dumps(text)
            n = self.seq
            self.seq = n + 2
            item = (b'{"id":%b,"type":"message","status":"completed","role":"assistant",'
                    b'"content":[{"type":"output_text","text":%b%b' % (
                        orjson.dumps(iid), t, _MESSAGE_END))
            return b"".join((
                _HEADS["response.output_text.done"], b"%d" % n, self._ref, _TEXT_DONE, t,
                _LOGPROBS_END, _HEADS["response.content_part.done"], b"%d" % (n + 1),
                self._ref, _PART_DONE, t, _PART_END, self._done(item)))
        if kind == _THINKING:
            out = b""
            if self._part:
                part = {"type": "summary_text", "text": text}
                out = (self._frame("response.reasoning_summary_text.done", {
                           "item_id": iid, "output_index": index, "summary_index": 0,
                           "text": text})
                       + self._frame("response.reasoning_summary_part.done", {
                           "item_id": iid, "output_index": index, "summary_index": 0,
                           "part": part}))
            secret = None
            if self.ctx is not None and self.ctx.encrypted:
                redacted = self._redacted is not None
                secret = secret_for(ir.ThinkingBlock(
                    text, "".join(self._sig) or None, redacted, self._redacted))
            return out + self._done(reasoning_item(iid, text, secret))
        if kind == _CALL:
            args = text or "{}"
            out = b"" if text else self._delta(args)  # the deltas always sum to the arguments
            return (out + self._frame("response.function_call_arguments.done", {
                        "item_id": iid, "output_index": index, "name": self._tool.name,
                        "arguments": args})
                    + self._done(call_item(iid, self._call, self._tool, args)))
        if kind == _CUSTOM:
            value = custom_input(_parse(text))
            rest = self._input.rest(value)
            out = self._delta(rest) if rest else b""
            return (out + self._frame("response.custom_tool_call_input.done", {
                        "item_id": iid, "output_index": index, "input": value})
                    + self._done(call_item(iid, self._call, self._tool, value)))
        return b""

    def _finish(self) -> bytes:
        status, reason = finish_status(self._stop)
        body = self._response(status, b"[" + b",".join(self._items) + b"]", self._usage,
                              incomplete=reason)
        return self._wrap("response.completed" if status == "completed"
                          else "response.incomplete", body)

    def error(self, err: GatewayError) -> bytes:
        """`response.failed` (after response.created when nothing was sent yet)."""
        out = self._start(None) if self.seq == 0 else b""
        message = getattr(err, "message", None) or str(err)
        body = self._response("failed", b"[" + b",".join(self._items) + b"]", None,
                              error={"code": error_code(err), "message": message})
        return out + self._wrap("response.failed", body)


def _parse(args: str) -> dict:
    if not args:
        return {}
    try:
        value = orjson.loads(args)
    except orjson.JSONDecodeError:
        return {"_raw": args}
    return value if value.__class__ is dict else {"_raw": args}
