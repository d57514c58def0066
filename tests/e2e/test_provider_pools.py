"""Provider pools on routes through the real server: latency-aware and least-busy choice, a failing
member handing over to the next one, the fallbacks after the pool."""
from __future__ import annotations

from dataclasses import replace

import aiohttp
import pytest

from ferryllm.server import GATEWAY, build_app
from tests.conftest import make_config
from tests.mockprovider import MockProvider, Reply, sse_frames
from tests.streamsummary import FIXTURES

MSG = {"model": "claude-x", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
OK = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
      "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
      "usage": {"input_tokens": 5, "output_tokens": 2}}


@pytest.fixture
async def pooled(aiohttp_server, provider):
    """`base, mocks = await pooled({"a": mock, ...}, balance=..., fallback=[...], rand=...)`."""
    async def start(mocks: dict[str, MockProvider], *, balance: str, weights=(),
                    fallback: list[str] = (), rand=lambda: 0.5, **server):
        urls = {name: ("anthropic", await provider(mock)) for name, mock in mocks.items()}
        config = make_config(urls, **server)
        pool = tuple(n for n in mocks if n not in fallback)
        route = replace(config.routes[0], provider=pool[0], pool=pool, balance=balance,
                        weights=tuple(weights), fallback_providers=tuple(fallback))
        app = build_app(replace(config, routes=(route,)))
        app[GATEWAY].relay.balancer.rand = rand
        server_ = await aiohttp_server(app)
        return f"http://127.0.0.1:{server_.port}"
    return start


async def post(s: aiohttp.ClientSession, base: str) -> int:
    async with s.post(base + "/v1/messages", json=MSG) as r:
        assert (await r.json())["content"][0]["text"] == "ok"
        return r.status


async def test_latency_balance_measures_each_member_then_keeps_to_the_fastest(pooled, sdk):
    slow, fast = MockProvider(Reply(body=OK, delay=0.3)), MockProvider(Reply(body=OK))
    base = await pooled({"slow": slow, "fast": fast}, balance="latency")
    client = sdk.anthropic(base)
    for _ in range(4):
        assert (await client.messages.create(**MSG)).content[0].text == "ok"
    # each member measured once (config order), then the fastest only
    assert (len(slow.received), len(fast.received)) == (1, 3)


async def test_least_busy_sends_the_next_request_past_a_running_stream(pooled):
    frames = sse_frames((FIXTURES / "anthropic" / "text.sse").read_text(encoding="utf-8"))
    a = MockProvider(Reply(body=OK)).then(Reply(chunks=frames, hang_after=2))
    b = MockProvider(Reply(body=OK))
    base = await pooled({"a": a, "b": b}, balance="least_busy", rand=lambda: 0.0)
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1/messages", json={**MSG, "stream": True}) as stream:
            assert await stream.content.readany()  # a holds a stream open
            assert await post(s, base) == 200
            assert (len(a.received), len(b.received)) == (1, 1)
        assert await post(s, base) == 200  # the stream is gone: a and b tie, a first
    assert (len(a.received), len(b.received)) == (2, 1)


async def test_a_failing_member_hands_over_to_the_next_then_the_fallback(pooled):
    down = Reply(status=503, body={"type": "error", "error": {"type": "overloaded_error",
                                                              "message": "busy"}})
    a, b, c = MockProvider(down), MockProvider(down), MockProvider(Reply(body=OK))
    base = await pooled({"a": a, "b": b, "c": c}, balance="weighted", weights=(1, 3),
                        fallback=["c"], rand=lambda: 0.5)
    async with aiohttp.ClientSession() as s:
        assert await post(s, base) == 200
        async with s.get(base + "/metrics") as r:
            metrics = await r.text()
    # weights 1:3 and 0.5: b first, then a (the rest of the pool), then the fallback c
    assert [len(m.received) for m in (a, b, c)] == [1, 1, 1]
    assert 'ferryllm_fallbacks_total{from_provider="b",to_provider="a"} 1.0' in metrics
    assert 'ferryllm_fallbacks_total{from_provider="a",to_provider="c"} 1.0' in metrics
