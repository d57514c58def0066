"""`[shared_state]` against a real redis-server: two ferryllm instances (two apps, each with its
own Redis client, or a separate `ferryllm serve` process) hold one limit, one concurrency cap, one
breaker and one budget; leases of a killed instance come back after their TTL; a killed or
frozen Redis fails no request with `on_failure = "local"` and answers 503 with `"reject"`."""
from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import replace

import aiohttp
import pytest
import redis as sync_redis

from ferryllm.config import AuthConfig, ClientConfig, SharedStateConfig
from tests.conftest import make_config
from tests.e2e.test_key_pools import pool_gateway  # noqa: F401 - fixture
from tests.e2e.test_serve_process import write_config
from tests.mockprovider import MockProvider, Reply, sse_frames
from tests.streamsummary import FIXTURES

MSG = {"model": "claude-x", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
STREAM = {**MSG, "stream": True}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
OK = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
      "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
      "usage": {"input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 3,
                "cache_creation_input_tokens": 1}}  # 11 tokens
CLIENT_KEY = "ck-team-a-secret-9d2e1f"
PROVIDER_KEY = "sk-provider-a"  # make_config's key for provider "a"


def frames() -> list[bytes]:
    return sse_frames((FIXTURES / "anthropic" / "text.sse").read_text(encoding="utf-8"))


def shared(config, redis_server, **kw):
    return replace(config, shared_state=SharedStateConfig(
        url=redis_server.url, key_prefix="t", timeout_ms=kw.pop("timeout_ms", 100),
        on_failure=kw.pop("on_failure", "local"), lease_ttl_secs=kw.pop("lease_ttl_secs", 30)))


async def post(base: str, path: str = "/v1/messages", body: dict = MSG, headers=None):
    async with aiohttp.ClientSession() as s:
        async with s.post(base + path, json=body, headers=headers or {}) as r:
            return r.status, r.headers, await r.json()


async def metrics(base: str) -> str:
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/metrics") as r:
            return await r.text()


