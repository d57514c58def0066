"""Automatic pipelining over one redis-py connection (hiredis parser): every command issued in one
turn of the event loop leaves in one write, one reader task matches the replies to their callers
in order. Through `redis.asyncio.Redis` a call costs ~60-130 µs of CPU (its pool, retry and
timeout layers, a task per call); here a few µs, which is most of what shared state adds to a
request (benchmarks/shared_state.py).

`send()` packs nothing itself: callers hand it a packed command (`pack()`; a `Script` caches the
packed EVALSHA prefix of each key set). Each call is bounded by `timeout` with a timer, not an
`asyncio.timeout` context: an expired call leaves its place in the queue, so the late reply is
matched and dropped, never given to the next caller. A broken connection fails every waiting
call; the next call reconnects (within `timeout`)."""
from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from typing import Any

from redis.asyncio.connection import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError


def pack(*args: Any) -> bytes:
    """One command in RESP: bytes as they are, everything else as its `str()`."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if a.__class__ is bytes else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def pack_args(args: tuple | list) -> bytes:
    out = []
    for a in args:
        b = a if a.__class__ is bytes else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Script:
    """A Lua script run by EVALSHA (its packed prefix per key set built once), sent again as
    EVAL when Redis answers NOSCRIPT (a restarted or flushed Redis)."""

    __slots__ = ("body", "sha", "_prefixes")

    def __init__(self, body: str) -> None:
        self.body, self.sha = body, hashlib.sha1(body.encode()).hexdigest()
        self._prefixes: dict[tuple, bytes] = {}

    def evalsha(self, keys: tuple, args: tuple | list, cache: bool = True) -> bytes:
        if not cache:
            return pack("EVALSHA", self.sha, len(keys), *keys, *args)
        prefix = self._prefixes.get((keys, len(args)))
        if prefix is None:
            if len(self._prefixes) > 4096:  # bounded: key sets come from config
                self._prefixes.clear()
            prefix = self._prefixes[keys, len(args)] = (
                b"*%d\r\n" % (3 + len(keys) + len(args)) + pack_args(
                    ("EVALSHA", self.sha, len(keys), *keys)))
        return prefix + pack_args(args)

    def eval(self, keys: tuple, args: tuple | list) -> bytes:
        return pack("EVAL", self.body, len(keys), *keys, *args)


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError("Redis did not answer in time"))


class Pipe:
    def __init__(self, url: str, timeout: float) -> None:
        self.timeout = timeout
        self._pool = ConnectionPool.from_url(url, socket_timeout=None,
                                             socket_connect_timeout=timeout,
                                             retry=Retry(NoBackoff(), 0))
        self._conn = None
        self._opening: asyncio.Task | None = None
        self._reader: asyncio.Task | None = None
        self._out: list[bytes] = []
        self._out_waiters: list[tuple[asyncio.Future, asyncio.TimerHandle]] = []
        self._waiting: deque[tuple[asyncio.Future, asyncio.TimerHandle]] = deque()
        self._scheduled = False

    def send(self, data: bytes, timeout: float | None = None) -> asyncio.Future:
        """Queue one packed command: a future for its reply (an error reply, a TimeoutError
        after `timeout`, or the connection's error raise from it)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._out.append(data)
        self._out_waiters.append((fut, loop.call_later(timeout or self.timeout, _expire, fut)))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return fut

    async def script(self, script: Script, keys: tuple, args: tuple | list) -> Any:
        try:
            return await self.send(script.evalsha(keys, args))
        except NoScriptError:
            return await self.send(script.eval(keys, args))

    def _flush(self) -> None:
        self._scheduled = False
        if not self._out:
            return
        conn = self._conn
        if conn is None:
            if self._opening is None:
                self._opening = asyncio.ensure_future(self._open())
            return  # `_open` flushes once connected
        data, waiters = b"".join(self._out), self._out_waiters
        self._out, self._out_waiters = [], []
        self._waiting.extend(waiters)
        try:
            conn._writer.write(data)  # buffered by the transport: no drain per call
        except Exception as exc:  # noqa: BLE001 - a closing transport
            self._broken(exc)

    async def _open(self) -> None:
        conn = self._pool.make_connection()
        try:
            await conn.connect()
        except Exception as exc:  # noqa: BLE001 - every waiting caller hears of it
            self._opening = None
            self._broken(exc)
            return
        self._conn, self._opening = conn, None
        self._reader = asyncio.ensure_future(self._read(conn))
        self._flush()

    async def _read(self, conn) -> None:
        waiting = self._waiting
        try:
            while True:
                try:
                    reply, error = await conn.read_response(disconnect_on_error=False), None
                except ResponseError as exc:
                    reply, error = None, exc
                if not waiting:
                    continue
                fut, timer = waiting.popleft()
                timer.cancel()
                if not fut.done():
                    if error is None:
                        fut.set_result(reply)
                    else:
                        fut.set_exception(error)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the connection is gone
            if self._conn is conn:
                self._broken(exc)

    def _broken(self, exc: BaseException) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            asyncio.ensure_future(conn.disconnect(nowait=True))
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
        self._reader = None
        err = exc if isinstance(exc, (RedisConnectionError, OSError, TimeoutError)) else \
            RedisConnectionError(f"Redis connection lost ({type(exc).__name__})")
        pending = [*self._waiting, *self._out_waiters]
        self._waiting.clear()
        self._out, self._out_waiters = [], []
        for fut, timer in pending:
            timer.cancel()
            if not fut.done():
                fut.set_exception(err)

    async def close(self) -> None:
        if self._opening is not None:
            self._opening.cancel()
        if self._reader is not None:
            self._reader.cancel()
        if self._conn is not None:
            await self._conn.disconnect(nowait=True)
            self._conn = None
        await self._pool.disconnect()
