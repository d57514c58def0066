"""A Responses provider's SSE → IR stream events. Sans-IO: `feed(bytes)`, `close()`.

Each output item becomes one IR block: `message` → text (its `output_text` and `refusal`
parts), `reasoning` → thinking (summary parts joined by a blank line, or `reasoning_text`; the
`encrypted_content` of the done item as a signature tagged `openai_responses:`),
`function_call` → tool use with its argument deltas, `custom_tool_call` → tool use whose
arguments are `{"input": "<raw text>"}` streamed as JSON. Hosted-tool items
(`web_search_call`, …) are skipped.

Items are tracked by `output_index`: the IR has one block open at a time, so events of an item
that is not the open one wait in that item's state and are replayed when its turn comes (a
provider that interleaves parallel calls still gives well-formed IR). `.done` events are
authoritative: text or arguments the deltas did not carry are added from them.

`response.completed` / `response.incomplete` end the message (stop reason from
`incomplete_details.reason`, else tool use when a call was made); `response.failed` and `error`
raise the provider's error with its code and status; a stream that ends without one of them
raises `UpstreamProtocolError`. As in the other decoders, the events decoded before a raise are
on the exception as `err.events`.
"""
from __future__ import annotations

import logging
from typing import Any

import orjson

from ... import ir
from ...errors import GatewayError, UpstreamProtocolError, from_upstream
from ...sse import SSEParser
from ...toolnames import ToolNames
from .fields import PROTOCOL, usage_from_responses

log = logging.getLogger("ferryllm.translate")

_STATUS = {"rate_limit_exceeded": 429, "insufficient_quota": 429,
           "context_length_exceeded": 400, "invalid_prompt": 400, "invalid_request_error": 400,
           "server_error": 500, "server_is_overloaded": 503, "overloaded": 529,
           "vector_store_timeout": 504}
_KINDS = ("message", "reasoning", "function_call", "custom_tool_call")


def provider_error(err: Any, provider: str) -> GatewayError:
    """A Responses `error` object (in `response.failed`, an `error` event or a JSON body) →
    the client's error, with the provider's code and the status that code stands for."""
    message, code = "", None
    if err.__class__ is dict:
        message = err.get("message") if err.get("message").__class__ is str else ""
        code = err.get("code") if err.get("code").__class__ is str else None
    out = from_upstream(_STATUS.get(code, 502), message or "provider reported an error",
                        provider=provider)
    if code:
        out.code = code
    return out


def _summary_text(item: dict) -> str:
    parts = item.get("summary") or []
    texts = [p.get("text") or "" for p in parts if p.__class__ is dict]
    if not any(texts):
        texts = [p.get("text") or "" for p in item.get("content") or []
                 if p.__class__ is dict]
    return "\n\n".join(t for t in texts if t)


def _message_text(item: dict) -> str:
    out = []
    for part in item.get("content") or []:
        if part.__class__ is dict:
            text = part.get("text") if part.get("type") != "refusal" else part.get("refusal")
            if text.__class__ is str:
                out.append(text)
    return "".join(out)


def _call_name(item: dict, names: ToolNames) -> str:
    name = names.to_client(item["name"])
    ns = item.get("namespace")
    return f"{ns}__{name}" if ns.__class__ is str and ns else name


def item_blocks(item: dict, names: ToolNames) -> list[ir.Block]:
    """One complete output item (a JSON body's `output[i]`) → IR blocks."""
    kind = item.get("type")
    if kind == "message":
        text = _message_text(item)
        return [ir.TextBlock(text)] if text else []
    if kind == "reasoning":
        secret = item.get("encrypted_content")
        sig = ir.tag_signature(PROTOCOL, secret) if secret.__class__ is str and secret else None
        text = _summary_text(item)
        return [ir.ThinkingBlock(text, signature=sig)] if text or sig else []
    if kind == "function_call":
        raw = item.get("arguments") or ""
        try:
            args = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            args = None
        if args.__class__ is not dict:
            args = {"_raw": raw}
        return [ir.ToolUseBlock(item["call_id"], _call_name(item, names), args)]
    if kind == "custom_tool_call":
        value = item.get("input")
        return [ir.ToolUseBlock(item["call_id"], _call_name(item, names),
                                {"input": value if value.__class__ is str else ""})]
    log.debug("skipped an output item of type %s", str(kind)[:40])
    return []


class _Item:
    """One output item's state: its kind, what has been streamed, what waits."""

    __slots__ = ("kind", "call_id", "name", "sent", "pending", "done", "part", "ir", "ended")

    def __init__(self, kind: str, call_id: str = "", name: str = "") -> None:
        self.kind, self.call_id, self.name = kind, call_id, name
        self.sent: list[str] = []  # text / arguments given to the IR (or waiting)
        self.pending: list[str] = []  # deltas waiting for this item's turn
        self.done: dict | None = None  # the complete item, from output_item.done
        self.part = -1  # the reasoning summary part being streamed
        self.ir = -1  # its IR block index once opened
        self.ended = False


