"""OpenAI-compatible Chat Completions SSE → IR stream events (sans-IO). The Claude Code path.

`StreamDecoder.feed(bytes)` / `.close()` turn a provider's byte stream into a well-formed IR
stream (see `ferryllm.ir`): `MessageStart` on the first chunk; blocks with consecutive indices,
one open at a time; one `MessageDelta` with the real stop reason and the full usage, sent at
`[DONE]` (or at the end of a stream that had a `finish_reason`), because the usage chunk
(`"choices": []`) comes after the `finish_reason` chunk; then `MessageStop`.

Segments. Everything the model produces is a segment, in order of first appearance: a text run
(`delta.content`), a reasoning run (`delta.reasoning_content` / `delta.reasoning` / a leading
`<think>…</think>` in content), or one tool call. New text goes to the latest segment if it is
text, else it starts a new one (so text after a tool call is a new block). The *head* is the open
IR block; data for the head streams out live, data for any later segment is buffered on it. The
head moves on (BlockStop, then Start of the next segment plus its buffer as one delta) once it is
finished:
- a text or reasoning head is finished as soon as any later segment exists;
- a tool-call head is finished when its arguments so far parse as a JSON object. A complete JSON
  object cannot be extended into another valid one, so a well-behaved provider sends nothing more
  for it; a whitespace fragment that still arrives is dropped (the input is unchanged) and any
  other late fragment is dropped with a debug log (the arguments were invalid JSON anyway).
A tool call is opened only once its id and name are known (a missing id becomes `call_<tag>_<n>`,
deterministic per message; a name may arrive in a later fragment). In the common sequential case
(call 0's fragments, then call 1's …) every call opens the moment it appears and streams live.
When a provider interleaves indices (starts 0 and 1, then sends 0's arguments, then 1's …), the
open call keeps streaming and the others are buffered until it is complete; at the end every
remaining segment is flushed in order. So each tool call's input is exactly the concatenation of
its fragments, and as much as possible is streamed live. A new `id` at an index already in use is
a new call. Empty arguments produce no `ToolArgsDelta` (clients read that as `{}`).

Stop reasons: `length` → max_tokens, `content_filter` → refusal, any delivered tool call →
tool_use (also under `stop`, as some providers send), a matched stop string (vLLM's
`stop_reason`) → stop_sequence, otherwise end_turn. Usage: the last `usage` seen (on the finish
chunk, in a separate chunk, or in every chunk); none → zeros, never invented.

A payload that is not a JSON object raises `UpstreamProtocolError`; `{"error": …}` raises the
provider's error (`from_upstream`); a stream that ends with neither `finish_reason` nor `[DONE]`
raises in `close()`. Unknown fields and events are ignored; so is everything after `[DONE]`.
"""
from __future__ import annotations

import hashlib
import logging
import uuid
from collections import deque
from typing import Any, Sequence

import orjson

from ... import ir
from ...errors import UpstreamProtocolError
from ...sse import SSEParser, SSEEvent
from ...toolnames import ToolNames
from .fields import load_object, matched_stop, provider_error, stop_reason, usage_from_openai
from .text_template import TextTemplate
from .think_filter import PLAIN, TEXT, THINKING, ThinkFilter

log = logging.getLogger("ferryllm.translate")

_EMPTY: tuple = ()
TOOL = 2  # segment kinds: TEXT and THINKING are the <think> filter's piece kinds
# stream phases
_START, _OPEN, _DONE = range(3)
_NO_FN: dict = {}
class _Seg:
    """A text/reasoning run or a tool call. `index` is its IR block index once opened (-1 before);
    `parts` its buffered text while not open; a tool call keeps all its argument fragments."""

    __slots__ = ("kind", "index", "parts", "id", "real_id", "name", "checked", "complete")

    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.index = -1
        self.parts: list[str] = []
        self.id = ""
        self.real_id = False
        self.name: str | None = None
        self.checked = 0  # fragments seen at the last completeness check
        self.complete = False


