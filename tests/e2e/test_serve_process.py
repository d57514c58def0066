"""`ferryllm serve` as a real process: the demo, graceful shutdown on SIGTERM, --workers."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import aiohttp
import pytest

from tests.mockprovider import MockProvider, Reply, sse_frames
from tests.processes import parent_pid, free_port  # noqa: F401 - the `serve` fixture is in conftest
from tests.streamsummary import FIXTURES

STREAM_BODY = {"model": "claude-x", "max_tokens": 16, "stream": True,
               "messages": [{"role": "user", "content": "hi"}]}


def frames_with(frames: list[bytes], marker: bytes) -> int:
    return sum(marker in f for f in frames)


def write_config(tmp_path, provider_url: str, extra: str = "") -> str:
    path = tmp_path / "ferryllm.toml"
    path.write_text(f"""
[server]
listen = "127.0.0.1:1"
shutdown_grace_secs = 10
{extra}

[[providers]]
name = "mock"
type = "anthropic"
base_url = "{provider_url}"
api_key = "sk-test"

[[routes]]
match = "*"
provider = "mock"
""")
    return str(path)


async def test_demo_answers_and_exits_zero_on_sigterm(serve, sdk):
    served = await serve("--demo")
    msg = await sdk.anthropic(served.base).messages.create(
        model="claude-x", max_tokens=32, messages=[{"role": "user", "content": "hello"}])
    assert "ferryllm demo" in msg.content[0].text
    out = await served.proc.stdout.read(4096)
    assert b"ANTHROPIC_BASE_URL=" + served.base.encode() in out and b"curl" in out
    assert await served.stop() == 0


async def test_sigterm_lets_in_flight_stream_finish(serve, provider, tmp_path):
    frames = sse_frames((FIXTURES / "anthropic" / "text.sse").read_text(encoding="utf-8"))
    mock = MockProvider(Reply(chunks=frames, gap=0.15))
    url = await provider(mock)
    served = await serve("--config", write_config(tmp_path, url))
    async with aiohttp.ClientSession() as s:
        async with s.post(served.base + "/v1/messages", json=STREAM_BODY) as r:
            first = await r.content.readany()
            assert first
            served.send(signal.SIGTERM)
            rest = await r.content.read()
    body = first + rest
    assert body.count(b"event: content_block_delta") == frames_with(frames, b"content_block_delta")
    assert body.rstrip().endswith(b"event: message_stop\ndata: {\"type\": \"message_stop\"}")
    assert await served.stop() == 0
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as s:
            async with s.get(served.base + "/health"):
                pass


async def test_two_workers_share_the_port_and_aggregate_metrics(serve, provider, tmp_path):
    ok = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
          "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
          "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}
    url = await provider(MockProvider(Reply(body=ok)))
    served = await serve("--config", write_config(tmp_path, url), "--workers", "2")
    body = {k: v for k, v in STREAM_BODY.items() if k != "stream"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        for _ in range(20):
            async with s.post(served.base + "/v1/messages", json=body) as r:
                assert r.status == 200
        async with s.get(served.base + "/metrics") as r:
            metrics = await r.text()
    counted = sum(float(m) for m in re.findall(
        r'ferryllm_requests_total\{entry="anthropic",provider="mock",status_class="2xx"\} (\S+)',
        metrics))
    assert counted == 20
    children = [p for p in os.listdir("/proc") if p.isdigit() and parent_pid(p) == served.proc.pid]
    assert len(children) == 2
    assert await served.stop() == 0
