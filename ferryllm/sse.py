"""Server-sent events: a sans-IO incremental parser (bytes in → events out).

The parser works on bytes and never decodes per network read: lines are split with
`bytes.splitlines()` (which breaks only at \\r, \\n and \\r\\n), so a multi-byte UTF-8 character
split across reads is simply rejoined; decoding happens once per event, in `orjson.loads`.
"""
from __future__ import annotations

from typing import NamedTuple

from .errors import UpstreamProtocolError

MAX_LINE = 32 * 1024 * 1024  # one unfinished line (a huge tool-call argument fits)
MAX_EVENT = 64 * 1024 * 1024  # one event's data lines together

# A comment frame: every SSE client ignores it (keep-alive for protocols without a ping event).
COMMENT_KEEPALIVE = b": keep-alive\n\n"


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

    def idle(self) -> bool:
        """Nothing pending: the next byte starts a new line of a new (unnamed) event."""
        return not self._pieces and not self._data and self._event == b"message"

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        payloads, rest = self.data_frames(chunk)
        event_id = self._id
        out = [_new_event(SSEEvent, (b"message", data, event_id)) for data in payloads]
        if rest:
            out += self._split(rest)
        return out

    def data_frames(self, chunk: bytes) -> tuple[list[bytes], bytes]:
        """The fast path, for callers that need only the data of unnamed events: when nothing is
        pending and the read has `\\n` line ends, the data of the whole frames at its start that
        are each one `data: ` line (what providers send, bar pings and comments), found by
        splitting at `\\n\\ndata: `. The bytes from the first frame that is not such a frame (or
        not whole) are returned unread: pass them to `feed`."""
        if not self._started and chunk:
            self._started = True
            if chunk.startswith(b"\xef\xbb\xbf"):
                chunk = chunk[3:]
        if (self._pieces or self._data or 13 in chunk or chunk[:6] != b"data: "
                or self._event != b"message"):
            return [], chunk
        end = chunk.rfind(b"\n\n")
        if end < 0 or end >= MAX_EVENT:
            return [], chunk
        payloads = chunk[6:end].split(b"\n\ndata: ")
        for i, data in enumerate(payloads):
            if 10 in data:  # `in` with an int is a memchr; a \n: not a one-line frame
                del payloads[i:]
                # this frame starts after the i before it, each b"data: " + data + b"\n\n"
                return payloads, chunk[sum(map(len, payloads)) + 8 * i:]
        return payloads, chunk[end + 2:]

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
