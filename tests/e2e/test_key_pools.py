"""Key pools through the real server, with official SDK clients: a 429 or 401 on one key moves the
request to another key with no client-visible failure; all keys cooling → 429 with the shortest
retry-after; all keys out → 502 naming the provider; no key value in metrics, logs or errors."""
from __future__ import annotations

import logging
from dataclasses import replace

import aiohttp
import pytest

from ferryllm.config import KeyConfig
from ferryllm.server import GATEWAY, build_app
from tests.conftest import make_config
from tests.mockprovider import MockProvider, Reply, sent_key, sse_frames
from tests.streamsummary import FIXTURES

KEY_A, KEY_B, KEY_C = "sk-pool-aaaa-1111", "sk-pool-bbbb-2222", "sk-pool-cccc-3333"
MSG = {"model": "claude-x", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
OK = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
      "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
      "usage": {"input_tokens": 5, "output_tokens": 2}}


def error(status: int, kind: str, message: str = "no", retry_after: str | None = None) -> Reply:
    return Reply(status=status, body={"type": "error", "error": {"type": kind, "message": message}},
                 headers={"retry-after": retry_after} if retry_after else {})


def rate_limited(retry_after: str) -> Reply:
    return error(429, "rate_limit_error", "slow down", retry_after)


UNAUTHORIZED = error(401, "authentication_error", "invalid x-api-key")


def pool_config(url: str, kind: str = "anthropic", keys=None, fallback_url: str | None = None,
                **server):
    providers = {"p": (kind, url)}
    routes = None
    if fallback_url:
        providers["backup"] = (kind, fallback_url)
        routes = [{"match": "*", "provider": "p", "fallback_providers": ["backup"]}]
    config = make_config(providers, routes, **server)
    keys = keys or (KeyConfig("0", KEY_A), KeyConfig("second", KEY_B))
    pooled = replace(config.providers[0], api_key=None, keys=tuple(keys))
    return replace(config, providers=(pooled, *config.providers[1:]))


@pytest.fixture
async def pool_gateway(aiohttp_server):
    """`base, gw = await pool_gateway(config)`: ferryllm whose key choice takes the first key
    that is free (random source fixed at 0)."""
    async def start(config):
        app = build_app(config)
        app[GATEWAY].relay.rand = lambda: 0.0
        server = await aiohttp_server(app)
        return f"http://127.0.0.1:{server.port}", app[GATEWAY]
    return start


def keys_sent(mock: MockProvider) -> list[str]:
    return [sent_key({k.lower(): v for k, v in r.headers.items()}) for r in mock.received]


async def metrics_text(base: str) -> str:
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/metrics") as r:
            return await r.text()


async def test_429_moves_to_the_next_key_at_once_and_cools_the_first(pool_gateway, provider, sdk,
                                                                     caplog):
    mock = MockProvider(Reply(body=OK))
    mock.by_key[KEY_A] = rate_limited("30")
    base, _ = await pool_gateway(pool_config(await provider(mock)))
    client = sdk.anthropic(base)
    with caplog.at_level(logging.INFO, logger="ferryllm"):
        msg = await client.messages.create(**MSG)
        assert msg.content[0].text == "ok"
        assert keys_sent(mock) == [KEY_A, KEY_B]
        await client.messages.create(**MSG)  # the first key is cooling: straight to the second
    assert keys_sent(mock) == [KEY_A, KEY_B, KEY_B]
    metrics = await metrics_text(base)
    assert 'ferryllm_key_events_total{event="cooled",key="0",provider="p"} 1.0' in metrics
    assert 'ferryllm_key_events_total{event="selected",key="second",provider="p"} 2.0' in metrics
    assert 'ferryllm_retries_total{provider="p"} 0.0' in metrics  # a key move is not a retry
    access = [r.getMessage() for r in caplog.records if r.name == "ferryllm.access"]
    assert len(access) == 2 and all("key=second" in line and "status=200" in line
                                    for line in access)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "key 0 rate-limited" in logged
    for secret in (KEY_A, KEY_B):
        assert secret not in logged and secret not in metrics


