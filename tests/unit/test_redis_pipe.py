"""The RESP packing of `ferryllm.redis_pipe` (what redis-server parses), and the pipe against a real
redis-server: replies matched in order, an expired call's late reply dropped, NOSCRIPT answered by
EVAL, a dead server failing every waiting call at once."""
from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from ferryllm.redis_pipe import Pipe, Script, pack


def test_pack_is_resp():
    assert pack("SET", "k", 12, b"\x00\r\n") == (
        b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$3\r\n\x00\r\n\r\n")
    s = Script("return 1")
    assert s.evalsha(("a", "b"), ("x",)) == pack("EVALSHA", s.sha, 2, "a", "b", "x")
    assert s.evalsha(("a", "b"), ("y",)) == pack("EVALSHA", s.sha, 2, "a", "b", "y")  # cached
    assert s.evalsha(("a",), (1, 2), cache=False) == pack("EVALSHA", s.sha, 1, "a", 1, 2)
    assert s.eval((), ()) == pack("EVAL", "return 1", 0)


async def test_pipe_orders_replies_drops_late_ones_and_reloads_scripts(redis_server):
    pipe = Pipe(redis_server.url, 0.5)
    try:
        replies = await asyncio.gather(*(pipe.send(pack("ECHO", i)) for i in range(50)))
        assert replies == [str(i).encode() for i in range(50)]
        script = Script("return ARGV[1] .. KEYS[1]")
        assert await pipe.script(script, ("k",), ("v",)) == b"vk"  # NOSCRIPT, then EVAL
        assert await pipe.script(script, ("k",), ("w",)) == b"wk"  # EVALSHA now
        redis_server.freeze()
        with pytest.raises(TimeoutError):
            await pipe.send(pack("ECHO", "late"), 0.2)
        redis_server.thaw()
        assert await pipe.send(pack("ECHO", "next")) == b"next"  # not the late "late"
        redis_server.kill()
        waiting = [pipe.send(pack("PING"), 5) for _ in range(3)]
        for fut in waiting:
            with pytest.raises((RedisConnectionError, OSError)):
                await fut
        redis_server.start()
        assert await pipe.send(pack("PING"), 5) == b"PONG"  # reconnected
    finally:
        await pipe.close()