async def until(check, what: str, bound: float = 15.0):
    """Poll `check()` (sync or async) until it is true; fail after `bound` seconds."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {bound}s: {what}")


@pytest.fixture
def r(redis_server):
    client = sync_redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


async def two(gateway, config):
    return await gateway(config), await gateway(config)


async def test_two_instances_share_one_rate_limit_exactly(gateway, provider, redis_server):
    url = await provider(MockProvider(Reply(body=OK)))
    a, b = await two(gateway, shared(make_config({"a": ("anthropic", url)},
                                                 rate_limit_per_minute=10), redis_server))
    statuses = [(await post(a if i % 2 else b))[0] for i in range(30)]
    assert statuses.count(200) == 10 and statuses.count(429) == 20
    assert statuses[:10] == [200] * 10  # first come, first served, whichever instance


async def test_shared_concurrency_cap(gateway, provider, redis_server, r):
    mock = MockProvider(Reply(chunks=frames(), hang_after=1))
    url = await provider(mock)
    a, b = await two(gateway, shared(make_config({"a": ("anthropic", url)},
                                                 max_concurrent_requests=2), redis_server))
    async with aiohttp.ClientSession() as s:
        streams = [await s.post(a + "/v1/messages", json=STREAM) for _ in range(2)]
        assert [x.status for x in streams] == [200, 200]
        status, headers, body = await post(b)
        assert status == 429 and body["error"]["type"] == "rate_limit_error"
        assert headers["retry-after"] == "1"
        assert (await post(a))[0] == 429
        for x in streams:
            x.close()
    mock.default = Reply(body=OK)
    await until(lambda: r.zcard("t:leases") == 0, "the leases released")
    assert (await post(b))[0] == 200


async def test_killed_instance_slots_come_back_after_the_lease_ttl(
        gateway, provider, redis_server, r, serve, tmp_path):
    mock = MockProvider(Reply(chunks=frames(), hang_after=1))
    url = await provider(mock)
    extra = (f'max_concurrent_requests = 2\n\n[shared_state]\nurl = "{redis_server.url}"\n'
             'key_prefix = "t"\nlease_ttl_secs = 2\n')
    doomed = await serve("-c", write_config(tmp_path, url, extra.replace("\n\n", "\n", 1)))
    survivor = await gateway(shared(make_config({"a": ("anthropic", url)},
                                                max_concurrent_requests=2), redis_server,
                                    lease_ttl_secs=2))
    async with aiohttp.ClientSession() as s:
        streams = [await s.post(doomed.base + "/v1/messages", json=STREAM) for _ in range(2)]
        assert [x.status for x in streams] == [200, 200]
        first = {m: score for m, score in r.zrange("t:leases", 0, -1, withscores=True)}
        assert len(first) == 2
        # the streams outlive one TTL: their leases are renewed, never lost
        await until(lambda: all((r.zscore("t:leases", m) or 0) > s0 for m, s0 in first.items()),
                    "a renewal of both leases", bound=10)
        assert (await post(survivor))[0] == 429
        doomed.proc.send_signal(signal.SIGKILL)
        await doomed.proc.wait()
        for x in streams:
            x.close()
        mock.default = Reply(body=OK)
        # not before: right after the kill the dead instance's leases still hold the slots
        assert (await post(survivor))[0] == 429
        assert r.zcard("t:leases") == 2
        status = await until(_ok(survivor), "the dead instance's slots back", bound=15)
        assert status == 200


def _ok(base: str):
    async def check():
        return (await post(base))[0] == 200 and 200
    return check


async def test_breaker_opened_by_one_instance_is_seen_by_the_other(gateway, provider, redis_server,
                                                                    r):
    mock = MockProvider(Reply(status=500, body={"type": "error", "error": {
        "type": "api_error", "message": "boom"}}))
    url = await provider(mock)
    a, b = await two(gateway, shared(make_config({"a": ("anthropic", url)},
                                                 circuit_breaker_failures=2,
                                                 circuit_breaker_cooldown_secs=60), redis_server))
    assert (await post(a))[0] == 500
    assert (await post(a))[0] == 500
    await until(lambda: r.hget("t:fleet", "a|s") == b"open", "the breaker open in Redis")
    seen = len(mock.received)
    status, _, body = await post(b)
    assert status == 503 and "circuit open" in body["error"]["message"]
    assert len(mock.received) == seen  # B failed fast: the provider never saw it
    assert 'ferryllm_circuit_state{provider="a"} 1.0' in await metrics(b)


async def test_half_open_admits_one_probe_for_the_whole_fleet(gateway, provider, redis_server, r):
    mock = MockProvider(Reply(status=500, body={"type": "error", "error": {
        "type": "api_error", "message": "boom"}}))
    url = await provider(mock)
    a, b = await two(gateway, shared(make_config({"a": ("anthropic", url)},
                                                 circuit_breaker_failures=1,
                                                 circuit_breaker_cooldown_secs=1), redis_server))
    assert (await post(a))[0] == 500
    await until(lambda: r.hget("t:fleet", "a|s") == b"open", "open")
    mock.default = Reply(body=OK, delay=5)  # the probe takes a while
    seen = len(mock.received)
    await until(lambda: r.hget("t:fleet", "a|s") == b"open" and
                int(r.hget("t:fleet", "a|o")) + 1000 <= _redis_ms(r), "cooldown over")
    tasks = [asyncio.ensure_future(post(x)) for x in (a, b, a, b, a, b)]
    await until(lambda: sum(t.done() for t in tasks) == 5, "five answers")
    assert sorted(t.result()[0] for t in tasks if t.done()) == [503] * 5
    assert len(mock.received) == seen + 1  # one probe for the fleet
    assert r.hget("t:fleet", "a|s") == b"half_open"
    assert [t.result()[0] for t in tasks if t.done()] == [503] * 5
    assert (await asyncio.wait_for(asyncio.gather(*tasks), 30))  # the probe answers at last
    assert sorted(t.result()[0] for t in tasks) == [200] + [503] * 5
    await until(lambda: r.hget("t:fleet", "a|s") == b"closed", "closed by the probe")


def _redis_ms(r) -> int:
    sec, usec = r.time()
    return sec * 1000 + usec // 1000


def budget_config(url, redis_server, budget: int):
    config = make_config({"a": ("anthropic", url)})
    return shared(replace(config, auth=AuthConfig(enabled=True, clients=(
        ClientConfig("team-a", CLIENT_KEY, daily_token_budget=budget),))), redis_server)


async def test_budget_spent_across_two_instances(gateway, provider, redis_server, r):
    url = await provider(MockProvider(Reply(body=OK)))
    a, b = await two(gateway, budget_config(url, redis_server, 15))
    key = {"x-api-key": CLIENT_KEY}
    day = _redis_ms(r) // 86_400_000
    assert (await post(a, headers=key))[0] == 200
    await until(lambda: r.hget(f"t:c:team-a:usage:{day}", "total") == b"11", "A's usage counted")
    assert (await post(b, headers=key))[0] == 200  # 11 < 15
    await until(lambda: r.hget(f"t:c:team-a:usage:{day}", "total") == b"22", "B's usage counted")
    for base in (a, b):
        status, headers, body = await post(base, headers=key)
        assert status == 429 and body["error"]["type"] == "rate_limit_error"
        assert "daily token budget" in body["error"]["message"]
        assert 0 < int(headers["retry-after"]) <= 86_400
    assert r.hgetall(f"t:c:team-a:usage:{day}") == {
        b"total": b"22", b"input": b"10", b"output": b"4", b"cache_read": b"6",
        b"cache_write": b"2"}
    text = await metrics(a)
    assert 'ferryllm_client_requests_total{client="team-a",status_class="2xx"} 1.0' in text
    assert 'ferryllm_client_tokens_total{client="team-a",type="input"} 5.0' in text


async def test_no_key_value_in_redis_metrics_or_logs(gateway, provider, redis_server, r, caplog):
    caplog.set_level(logging.INFO, logger="ferryllm")
    url = await provider(MockProvider(Reply(body=OK)))
    config = budget_config(url, redis_server, 1000)
    config = replace(config, server=replace(config.server, rate_limit_per_minute=100,
                                            max_concurrent_requests=10))
    config = replace(config, auth=replace(config.auth, per_key_rate_limit_per_minute=50,
                                          clients=(replace(config.auth.clients[0],
                                                           tokens_per_minute=100,
                                                           max_concurrent_requests=3),)))
    a = await gateway(config)
    for _ in range(3):
        assert (await post(a, headers={"authorization": f"Bearer {CLIENT_KEY}"}))[0] == 200
    await until(lambda: r.exists("t:c:team-a:tpm"), "usage recorded")
    dump = []
    for k in r.scan_iter("*"):
        dump.append(k)
        kind = r.type(k)
        if kind == b"hash":
            dump += [x for kv in r.hgetall(k).items() for x in kv]
        elif kind == b"zset":
            dump += r.zrange(k, 0, -1)
    assert dump and {b"t:rate", b"t:c:team-a:rate", b"t:c:team-a:tpm"} <= set(dump)
    blob = b"\n".join(dump) + (await metrics(a)).encode() + caplog.text.encode()
    for secret in (CLIENT_KEY, PROVIDER_KEY):
        assert secret.encode() not in blob
        assert secret[4:].encode() not in blob
    assert "client=team-a" in caplog.text


# ---------------------------------------------------------------- Redis failures


async def load(bases: list[str], n: int, during=None) -> list[int]:
    """`n` requests spread over the instances, JSON and stream; `during` runs mid-load."""
    async def one(i: int) -> int:
        base = bases[i % len(bases)]
        path, body = (("/v1/chat/completions", CHAT) if i % 3 == 0 else
                      ("/v1/messages", STREAM if i % 3 == 1 else MSG))
        async with aiohttp.ClientSession() as s:
            async with s.post(base + path, json=body) as resp:
                await resp.read()
                return resp.status
    statuses = list(await asyncio.gather(*(one(i) for i in range(n // 2))))
    if during is not None:
        during()
    statuses += await asyncio.wait_for(
        asyncio.gather(*(one(i) for i in range(n // 2, n))), timeout=20)
    return statuses


def redis_failure_config(url, redis_server, on_failure: str):
    return shared(make_config({"a": ("anthropic", url)}, rate_limit_per_minute=10_000,
                              max_concurrent_requests=100), redis_server,
                  on_failure=on_failure, timeout_ms=50)


@pytest.mark.parametrize("how", ["freeze", "kill"])
async def test_redis_failure_mid_load_fails_no_request_with_local(gateway, provider, redis_server,
                                                                  r, caplog, how):
    caplog.set_level(logging.WARNING, logger="ferryllm.shared_state")
    url = await provider(MockProvider(Reply(body=OK)))
    mock_stream = MockProvider(Reply(chunks=frames()))
    surl = await provider(mock_stream)
    config = redis_failure_config(url, redis_server, "local")
    config = replace(config, providers=(*config.providers, replace(config.providers[0],
                                                                    name="s", base_url=surl)))
    a, b = await two(gateway, config)
    statuses = await load([a, b], 40, getattr(redis_server, how))
    assert statuses == [200] * 40  # nothing failed, nothing hung (bounded by wait_for)
    text = await metrics(a)
    assert "ferryllm_shared_state_up 0.0" in text
    assert "ferryllm_shared_state_local_admissions_total 0.0" not in text
    downs = [m for m in caplog.messages if "shared state unavailable" in m]
    assert len(downs) <= 2  # one line per instance, not one per request
    if how == "freeze":
        redis_server.thaw()
    else:
        redis_server.start()
    await until(lambda: _up(a), "A back on shared state")
    await until(lambda: _up(b), "B back on shared state")
    assert any("available again" in m for m in caplog.messages)


async def _up(base: str) -> bool:
    return "ferryllm_shared_state_up 1.0" in await metrics(base)


async def test_sharing_resumes_after_redis_returns(gateway, provider, redis_server, r):
    url = await provider(MockProvider(Reply(body=OK)))
    a, b = await two(gateway, shared(make_config({"a": ("anthropic", url)},
                                                 rate_limit_per_minute=4), redis_server,
                                     timeout_ms=50))
    redis_server.freeze()
    # each instance alone: its own limit of 4
    assert [(await post(a))[0] for _ in range(5)] == [200] * 4 + [429]
    assert [(await post(b))[0] for _ in range(5)] == [200] * 4 + [429]
    redis_server.thaw()
    await until(lambda: _up(a), "A shared again")
    await until(lambda: _up(b), "B shared again")
    # the call that timed out ran when Redis woke (it took a token): start from a full bucket
    r.delete("t:rate")
    statuses = [(await post(a if i % 2 else b))[0] for i in range(8)]
    assert statuses.count(200) == 4  # one limit for both again


@pytest.mark.parametrize("how", ["freeze", "kill"])
async def test_redis_failure_with_reject_answers_503_in_the_entry_shape(
        gateway, provider, redis_server, how):
    url = await provider(MockProvider(Reply(body=OK)))
    a = await gateway(redis_failure_config(url, redis_server, "reject"))
    assert (await post(a))[0] == 200
    getattr(redis_server, how)()
    status, headers, body = await asyncio.wait_for(post(a), 5)
    assert status == 503 and body["type"] == "error"
    assert body["error"]["type"] == "overloaded_error" and "Redis" in body["error"]["message"]
    status, _, body = await asyncio.wait_for(post(a, "/v1/chat/completions", CHAT), 5)
    assert status == 503 and set(body["error"]) == {"message", "type", "param", "code"}
    if how == "freeze":
        redis_server.thaw()
    else:
        redis_server.start()
    await until(_ok(a), "served again once Redis answers")


async def test_a_key_cooldown_set_by_one_instance_holds_on_the_other(pool_gateway, provider,
                                                                     redis_server, r):
    from tests.e2e.test_key_pools import KEY_A, KEY_B, keys_sent, pool_config, rate_limited
    mock = MockProvider(Reply(body=OK))
    mock.by_key[KEY_A] = rate_limited("30")
    config = shared(pool_config(await provider(mock)), redis_server)
    (a, _), (b, _) = await pool_gateway(config), await pool_gateway(config)
    assert (await post(a))[0] == 200
    assert keys_sent(mock) == [KEY_A, KEY_B]  # A: the 429 cooled key 0, moved on at once
    assert 29_000 < int(r.hget("t:fleet", "p#0")) - _redis_ms(r) <= 30_000
    assert (await post(b))[0] == 200
    assert keys_sent(mock) == [KEY_A, KEY_B, KEY_B]  # B knew: straight to the second key
    fleet = r.hgetall("t:fleet")
    assert KEY_A.encode() not in b"".join(k + v for k, v in fleet.items())


async def test_a_stream_cut_short_counts_against_the_budget(gateway, provider, redis_server, r):
    mock = MockProvider(Reply(chunks=frames(), reset_after=5))  # dropped mid-text
    url = await provider(mock)
    a = await gateway(budget_config(url, redis_server, 1000))
    async with aiohttp.ClientSession() as s:
        async with s.post(a + "/v1/messages", json=STREAM,
                          headers={"x-api-key": CLIENT_KEY}) as resp:
            body = await resp.read()
    assert resp.status == 200 and b"error" in body  # the cut, in-band
    day = _redis_ms(r) // 86_400_000
    await until(lambda: r.hget(f"t:c:team-a:usage:{day}", "input") == b"25", "the usage counted")
    assert int(r.hget(f"t:c:team-a:usage:{day}", "output")) >= 1


async def test_workers_of_one_serve_share_one_limit(provider, redis_server, serve, tmp_path):
    url = await provider(MockProvider(Reply(body=OK)))
    extra = (f'rate_limit_per_minute = 10\n[shared_state]\nurl = "{redis_server.url}"\n'
             'key_prefix = "w"\ntimeout_ms = 500\n')
    served = await serve("-c", write_config(tmp_path, url, extra), "--workers", "2")
    await served.workers_serving(2)
    statuses, processes = [], set()
    for _ in range(30):  # a new connection each: the kernel spreads them over the workers
        async with aiohttp.ClientSession() as s:
            async with s.post(served.base + "/v1/messages", json=MSG) as resp:
                statuses.append(resp.status)
                processes.add(resp.headers["request-id"][:16])  # req_ + the process's prefix
    assert statuses.count(200) == 10 and statuses.count(429) == 20
    assert len(processes) == 2  # both workers answered
    assert await served.stop() == 0  # SIGTERM: the supervisor stops its workers
