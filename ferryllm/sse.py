"""Server-sent events: a sans-IO incremental parser (bytes in → events out) and constant frames.

The parser works on bytes and never decodes per network read: lines are split with
`bytes.splitlines()` (which breaks only at \\r, \\n and \\r\\n), so a multi-byte UTF-8 character
split across reads is simply rejoined; decoding happens once per event, in `orjson.loads`.
"""
from __future__ import annotations

from typing import NamedTuple

from .errors import UpstreamProtocolError

MAX_LINE = 32 * 1024 * 1024  # one unfinished line (a huge tool-call argument fits)
MAX_EVENT = 64 * 1024 * 1024  # one event's data lines together

# Constant frames, encoded once.
ANTHROPIC_PING = b'event: ping\ndata: {"type":"ping"}\n\n'
OPENAI_KEEPALIVE = b": keep-alive\n\n"
OPENAI_DONE = b"data: [DONE]\n\n"


class SSEEvent(NamedTuple):
    event: bytes  # b"message" when the frame had no `event:` field
    data: bytes  # data lines joined with b"\n"
    id: bytes | None = None


# a NamedTuple's own constructor is a Python function; `tuple.__new__` builds one for half the cost
_new_event = tuple.__new__


class SSEParser:
    """Feed bytes as they arrive; get whole events back. `close()` at end of stream returns an
    event left without its blank line (providers that omit the final blank line still count)."""

    __slots__ = ("_pieces", "_size", "_event", "_data", "_data_size", "_id", "_started")

    def __init__(self) -> None:
        self._pieces: list[bytes] = []  # the unfinished line, joined once
        self._size = 0
        self._event = b"message"
        self._data: list[bytes] = []
        self._data_size = 0
        self._id: bytes | None = None
        self._started = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not self._started and chunk:
            self._started = True
            if chunk.startswith(b"\xef\xbb\xbf"):
                chunk = chunk[3:]
        if not self._pieces and not self._data and 13 not in chunk:  # no \r
            end = chunk.rfind(b"\n\n")
            if end >= 0:
                return self._frames(chunk, end)
        return self._split(chunk)

    def _frames(self, chunk: bytes, end: int) -> list[SSEEvent]:
        """The fast path: nothing pending, \\n line ends, `end` the last blank line. When every
        whole frame is one `data: ` line (what providers send, bar pings and comments), splitting
        at `\\n\\ndata: ` leaves exactly the payloads; otherwise the frames go through the line
        parser."""
        out: list[SSEEvent] | None = None
        if chunk[:6] == b"data: " and end < MAX_EVENT and self._event == b"message":
            event_id = self._id
            out = []
            for data in chunk[6:end].split(b"\n\ndata: "):
                if 10 in data:  # `in` with an int is a memchr; any \n: not a one-line frame
                    out = None
                    break
                out.append(_new_event(SSEEvent, (b"message", data, event_id)))
        if out is None:
            out = self._lines(chunk[:end + 1].split(b"\n"))
        rest = chunk[end + 2:]
        if rest:
            out += self._split(rest)
        return out

    def _split(self, chunk: bytes) -> list[SSEEvent]:
        # a final \r may be half of \r\n: it stays with the unfinished line
        cut = max(chunk.rfind(b"\n"), chunk.rfind(b"\r", 0, len(chunk) - 1)) + 1
        if not cut:
            self._pieces.append(chunk)
            self._size += len(chunk)
            if self._size > MAX_LINE:
                raise UpstreamProtocolError("SSE line too long")
            return []
        if self._pieces:
            self._pieces.append(chunk[:cut])
            lines = b"".join(self._pieces).splitlines()
        else:
            lines = chunk[:cut].splitlines()
        rest = chunk[cut:]
        self._pieces, self._size = ([rest] if rest else []), len(rest)
        return self._lines(lines)

    def close(self) -> list[SSEEvent]:
        """End of stream: a pending line and a pending event are completed."""
        lines = [b"".join(self._pieces)] if self._pieces else []
        self._pieces, self._size = [], 0
        lines.append(b"")
        return self._lines(lines)

    def _lines(self, lines: list[bytes]) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if line[:6] == b"data: ":  # the hot case, first
                data.append(line[6:])
                self._data_size += len(line) - 6
                if self._data_size > MAX_EVENT:
                    raise UpstreamProtocolError("SSE event too large")
            elif not line:  # blank line ends the event
                if data:
                    out.append(_new_event(SSEEvent, (self._event, data[0] if len(data) == 1
                                                      else b"\n".join(data), self._id)))
                    data = self._data = []
                    self._data_size = 0
                self._event = b"message"
            elif line[0] != 0x3A:  # b":" starts a comment
                name, _, value = line.partition(b":")
                if value[:1] == b" ":
                    value = value[1:]
                if name == b"data":
                    data.append(value)
                    self._data_size += len(value)
                    if self._data_size > MAX_EVENT:
                        raise UpstreamProtocolError("SSE event too large")
                elif name == b"event":
                    self._event = value or b"message"
                elif name == b"id":
                    if b"\x00" not in value:
                        self._id = value
                # `retry:` and unknown fields are ignored: a gateway does not reconnect
        return out