class StreamDecoder:
    __slots__ = ("_parser", "_req", "_names", "_model", "_stops", "_provider", "_out", "_phase",
                 "_head", "_last", "_queue", "_index", "_calls", "_last_key", "_ncalls",
                 "_tools_sent", "_msg_id", "_tag", "_finish", "_stop_seq", "_usage", "_filter",
                 "_template")

    def __init__(self, req: ir.Request | None = None, provider: str = "provider") -> None:
        self._parser = SSEParser()
        self._req = req
        self._names: ToolNames | None = None  # built at the first tool call (walks the history)
        self._model = req.model if req is not None else ""
        self._stops = req.stop if req is not None else ()
        self._provider = provider
        self._out: list[ir.StreamEvent] = []
        self._phase = _START
        self._head: _Seg | None = None  # the open block
        self._last: _Seg | None = None  # the latest segment (text continues it)
        self._queue: deque[_Seg] = deque()  # segments after the head, not yet opened
        self._index = 0  # the next block index
        self._calls: dict[Any, _Seg] = {}  # provider tool-call index → its latest call
        self._last_key: Any = None
        self._ncalls = 0
        self._tools_sent = False
        self._msg_id = ""
        self._tag = ""
        self._finish: str | None = None
        self._stop_seq: str | None = None
        self._usage: dict | None = None
        self._filter = ThinkFilter()  # a leading <think>…</think> in content → reasoning
        self._template = TextTemplate()  # plain text chunks known by their bytes

    # ------------------------------------------------------------ bytes in, events out

    def feed(self, chunk: bytes) -> Sequence[ir.StreamEvent]:
        if self._phase == _DONE:
            return _EMPTY
        parser = self._parser
        if not parser.idle():  # the end of a frame split across reads, through the line parser
            cut = chunk.find(b"\n\n") + 2
            if cut == 1:  # no blank line in this read: all of it
                cut = len(chunk)
            self._events(parser.feed(chunk[:cut]))
            chunk = chunk[cut:]
        if chunk and self._phase != _DONE:
            payloads, chunk = parser.data_frames(chunk)  # whole one-line frames, the usual case
            for data in payloads:
                self._message(data)
                if self._phase == _DONE:
                    return self._take()
            if chunk:  # the rest: comments, named events, multi-line data, \r line ends
                self._events(parser.feed(chunk))
        return self._take()

    def close(self) -> Sequence[ir.StreamEvent]:
        if self._phase == _DONE:
            return _EMPTY
        self._events(self._parser.close())
        if self._phase == _DONE:
            return self._take()
        if self._finish is None:
            raise UpstreamProtocolError("provider stream ended before completion")
        self._end()  # a finish_reason but no [DONE]: some providers omit it
        return self._take()

    def _take(self) -> Sequence[ir.StreamEvent]:
        out = self._out
        if not out:
            return _EMPTY
        self._out = []
        return out

    def _events(self, events: list[SSEEvent]) -> None:
        for ev in events:
            if ev.event == b"message":
                self._message(ev.data)
            elif ev.event == b"error":
                self._data(ev.data, b"error")
            else:
                continue
            if self._phase == _DONE:
                return

    def _message(self, data: bytes) -> None:
        template = self._template
        if template.prefix is not None:
            text = template.text(data)
            if text is not None:  # the same plain text chunk as before, other text
                if text:
                    self._piece(TEXT, text)
                return
        self._data(data, b"message")

    def _data(self, data: bytes, event: bytes) -> None:
        """One event's data, parsed in full."""
        if data[:1] != b"{":
            data = data.strip()
            if data == b"[DONE]":
                self._end()
                return
            if not data:
                return
        obj = load_object(data, "chunk")
        err = obj.get("error")
        if err or event == b"error":
            raise provider_error(err or obj, self._provider)
        try:
            self._chunk(obj)
        except (AttributeError, TypeError, KeyError, IndexError):
            raise UpstreamProtocolError(
                "malformed chunk from provider (unexpected structure)") from None
        if self._filter.state == PLAIN and self._template.wants():
            self._template.learn(data, obj)

    def _chunk(self, obj: dict) -> None:
        if self._phase == _START:
            self._start(obj)
        usage = obj.get("usage")
        if usage:
            self._usage = usage
        choices = obj.get("choices")
        if not choices:
            return
        choice = choices[0]
        delta = choice.get("delta")
        if delta.__class__ is dict and len(delta) == 1 and self._filter.state == PLAIN:
            content = delta.get("content")  # the hot case: a plain text delta
            if content and content.__class__ is str:
                self._piece(TEXT, content)
                delta = None
        if delta:
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning and reasoning.__class__ is str:
                if self._filter.held:
                    self._settle()
                self._piece(THINKING, reasoning)
            content = delta.get("content")
            if content:
                if content.__class__ is not str:
                    raise TypeError
                if self._filter.state == PLAIN:
                    self._piece(TEXT, content)
                else:
                    self._content(content)
            calls = delta.get("tool_calls")
            if calls:
                for item in calls:
                    self._tool(item)
            elif delta.get("function_call"):  # legacy single function call
                self._tool({"index": "function_call", "function": delta["function_call"]})
            refusal = delta.get("refusal")
            if refusal and refusal.__class__ is str:
                self._piece(TEXT, refusal)
        finish = choice.get("finish_reason")
        if finish:
            self._finish = finish
            if self._stops:
                self._stop_seq = matched_stop(choice, self._stops)

    def _start(self, obj: dict) -> None:
        self._phase = _OPEN
        msg_id = obj.get("id")
        if not msg_id or msg_id.__class__ is not str:
            msg_id = f"chatcmpl-{uuid.uuid4().hex}"
        self._msg_id = msg_id  # hashed into `_tag` only if a tool call comes without an id
        model = obj.get("model")
        usage = obj.get("usage")
        self._out.append(ir.MessageStart(
            msg_id, model if model.__class__ is str and model else self._model,
            usage_from_openai(usage) if usage.__class__ is dict else ir.Usage()))

    def _end(self) -> None:
        if self._phase == _START:  # [DONE] with no chunk before it: an empty message
            self._start({})
        self._settle()
        head = self._head
        if head is not None:
            self._out.append(ir.BlockStop(head.index))
            self._head = None
        for seg in self._queue:
            if seg.kind == TOOL and seg.name is None:
                log.debug("dropped a tool call that never got a name")
                continue
            self._open(seg)
            self._out.append(ir.BlockStop(seg.index))
        self._queue.clear()
        self._head = None
        usage = self._usage
        self._out.append(ir.MessageDelta(
            stop_reason(self._finish, self._tools_sent, self._stop_seq), self._stop_seq,
            usage_from_openai(usage) if usage.__class__ is dict else ir.Usage()))
        self._out.append(ir.MessageStop())
        self._phase = _DONE

    # ------------------------------------------------------------ segments

    def _piece(self, kind: int, text: str) -> None:
        last = self._last
        if last is not None and last.kind == kind:
            if last is self._head:
                self._out.append(ir.TextDelta(last.index, text) if kind == TEXT
                                 else ir.ThinkingDelta(last.index, text))
            else:
                last.parts.append(text)
            return
        seg = _Seg(kind)
        seg.parts.append(text)
        self._push(seg)

    def _push(self, seg: _Seg) -> None:
        self._last = seg
        self._queue.append(seg)
        self._advance()

    def _advance(self) -> None:
        """Move the head on while it is finished and the next segment can be opened."""
        queue = self._queue
        while queue:
            head = self._head
            if head is not None:
                if head.kind == TOOL and not self._complete(head):
                    return
                self._out.append(ir.BlockStop(head.index))
                self._head = None
            nxt = queue[0]
            if nxt.kind == TOOL and nxt.name is None:
                return
            queue.popleft()
            self._open(nxt)

    def _open(self, seg: _Seg) -> None:
        index = seg.index = self._index
        self._index += 1
        self._head = seg
        out = self._out
        buffered = "".join(seg.parts)
        if seg.kind == TOOL:
            self._tools_sent = True
            names = self._names
            if names is None:
                req = self._req
                names = self._names = ToolNames.for_request(req) if req is not None else ToolNames()
            out.append(ir.ToolUseStart(index, seg.id, names.to_client(seg.name)))
            if buffered:
                out.append(ir.ToolArgsDelta(index, buffered))
        elif seg.kind == TEXT:
            seg.parts = []
            out.append(ir.TextStart(index))
            if buffered:
                out.append(ir.TextDelta(index, buffered))
        else:
            seg.parts = []
            out.append(ir.ThinkingStart(index))
            if buffered:
                out.append(ir.ThinkingDelta(index, buffered))

    @staticmethod
    def _complete(seg: _Seg) -> bool:
        """Whether a tool call's arguments so far are a whole JSON object (cached per fragment)."""
        parts = seg.parts
        if seg.checked == len(parts):
            return seg.complete
        seg.checked = len(parts)
        tail = parts[-1].rstrip() if parts else ""
        if parts and tail and tail[-1] != "}":
            seg.complete = False  # cheap: a JSON object ends with "}"
            return False
        try:
            seg.complete = orjson.loads("".join(parts)).__class__ is dict
        except orjson.JSONDecodeError:
            seg.complete = False
        return seg.complete

    # ------------------------------------------------------------ tool calls

    def _tool(self, item: dict) -> None:
        if self._filter.held:
            self._settle()
        key = item.get("index")
        call_id = item.get("id")
        if call_id.__class__ is not str:
            call_id = None
        if key is None:  # a provider that omits the index: by id, else the latest call
            key = ("id", call_id) if call_id else self._last_key
        self._last_key = key
        fn = item.get("function") or _NO_FN
        name = fn.get("name")
        if name.__class__ is not str or not name:
            name = None
        seg = self._calls.get(key)
        if seg is None or (call_id and call_id != seg.id
                           and (seg.real_id or (seg.index >= 0 and name))):
            seg = _Seg(TOOL)
            seg.id = call_id or self._missing_id()
            seg.real_id = bool(call_id)
            seg.name = name
            self._ncalls += 1
            self._calls[key] = seg
            self._push(seg)
        else:
            if call_id and not seg.real_id and seg.index < 0:
                seg.id, seg.real_id = call_id, True
            if name and seg.name is None:
                seg.name = name
                if self._queue:
                    self._advance()
        args = fn.get("arguments")
        if args:
            if args.__class__ is not str:
                args = orjson.dumps(args).decode()  # an object instead of a string
            if seg is self._head:
                seg.parts.append(args)
                self._out.append(ir.ToolArgsDelta(seg.index, args))
            elif seg.index < 0:
                seg.parts.append(args)
            elif args.strip():
                log.debug("dropped %d chars of arguments for a finished tool call", len(args))
            if self._queue:
                self._advance()

    def _missing_id(self) -> str:
        """A deterministic id for a tool call the provider sent without one."""
        if not self._tag:
            self._tag = hashlib.sha256(self._msg_id.encode()).hexdigest()[:8]
        return f"call_{self._tag}_{self._ncalls}"

    # ------------------------------------------------------------ <think> in content

    def _content(self, buf: str) -> None:
        for kind, text in self._filter.feed(buf):
            self._piece(kind, text)

    def _settle(self) -> None:
        for kind, text in self._filter.settle():
            self._piece(kind, text)