async def test_401_takes_the_key_out_for_a_stream_without_client_failure(pool_gateway, provider,
                                                                        sdk, caplog):
    frames = sse_frames((FIXTURES / "openai" / "openai_text.sse").read_text(encoding="utf-8"))
    mock = MockProvider(Reply(chunks=frames))
    mock.by_key[KEY_A] = Reply(status=401, body={"error": {"message": f"bad key {KEY_A}",
                                                           "type": "invalid_request_error"}})
    base, gw = await pool_gateway(pool_config(await provider(mock), kind="openai"))
    client = sdk.openai(base)
    with caplog.at_level(logging.INFO, logger="ferryllm"):
        for _ in range(2):
            stream = await client.chat.completions.create(
                model="gpt-x", stream=True, messages=[{"role": "user", "content": "hi"}])
            text = "".join([c.choices[0].delta.content or "" async for c in stream
                            if c.choices])
            assert text
    assert keys_sent(mock) == [KEY_A, KEY_B, KEY_B]  # out until reload
    assert gw.relay.key_pools["p"].out == [True, False]
    metrics = await metrics_text(base)
    assert 'ferryllm_key_events_total{event="out",key="0",provider="p"} 1.0' in metrics
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "key 0 rejected by the provider (HTTP 401): out until reload" in logged
    assert KEY_A not in logged and KEY_B not in logged


async def test_all_keys_cooling_is_429_with_the_shortest_retry_after(pool_gateway, provider):
    mock = MockProvider(Reply(body=OK))
    mock.by_key[KEY_A] = rate_limited("30")
    mock.by_key[KEY_B] = rate_limited("7")
    base, _ = await pool_gateway(pool_config(await provider(mock)))
    async with aiohttp.ClientSession() as s:
        for asked in (2, 2):  # the second request finds both cooling: the provider is not asked
            async with s.post(base + "/v1/messages", json=MSG) as r:
                body = await r.json()
                assert r.status == 429 and body["error"]["type"] == "rate_limit_error"
                assert r.headers["retry-after"] == "7"
                assert "provider 'p'" in body["error"]["message"]
            assert len(mock.received) == asked


async def test_all_keys_out_is_502_naming_the_provider_then_the_fallback_serves(
        pool_gateway, provider):
    mock = MockProvider(UNAUTHORIZED)
    backup = MockProvider(Reply(body=OK))
    url, backup_url = await provider(mock), await provider(backup)
    base, _ = await pool_gateway(pool_config(url))
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1/messages", json=MSG) as r:
            body = await r.json()
            assert r.status == 502 and "provider 'p'" in body["error"]["message"]
            assert "every key was rejected" in body["error"]["message"]
    assert keys_sent(mock) == [KEY_A, KEY_B]

    base, _ = await pool_gateway(pool_config(url, fallback_url=backup_url))
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1/messages", json=MSG) as r:
            assert r.status == 200 and (await r.json())["content"][0]["text"] == "ok"


async def test_an_upstream_error_echoing_any_pool_key_is_redacted(pool_gateway, provider):
    mock = MockProvider(error(400, "invalid_request_error", f"keys {KEY_A} and {KEY_B} and x"))
    base, _ = await pool_gateway(pool_config(await provider(mock)))
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1/messages", json=MSG) as r:
            text = await r.text()
    assert r.status == 400 and "keys *** and *** and x" in text


async def test_key_rate_limit_and_concurrency_cap_spread_the_load(pool_gateway, provider):
    mock = MockProvider(Reply(body=OK))
    keys = (KeyConfig("0", KEY_A, rate_limit_per_minute=1), KeyConfig("1", KEY_B),
            KeyConfig("2", KEY_C))
    base, _ = await pool_gateway(pool_config(await provider(mock), keys=keys))
    async with aiohttp.ClientSession() as s:
        for _ in range(3):
            async with s.post(base + "/v1/messages", json=MSG) as r:
                assert r.status == 200
    assert keys_sent(mock) == [KEY_A, KEY_B, KEY_B]  # key 0 spent its one request a minute


async def test_count_tokens_uses_a_key_that_is_still_in(pool_gateway, provider, sdk):
    mock = MockProvider(Reply(body=OK))
    mock.by_key[KEY_A] = UNAUTHORIZED
    base, _ = await pool_gateway(pool_config(await provider(mock)))
    client = sdk.anthropic(base)
    await client.messages.create(**MSG)  # key 0 is taken out
    mock.by_key[KEY_B] = Reply(body={"input_tokens": 42})
    counted = await client.messages.count_tokens(model="claude-x", messages=MSG["messages"])
    assert counted.input_tokens == 42
    assert keys_sent(mock) == [KEY_A, KEY_B, KEY_B]
    assert mock.received[-1].path == "/v1/messages/count_tokens"
