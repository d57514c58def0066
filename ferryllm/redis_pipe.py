"""Automatic pipelining over one redis-py connection (hiredis parser): every command issued in one
turn of the event loop leaves in one write, one reader task matches the replies to their callers
in order. A call costs ~5-15 µs of CPU here instead of ~60-130 µs through `redis.asyncio.Redis`
(its pool, retry and timeout layers per command), which is most of what shared state adds to a
request (benchmarks/shared_state.py).

Callers bound every call themselves (`asyncio.timeout`): a caller that gives up leaves its slot
in the queue, so the late reply is matched and dropped, never given to the next caller. A broken
connection fails every waiting call; the next call reconnects (within `connect_timeout`)."""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from redis.asyncio.connection import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError


class Script:
    """A Lua script run by EVALSHA, loaded again (EVAL) when Redis answers NOSCRIPT."""

    __slots__ = ("body", "sha")

    def __init__(self, body: str) -> None:
        import hashlib
        self.body, self.sha = body, hashlib.sha1(body.encode()).hexdigest()


class Pipe:
    def __init__(self, url: str, connect_timeout: float) -> None:
        self._pool = ConnectionPool.from_url(url, socket_timeout=None,
                                             socket_connect_timeout=connect_timeout,
                                             retry=Retry(NoBackoff(), 0))
        self._conn = None
        self._connecting: asyncio.Task | None = None
        self._outbox: list[tuple[tuple, asyncio.Future]] = []
        self._waiting: deque[asyncio.Future] = deque()
        self._flushing = False
        self._reader: asyncio.Task | None = None

    async def execute(self, *args: Any) -> Any:
        fut = asyncio.get_running_loop().create_future()
        self._outbox.append((args, fut))
        if not self._flushing:
            self._flushing = True
            asyncio.ensure_future(self._flush())
        return await fut

    async def script(self, script: Script, keys: tuple | list, args: tuple | list) -> Any:
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:  # a restarted (or flushed) Redis: the script travels once
            return await self.execute("EVAL", script.body, len(keys), *keys, *args)

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # gather what this turn of the loop issues
            if self._conn is None:
                await self._connect()
            batch, self._outbox = self._outbox, []
            live = [(a, f) for a, f in batch if not f.done()]
            if not live:
                return
            conn = self._conn
            self._waiting.extend(f for _, f in live)
            await conn.send_packed_command(conn.pack_commands([a for a, _ in live]),
                                           check_health=False)
        except Exception as exc:  # noqa: BLE001 - every waiting caller hears of it
            self._broken(exc)
        finally:
            self._flushing = False
            if self._outbox:
                self._flushing = True
                asyncio.ensure_future(self._flush())

    async def _connect(self) -> None:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        try:
            await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _open(self) -> None:
        conn = self._pool.make_connection()
        await conn.connect()
        self._conn = conn
        self._reader = asyncio.ensure_future(self._read(conn))

    async def _read(self, conn) -> None:
        waiting = self._waiting
        try:
            while True:
                try:
                    reply = await conn.read_response(disconnect_on_error=False)
                    error = None
                except ResponseError as exc:
                    reply, error = None, exc
                fut = waiting.popleft() if waiting else None
                if fut is not None and not fut.done():
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
        pending = [*self._waiting, *(f for _, f in self._outbox)]
        self._waiting.clear()
        self._outbox = []
        for fut in pending:
            if not fut.done():
                fut.set_exception(err)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._conn is not None:
            await self._conn.disconnect(nowait=True)
            self._conn = None
        await self._pool.disconnect()
