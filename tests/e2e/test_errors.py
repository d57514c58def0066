"""Bad input gets a clear, protocol-shaped error from the entry that received it."""
from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from tests.conftest import make_config
from tests.mockprovider import MockProvider, Reply

ANTHROPIC_BODY = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
OPENAI_BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def base(gateway, provider):
    url = await provider(MockProvider())
    return await gateway(make_config({"p": ("openai", url)}, body_limit_mb=0.01))


async def post(url: str, data: bytes, headers: dict | None = None):
    async with aiohttp.ClientSession() as s:
        async with s.post(url, data=data, headers={"content-type": "application/json", **(headers or {})}) as r:
            return r.status, r.headers, await r.json(loads=orjson.loads)


def assert_anthropic(body: dict, kind: str) -> str:
    assert body["type"] == "error" and body["error"]["type"] == kind
    return body["error"]["message"]


def assert_openai(body: dict) -> dict:
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


async def test_malformed_json(base):
    status, headers, body = await post(base + "/v1/messages", b"{nope")
    assert status == 400 and "JSON" in assert_anthropic(body, "invalid_request_error")
    assert headers["request-id"]
    status, _, body = await post(base + "/v1/chat/completions", b"{nope")
    assert status == 400 and "JSON" in assert_openai(body)["message"]


async def test_body_must_be_an_object(base):
    status, _, body = await post(base + "/v1/messages", b"[1,2]")
    assert status == 400
    assert "object" in assert_anthropic(body, "invalid_request_error")


@pytest.mark.parametrize("field,value", [("max_tokens", "ten"), ("messages", "hi"), ("model", 5)])
async def test_wrong_types_name_the_field_anthropic(base, field, value):
    status, _, body = await post(base + "/v1/messages", orjson.dumps({**ANTHROPIC_BODY, field: value}))
    assert status == 400
    assert field in assert_anthropic(body, "invalid_request_error")


@pytest.mark.parametrize("missing", ["model", "messages", "max_tokens"])
async def test_missing_fields_anthropic(base, missing):
    body = {k: v for k, v in ANTHROPIC_BODY.items() if k != missing}
    status, _, out = await post(base + "/v1/messages", orjson.dumps(body))
    assert status == 400 and missing in assert_anthropic(out, "invalid_request_error")


@pytest.mark.parametrize("missing", ["model", "messages"])
async def test_missing_fields_openai(base, missing):
    body = {k: v for k, v in OPENAI_BODY.items() if k != missing}
    status, _, out = await post(base + "/v1/chat/completions", orjson.dumps(body))
    assert status == 400
    err = assert_openai(out)
    assert missing in err["message"] or err["param"] == missing


async def test_n_greater_than_one_is_refused_plainly(base):
    status, _, out = await post(base + "/v1/chat/completions", orjson.dumps({**OPENAI_BODY, "n": 2}))
    assert status == 400 and assert_openai(out)["param"] == "n"


async def test_body_over_limit_is_413(base):
    big = orjson.dumps({**ANTHROPIC_BODY, "messages": [{"role": "user", "content": "x" * 20000}]})
    status, _, out = await post(base + "/v1/messages", big)
    assert status == 413
    assert_anthropic(out, "request_too_large")
    status, _, out = await post(base + "/v1/chat/completions", big)
    assert status == 413
    assert_openai(out)


async def test_unknown_path_is_protocol_shaped(base):
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/v1/nothing") as r:
            assert r.status == 404
            assert_openai(await r.json())


async def test_wrong_method_is_a_protocol_shaped_405(base):
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/v1/messages") as r:
            assert r.status == 405 and r.headers["request-id"]
            assert "not allowed" in assert_anthropic(await r.json(), "invalid_request_error")
        async with s.put(base + "/v1/chat/completions") as r:
            assert r.status == 405
            assert assert_openai(await r.json())["type"] == "invalid_request_error"
        async with s.post(base + "/health") as r:
            assert r.status == 405
        async with s.post(base + "/v1/messages/nothing") as r:
            assert r.status == 404
            assert_anthropic(await r.json(), "not_found_error")


async def test_metrics_switched_off_is_a_protocol_shaped_404(gateway, provider):
    from dataclasses import replace
    cfg = make_config({"p": ("openai", await provider(MockProvider()))})
    base = await gateway(replace(cfg, metrics=replace(cfg.metrics, enabled=False)))
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/metrics") as r:
            assert r.status == 404
            assert_openai(await r.json())


async def test_health_and_head_root(base):
    async with aiohttp.ClientSession() as s:
        for path in ("/health", "/healthz", "/readyz"):
            async with s.get(base + path) as r:
                assert r.status == 200
        async with s.head(base + "/") as r:
            assert r.status == 200


async def test_a_bug_is_a_protocol_shaped_500(gateway, provider, monkeypatch, caplog):
    from ferryllm.protocols.openai.adapter import OpenAIAdapter

    def broken(self, body, req):
        raise KeyError("choices")

    monkeypatch.setattr(OpenAIAdapter, "decode_response", broken)
    url = await provider(MockProvider(Reply(body={"choices": []})))
    base = await gateway(make_config({"p": ("openai", url)}))
    status, _, body = await post(base + "/v1/messages", orjson.dumps(ANTHROPIC_BODY))
    assert status == 500
    assert assert_anthropic(body, "api_error") == "internal gateway error"
    assert any("KeyError" in r.getMessage() for r in caplog.records)


async def test_chunked_body_over_limit_is_413(gateway, provider):
    """No content-length to check first: the body's own length is (it arrives in one piece)."""
    mock = MockProvider(Reply(body={"choices": [{"message": {"content": "hi"}}]}))
    base = await gateway(make_config({"p": ("openai", await provider(mock))}, body_limit_mb=0.01))
    host, port = base.removeprefix("http://").split(":")
    big = orjson.dumps({**ANTHROPIC_BODY, "messages": [{"role": "user", "content": "x" * 20000}]})
    for body, want in ((big, b"413"), (orjson.dumps(ANTHROPIC_BODY), b"200")):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.close()
        assert head.startswith(b"HTTP/1.1 " + want), head
