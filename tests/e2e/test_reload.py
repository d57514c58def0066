"""Reload on SIGHUP against a real `ferryllm serve` process (one process and `--workers 2`): a
stream in flight finishes on the old config while a new request uses the new one; an invalid file
changes nothing and logs one `error:` line naming the key. In-process: the old gateway's provider
sessions are closed when its last stream ends."""
from __future__ import annotations

import asyncio
import re
import signal

import aiohttp
import pytest

from ferryllm.config import load_config
from ferryllm.reload import reload_app
from ferryllm.server import GATEWAY, LIVE, build_app
from tests.mockprovider import MockProvider, Reply, sse_frames
from tests.streamsummary import FIXTURES

MSG = {"model": "claude-x", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
FRAMES = sse_frames((FIXTURES / "anthropic" / "text.sse").read_text(encoding="utf-8"))


def answer(text: str) -> dict:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}


def config_text(name: str, url: str, key_file: str | None = None) -> str:
    key = f'api_key_file = "{key_file}"' if key_file else 'api_key = "sk-test"'
    return f"""
[server]
listen = "127.0.0.1:1"
shutdown_grace_secs = 10

[[providers]]
name = "{name}"
type = "anthropic"
base_url = "{url}"
{key}

[[routes]]
match = "*"
provider = "{name}"
"""


INVALID = """
[[providers]]
name = "new"
type = "anthropic"
base_url = "http://127.0.0.1:9"
api_key = "k"

[[routes]]
match = "*"
provider = "nope"
"""


class Output:
    """The process's merged stdout/stderr, read line by line as the test waits for them."""

    def __init__(self, proc) -> None:
        self.proc, self.lines = proc, []

    async def wait_for(self, pattern: str, count: int = 1, timeout: float = 30) -> None:
        async def read() -> None:
            while sum(bool(re.search(pattern, line)) for line in self.lines) < count:
                line = await self.proc.stdout.readline()
                if not line:
                    raise AssertionError(f"process ended before {pattern!r}: {self.lines}")
                self.lines.append(line.decode(errors="replace").rstrip("\n"))
        await asyncio.wait_for(read(), timeout)

    async def rest(self) -> list[str]:
        self.lines += (await self.proc.stdout.read()).decode(errors="replace").splitlines()
        return self.lines


async def json_text(s: aiohttp.ClientSession, base: str) -> str:
    async with s.post(base + "/v1/messages", json=MSG) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["content"][0]["text"]


async def reload_with_a_stream_in_flight(serve, provider, tmp_path, *workers: str) -> None:
    resume = asyncio.Event()
    old = MockProvider(Reply(body=answer("old"))).then(
        Reply(chunks=FRAMES, hang_after=2, resume=resume))
    new = MockProvider(Reply(body=answer("new")))
    old_url, new_url = await provider(old), await provider(new)
    path = tmp_path / "ferryllm.toml"
    (tmp_path / "key").write_text("sk-file-key-1\n")
    path.write_text(config_text("old", old_url, "key"))
    served = await serve("--config", str(path), *workers)
    if workers:  # every worker up before the signal (one still starting would miss it)
        await served.workers_serving(int(workers[-1]))
    out = Output(served.proc)
    connector = aiohttp.TCPConnector(force_close=True)  # spread over the workers
    async with aiohttp.ClientSession(connector=connector) as s:
        async with s.post(served.base + "/v1/messages", json={**MSG, "stream": True}) as stream:
            first = await stream.content.readany()
            (tmp_path / "key").write_text("sk-file-key-2\n")
            path.write_text(config_text("new", new_url, "key"))
            served.send(signal.SIGHUP)
            served.signalled = False
            await out.wait_for(r"reloaded .*ferryllm\.toml", count=len(workers) and 2 or 1)
            for _ in range(4):
                assert await json_text(s, served.base) == "new"
            resume.set()
            rest = await stream.content.read()
    body = first + rest
    assert body.count(b"event: content_block_delta") == sum(b"content_block_delta" in f
                                                            for f in FRAMES)
    assert body.rstrip().endswith(b'data: {"type": "message_stop"}')
    assert len(old.received) == 1 and len(new.received) == 4
    assert old.received[0].headers["x-api-key"] == "sk-file-key-1"
    assert {r.headers["x-api-key"] for r in new.received} == {"sk-file-key-2"}  # key file re-read

    path.write_text(INVALID)
    served.send(signal.SIGHUP)
    served.signalled = False
    await out.wait_for("reload rejected")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        for _ in range(4):
            assert await json_text(s, served.base) == "new"  # nothing changed
    assert await served.stop() == 0
    lines = await out.rest()
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, errors
    assert 'routes[0].provider: unknown provider "nope"' in errors[0]
    assert not any("sk-file-key" in line for line in lines)