class StreamDecoder:
    __slots__ = ("_parser", "_provider", "_names", "_req", "_items", "_order", "_current",
                 "_next", "_started", "_finished", "_usage", "_calls")

    def __init__(self, req: ir.Request, provider: str = "openai_responses") -> None:
        self._parser = SSEParser()
        self._provider = provider
        self._req = req
        self._names: ToolNames | None = None
        self._items: dict[int, _Item] = {}
        self._order: list[int] = []  # output indices in the order they were added
        self._current = 0  # position in _order of the item that may stream
        self._next = 0  # the next IR block index
        self._started = self._finished = False
        self._usage = ir.Usage()
        self._calls = False

    @property
    def usage(self) -> ir.Usage:
        return self._usage

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        try:
            for data in self._frames(chunk):
                self._event(data, out)
        except GatewayError as err:
            err.events = out
            raise
        return out

    def _frames(self, chunk: bytes) -> list[bytes]:
        """The data of the whole frames in `chunk`. OpenAI's frames are `event: <type>` +
        `data: <one line>` + a blank line: when nothing is pending and the read has `\n` line
        ends, they are cut at the blank lines and each one's data taken directly; a frame of any
        other form (a comment, several data lines) and the unfinished end of the read go through
        the generic parser, so the result never depends on how the bytes were cut."""
        parser = self._parser
        end = chunk.rfind(b"\n\n")
        if end < 0 or 13 in chunk or not parser.idle() or chunk[:1] == b"\xef":
            return [ev.data for ev in parser.feed(chunk)]
        frames = chunk[:end].split(b"\n\n")
        out: list[bytes] = []
        for i, frame in enumerate(frames):
            if frame[:7] == b"event: ":
                at = frame.find(b"\ndata: ")
                if at > 0 and 10 not in frame[at + 7:] and 10 not in frame[7:at]:
                    out.append(frame[at + 7:])
                    continue
            elif frame[:6] == b"data: " and 10 not in frame:
                out.append(frame[6:])
                continue
            elif not frame:
                continue
            rest = b"\n\n".join(frames[i:]) + chunk[end:]
            out += [ev.data for ev in parser.feed(rest)]
            return out
        rest = chunk[end + 2:]
        if rest:
            out += [ev.data for ev in parser.feed(rest)]
        return out

    def close(self) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        try:
            for event in self._parser.close():
                self._event(event.data, out)
            if not self._finished:
                raise UpstreamProtocolError(
                    f"provider '{self._provider}' stream ended before response.completed")
        except GatewayError as err:
            err.events = out
            raise
        return out

    # ------------------------------------------------------------ events

    def _event(self, data: bytes, out: list) -> None:
        if self._finished:
            return
        try:
            ev = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(
                f"provider '{self._provider}' sent malformed JSON in its stream") from None
        if ev.__class__ is not dict:
            raise UpstreamProtocolError(f"provider '{self._provider}' sent a non-object event")
        kind = ev.get("type")
        try:
            self._dispatch(kind, ev, out)
        except (KeyError, TypeError, AttributeError, ValueError):
            raise UpstreamProtocolError(
                f"provider '{self._provider}' sent a malformed {str(kind)[:60]} event") from None

    def _dispatch(self, kind: Any, ev: dict, out: list) -> None:
        if kind in ("response.output_text.delta", "response.refusal.delta",
                    "response.function_call_arguments.delta",
                    "response.custom_tool_call_input.delta"):
            self._delta(ev["output_index"], ev["delta"], out)
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            item = self._items.get(ev["output_index"])
            if item is not None:
                part = ev.get("summary_index", ev.get("content_index", 0))
                if item.part >= 0 and part != item.part:
                    self._delta(ev["output_index"], "\n\n", out)
                item.part = part
                self._delta(ev["output_index"], ev["delta"], out)
        elif kind == "response.output_item.added":
            self._start(ev, out)
            self._added(ev["output_index"], ev["item"], out)
        elif kind == "response.output_item.done":
            self._start(ev, out)
            index = ev["output_index"]
            if index not in self._items:
                self._added(index, ev["item"], out)
            self._items[index].done = ev["item"]
            self._advance(out)
        elif kind in ("response.created", "response.in_progress"):
            self._start(ev, out)
        elif kind in ("response.completed", "response.incomplete"):
            self._start(ev, out)
            self._complete(ev["response"], out)
        elif kind == "response.failed":
            response = ev.get("response")
            raise provider_error(response.get("error") if response.__class__ is dict else None,
                                 self._provider)
        elif kind == "error":
            raise provider_error(ev.get("error") if ev.get("error").__class__ is dict else ev,
                                 self._provider)
        # response.content_part.*, *.done text events, summary parts, unknown events: nothing
        # to add (the output_item.done carries the whole item)

    def _start(self, ev: dict, out: list) -> None:
        if self._started:
            return
        self._started = True
        response = ev.get("response") if ev.get("response").__class__ is dict else {}
        model = response.get("model")
        out.append(ir.MessageStart(
            id=response.get("id") or "resp_unknown",
            model=model if model.__class__ is str and model else self._req.model,
            usage=ir.Usage()))

    def _added(self, index: int, item: dict, out: list) -> None:
        kind = item.get("type")
        if kind not in _KINDS:
            kind = "skip"
            log.debug("skipped an output item of type %s", str(item.get("type"))[:40])
        state = _Item(kind)
        if kind in ("function_call", "custom_tool_call"):
            if self._names is None:
                self._names = ToolNames.for_request(self._req)
            state.call_id, state.name = item["call_id"], _call_name(item, self._names)
            self._calls = True
        self._items[index] = state
        self._order.append(index)
        self._advance(out)

    def _delta(self, index: int, text: str, out: list) -> None:
        item = self._items.get(index)
        if item is None or not text:
            return
        if item.ir >= 0 and not item.ended:
            self._emit(item, text, out)
        else:
            item.pending.append(text)

    # ------------------------------------------------------------ IR blocks

    def _emit(self, item: _Item, text: str, out: list) -> None:
        kind = item.kind
        if kind == "custom_tool_call":
            head = '{"input":"' if not item.sent else ""
            item.sent.append(text)
            out.append(ir.ToolArgsDelta(item.ir, head + orjson.dumps(text).decode()[1:-1]))
            return
        item.sent.append(text)
        if kind == "message":
            out.append(ir.TextDelta(item.ir, text))
        elif kind == "reasoning":
            out.append(ir.ThinkingDelta(item.ir, text))
        elif kind == "function_call":
            out.append(ir.ToolArgsDelta(item.ir, text))

    def _advance(self, out: list) -> None:
        """Open the item whose turn it is, replay what waited, close it when done, go on."""
        while self._current < len(self._order):
            item = self._items[self._order[self._current]]
            if item.ir < 0 and item.kind != "skip":
                item.ir = self._next
                self._next += 1
                kind = item.kind
                if kind == "message":
                    out.append(ir.TextStart(item.ir))
                elif kind == "reasoning":
                    out.append(ir.ThinkingStart(item.ir))
                else:
                    out.append(ir.ToolUseStart(item.ir, item.call_id, item.name))
                pending, item.pending = item.pending, []
                for text in pending:
                    self._emit(item, text, out)
            if item.done is None:
                return
            self._close(item, out)
            self._current += 1

    def _close(self, item: _Item, out: list) -> None:
        """The item is done: what the deltas missed, the signature, BlockStop."""
        item.ended = True
        if item.kind == "skip":
            return
        done, kind = item.done, item.kind
        sent = "".join(item.sent)
        if kind == "message":
            final = _message_text(done)
        elif kind == "reasoning":
            final = _summary_text(done)
        elif kind == "function_call":
            final = done.get("arguments") or ""
        else:
            final = done.get("input") if done.get("input").__class__ is str else sent
        if final != sent:
            if final.startswith(sent):
                self._emit(item, final[len(sent):], out)
            else:
                log.debug("a .done item differs from its deltas; the deltas stand")
        if kind == "custom_tool_call":
            out.append(ir.ToolArgsDelta(item.ir, '"}' if item.sent else '{"input":""}'))
        elif kind == "reasoning":
            secret = done.get("encrypted_content")
            if secret.__class__ is str and secret:
                out.append(ir.SignatureDelta(item.ir, ir.tag_signature(PROTOCOL, secret)))
        out.append(ir.BlockStop(item.ir))

    def _complete(self, response: dict, out: list) -> None:
        for index in self._order[self._current:]:  # items the provider never marked done
            item = self._items[index]
            if item.done is None:
                item.done = {}
        self._advance(out)
        self._usage = usage_from_responses(response.get("usage"))
        details = response.get("incomplete_details")
        reason = details.get("reason") if details.__class__ is dict else None
        if reason == "max_output_tokens":
            stop = ir.MAX_TOKENS
        elif reason == "content_filter":
            stop = ir.REFUSAL
        else:
            stop = ir.TOOL_USE if self._calls else ir.END_TURN
        out.append(ir.MessageDelta(stop, None, self._usage))
        out.append(ir.MessageStop())
        self._finished = True
