"""Production controls through the real server: auth, limits, permits held by streams, timeouts,
retry rules, breaker probe, metrics, access log and no secret anywhere."""
from __future__ import annotations

import asyncio
import logging
import re

import aiohttp
import pytest

from ferryllm.config import AuthConfig, Config
from tests.conftest import make_config
from tests.mockprovider import MockProvider, Reply, sse_frames
from tests.streamsummary import FIXTURES

CLIENT_KEY = "ck-secret-client-key-7f3a"
MSG = {"model": "claude-x", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
OK = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
      "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
      "usage": {"input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 3,
                "cache_creation_input_tokens": 1}}


def frames(name: str) -> list[bytes]:
    return sse_frames((FIXTURES / "anthropic" / f"{name}.sse").read_text(encoding="utf-8"))


def with_auth(config: Config, **kw) -> Config:
    from dataclasses import replace
    return replace(config, auth=AuthConfig(enabled=True, keys=(CLIENT_KEY,), **kw))


async def post(base: str, path: str = "/v1/messages", body: dict = MSG, headers: dict | None = None):
    async with aiohttp.ClientSession() as s:
        async with s.post(base + path, json=body, headers=headers or {}) as r:
            return r.status, r.headers, await r.json()


async def get_text(base: str, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s:
        async with s.get(base + path) as r:
            return r.status, await r.text()


async def test_auth_required_and_protocol_shaped(gateway, provider, sdk):
    url = await provider(MockProvider(Reply(body=OK)))
    base = await gateway(with_auth(make_config({"a": ("anthropic", url)})))
    status, headers, body = await post(base)
    assert status == 401 and body["error"]["type"] == "authentication_error"
    status, _, body = await post(base, "/v1/chat/completions",
                                 {"model": "m", "messages": [{"role": "user", "content": "x"}]},
                                 {"authorization": "Bearer wrong"})
    assert status == 401 and body["error"]["type"] == "authentication_error"
    assert set(body["error"]) == {"message", "type", "param", "code"}
    msg = await sdk.anthropic(base, api_key=CLIENT_KEY).messages.create(**MSG)  # x-api-key
    assert msg.content[0].text == "ok"
    status, _, _ = await post(base, headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert status == 200
    for path in ("/health", "/healthz", "/readyz", "/metrics"):
        assert (await get_text(base, path))[0] == 200


async def test_global_rate_limit_is_429_with_retry_after(gateway, provider):
    url = await provider(MockProvider(Reply(body=OK)))
    base = await gateway(make_config({"a": ("anthropic", url)}, rate_limit_per_minute=2))
    assert (await post(base))[0] == 200
    assert (await post(base))[0] == 200
    status, headers, body = await post(base)
    assert status == 429 and int(headers["retry-after"]) >= 1
    assert body["error"]["type"] == "rate_limit_error"
    status, _, body = await post(base, "/v1/chat/completions",
                                 {"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert status == 429 and body["error"]["type"] == "rate_limit_error"


async def test_per_key_rate_limit(gateway, provider):
    url = await provider(MockProvider(Reply(body=OK)))
    base = await gateway(with_auth(make_config({"a": ("anthropic", url)}),
                                   per_key_rate_limit_per_minute=1))
    auth = {"x-api-key": CLIENT_KEY}
    assert (await post(base, headers=auth))[0] == 200
    assert (await post(base, headers=auth))[0] == 429


async def test_stream_holds_its_concurrency_permit_until_it_ends(gateway, provider):
    mock = MockProvider(Reply(chunks=frames("text"), hang_after=3))
    url = await provider(mock)
    base = await gateway(make_config({"a": ("anthropic", url)}, max_concurrent_requests=1))
    async with aiohttp.ClientSession() as s:
        first = await s.post(base + "/v1/messages", json={**MSG, "stream": True})
        await first.content.readany()
        status, headers, body = await post(base)  # the stream still holds the only permit
        assert status == 429 and body["error"]["type"] == "rate_limit_error"
        first.close()
    await asyncio.wait_for(mock.stream_closed.wait(), 5)
    mock.default = Reply(body=OK)
    for _ in range(100):  # the handler's cleanup releases the permit right after the upstream closes
        status, _, _ = await post(base)
        if status != 429:
            break
        await asyncio.sleep(0.02)
    assert status == 200


async def test_non_stream_timeout_is_504(gateway, provider):
    url = await provider(MockProvider(Reply(body=OK, delay=2)))
    base = await gateway(make_config({"a": ("anthropic", url)}, request_timeout_secs=0.2))
    status, _, body = await post(base)
    assert status == 504 and body["error"]["type"] == "api_error"


async def test_retry_500_then_success_and_metrics(gateway, provider):
    mock = MockProvider().then(Reply(status=500, body={"error": {"message": "oops"}}),
                               Reply(status=429, headers={"retry-after": "0"}, body={}),
                               Reply(body=OK))
    url = await provider(mock)
    base = await gateway(make_config({"a": ("anthropic", url)}, retry_attempts=2, retry_backoff_ms=1))
    status, _, body = await post(base)
    assert status == 200 and body["content"][0]["text"] == "ok"
    assert len(mock.received) == 3
    _, metrics = await get_text(base, "/metrics")
    assert 'ferryllm_retries_total{provider="a"} 2.0' in metrics
    assert 'ferryllm_requests_total{entry="anthropic",provider="a",status_class="2xx"} 1.0' in metrics
    assert 'ferryllm_tokens_total{provider="a",type="cache_read"} 3.0' in metrics
    assert 'ferryllm_upstream_errors_total{kind="status_5xx",provider="a"} 1.0' in metrics


@pytest.mark.parametrize("status", [400, 404, 413, 422])
async def test_client_errors_are_never_retried(gateway, provider, status):
    mock = MockProvider(Reply(status=status, body={"type": "error", "error": {
        "type": "invalid_request_error", "message": "prompt is too long"}}))
    url = await provider(mock)
    base = await gateway(make_config({"a": ("anthropic", url)}, retry_attempts=3, retry_backoff_ms=1))
    got, _, body = await post(base)
    assert got == status and "prompt is too long" in body["error"]["message"]
    assert len(mock.received) == 1


async def test_half_open_admits_exactly_one_probe(gateway, provider):
    mock = MockProvider().then(Reply(status=500, body={}))
    url = await provider(mock)
    base = await gateway(make_config({"a": ("anthropic", url)}, circuit_breaker_failures=1,
                                     circuit_breaker_cooldown_secs=0.2))
    assert (await post(base))[0] == 500
    status, _, body = await post(base)  # open: fail fast, the provider is not called
    assert status == 503 and len(mock.received) == 1
    assert (await get_text(base, "/readyz"))[0] == 503
    await asyncio.sleep(0.3)  # let the cooldown pass
    mock.default = Reply(body=OK, delay=0.5)  # a slow probe, so the two requests overlap
    results = await asyncio.gather(post(base), post(base))
    assert sorted(r[0] for r in results) == [200, 503]
    assert len(mock.received) == 2  # exactly one probe went through
    assert (await get_text(base, "/readyz"))[0] == 200


async def test_request_id_echoed_and_access_line(gateway, provider, caplog):
    url = await provider(MockProvider(Reply(body=OK)))
    base = await gateway(make_config({"a": ("anthropic", url)}))
    caplog.set_level(logging.INFO, logger="ferryllm.access")
    status, headers, _ = await post(base, headers={"x-request-id": "trace-42"})
    assert status == 200 and headers["x-request-id"] == "trace-42"
    lines = [r.getMessage() for r in caplog.records if r.name == "ferryllm.access"]
    assert len(lines) == 1
    line = lines[0]
    for field in ("request_id=trace-42", "entry=anthropic", "display_model=claude-x",
                  "provider=a", "stream=false", "status=200", "input_tokens=5", "output_tokens=2",
                  "retries=0"):
        assert field in line, field


async def test_oversized_headers_are_refused(gateway, provider):
    url = await provider(MockProvider(Reply(body=OK)))
    base = await gateway(make_config({"a": ("anthropic", url)}))
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1/messages", json=MSG, headers={"x-big": "a" * 40000}) as r:
            assert 400 <= r.status < 500


async def test_no_secret_in_logs_metrics_or_errors(gateway, provider, sdk, caplog):
    caplog.set_level(logging.DEBUG, logger="ferryllm")
    echo = MockProvider().then(
        Reply(status=401, body={"error": {"message": "Incorrect API key sk-provider-a"}}),
        Reply(status=400, body={"error": {"message": "bad request for key sk-provider-a"}}),
        Reply(chunks=frames("text")))
    url = await provider(echo)
    base = await gateway(with_auth(make_config({"a": ("anthropic", url)})))
    bodies = []
    for headers in ({}, {"x-api-key": "ck-wrong-key"}, {"x-api-key": CLIENT_KEY},
                    {"authorization": f"Bearer {CLIENT_KEY}"}):
        bodies.append(str(await post(base, headers=headers)))
    client = sdk.openai(base, api_key=CLIENT_KEY)
    stream = await client.chat.completions.create(
        model="m", stream=True, messages=[{"role": "user", "content": "secret prompt text"}])
    async for _ in stream:
        pass
    _, metrics = await get_text(base, "/metrics")
    haystack = "\n".join(bodies) + metrics + "\n".join(
        r.getMessage() for r in caplog.records) + caplog.text
    for secret in (CLIENT_KEY, "sk-provider-a", "secret prompt text"):
        assert secret not in haystack, secret
    assert re.search(r"credentials", bodies[2])


async def test_slow_request_body_is_cut_with_408(gateway, provider):
    url = await provider(MockProvider(Reply(body=OK)))
    base = await gateway(make_config({"a": ("anthropic", url)}, request_timeout_secs=0.3))
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                 b"content-length: 100\r\n\r\n{\"model\":")  # and then nothing more
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408")


async def test_concurrency_is_bounded_by_default():
    from ferryllm.config import ServerConfig
    assert ServerConfig().max_concurrent_requests == 4096


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
async def test_upstream_user_agent_is_ferryllm_once_and_config_replaces_it(gateway, provider, kind):
    """Every upstream request names ferryllm (not aiohttp) in exactly one User-Agent; a provider's
    configured header replaces it whatever case the config spells it in."""
    from dataclasses import replace

    from ferryllm import __version__
    reply = Reply(body=OK if kind == "anthropic" else {
        "id": "c1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                     "finish_reason": "stop"}]})
    mock = MockProvider(reply)
    cfg = make_config({"p": (kind, await provider(mock))})
    plain = await gateway(cfg)
    assert (await post(plain))[0] == 200
    custom = await gateway(replace(cfg, providers=(replace(
        cfg.providers[0], headers=(("user-agent", "team-bot/2"), ("x-team", "core"))),)))
    assert (await post(custom))[0] == 200

    def agents(received) -> list[bytes]:
        return [v for k, v in received.raw_headers if k.lower() == b"user-agent"]
    assert agents(mock.received[0]) == [f"ferryllm/{__version__}".encode()]
    assert agents(mock.received[1]) == [b"team-bot/2"]
    assert mock.received[1].headers["x-team"] == "core"


def test_configured_header_names_are_lower_cased():
    from ferryllm.config_values import headers
    assert headers({"User-Agent": "a", "X-Team": "b"}) == (("user-agent", "a"), ("x-team", "b"))