async def test_sighup_reloads_while_a_stream_finishes_on_the_old_config(serve, provider,
                                                                        tmp_path):
    await reload_with_a_stream_in_flight(serve, provider, tmp_path)


async def test_sighup_reaches_every_worker(serve, provider, tmp_path):
    await reload_with_a_stream_in_flight(serve, provider, tmp_path, "--workers", "2")


async def test_old_gateway_closes_its_sessions_when_its_last_stream_ends(aiohttp_server,
                                                                         provider, tmp_path):
    resume = asyncio.Event()
    old = MockProvider(Reply(chunks=FRAMES, hang_after=2, resume=resume))
    new = MockProvider(Reply(body=answer("new")))
    path = tmp_path / "ferryllm.toml"
    path.write_text(config_text("old", await provider(old)))
    app = build_app(load_config(path))
    server = await aiohttp_server(app)
    base = f"http://127.0.0.1:{server.port}"
    first_gw = app[GATEWAY]
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1/messages", json={**MSG, "stream": True}) as stream:
            assert await stream.content.readany()
            path.write_text(config_text("new", await provider(new)))
            assert await reload_app(app)
            assert app[LIVE].gateway is not first_gw and first_gw.retired
            assert first_gw.active == 1 and first_gw.transport._sessions  # still streaming
            assert await json_text(s, base) == "new"
            resume.set()
            await stream.content.read()
        async with s.get(base + "/metrics") as r:  # one registry across the reload
            metrics = await r.text()
        for provider_ in ("old", "new"):
            assert (f'ferryllm_requests_total{{entry="anthropic",provider="{provider_}",'
                    'status_class="2xx"} 1.0') in metrics
        for _ in range(100):  # the close is a task started when the stream ended
            if not first_gw.transport._sessions:
                break
            await asyncio.sleep(0.01)
    assert first_gw.active == 0 and not first_gw.transport._sessions
    path.write_text(INVALID)
    assert not await reload_app(app)
    assert app[LIVE].gateway.config.providers[0].name == "new"


@pytest.mark.parametrize("bad", ["[server\n", 'routes = "x"\n'])
async def test_invalid_reload_in_process_changes_nothing(bad, tmp_path, caplog):
    path = tmp_path / "ferryllm.toml"
    path.write_text(config_text("old", "http://127.0.0.1:9"))
    app = build_app(load_config(path))
    before = app[LIVE].gateway
    path.write_text(bad)
    with caplog.at_level("INFO", logger="ferryllm"):
        assert not await reload_app(app)
    assert app[LIVE].gateway is before and not before.retired
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].getMessage().startswith("error: reload rejected")


async def test_reload_with_shared_state_moves_to_a_new_connection(aiohttp_server, provider,
                                                                  tmp_path, redis_server):
    """The new gateway connects to Redis before it serves; the old one closes its connection
    once its last request has ended, and the fleet's state (here the rate bucket) carries on."""
    shared = f'\n[shared_state]\nurl = "{redis_server.url}"\nkey_prefix = "reload"\n'
    mock = MockProvider(Reply(body=answer("ok")))
    url = await provider(mock)
    path = tmp_path / "ferryllm.toml"
    text = config_text("p", url).replace("[server]\n", "[server]\nrate_limit_per_minute = 3\n")
    path.write_text(text + shared)
    app = build_app(load_config(path))
    server = await aiohttp_server(app)
    base = f"http://127.0.0.1:{server.port}"
    first = app[LIVE].gateway
    async with aiohttp.ClientSession() as s:
        assert await json_text(s, base) == "ok"
        assert await reload_app(app)
        new = app[LIVE].gateway
        assert new is not first and new.shared is not None and new.shared.up
        for _ in range(100):  # closed by a task once the last request (none here) ended
            if first.shared is None:
                break
            await asyncio.sleep(0.01)
        assert first.shared is None
        assert await json_text(s, base) == "ok"
        assert await json_text(s, base) == "ok"
        async with s.post(base + "/v1/messages", json=MSG) as r:  # the fleet bucket: 3 a minute
            assert r.status == 429
