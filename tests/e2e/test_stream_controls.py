"""The stream pump under misbehaving providers: pings while silent, in-band errors after the first
byte, HTTP errors before it, retries and fallback while nothing reached the client, and a client
disconnect that cancels the provider request at once."""
from __future__ import annotations

import asyncio

import aiohttp
import anthropic
import orjson
import pytest

from ferryllm.sse import SSEParser
from tests.conftest import make_config
from tests.mockprovider import MockProvider, Reply, sse_frames
from tests.streamsummary import FIXTURES

BODY = {"model": "claude-x", "max_tokens": 64, "stream": True,
        "messages": [{"role": "user", "content": "hi"}]}


def frames(name: str) -> list[bytes]:
    return sse_frames((FIXTURES / "anthropic" / f"{name}.sse").read_text(encoding="utf-8"))


async def raw_stream(base: str, body: dict = BODY, path: str = "/v1/messages"):
    """(status, [(event, data)]) of a streamed request, read to the end."""
    async with aiohttp.ClientSession() as s:
        async with s.post(base + path, json=body) as r:
            parser = SSEParser()
            events = []
            async for chunk in r.content.iter_any():
                events.extend(parser.feed(chunk))
            events.extend(parser.close())
            return r.status, [(e.event.decode(), e.data) for e in events]


async def test_pings_while_provider_is_silent_before_first_byte(gateway, provider):
    mock = MockProvider(Reply(chunks=frames("text"), delay=0.6))
    url = await provider(mock)
    base = await gateway(make_config({"a": ("anthropic", url)}, keepalive_interval_secs=0.1))
    status, events = await raw_stream(base)
    names = [e for e, _ in events]
    assert status == 200
    first_start = names.index("message_start")
    assert names[:first_start] and set(names[:first_start]) == {"ping"}
    assert names[-1] == "message_stop"


async def test_openai_client_gets_comment_keepalive(gateway, provider):
    mock = MockProvider(Reply(chunks=frames("text"), delay=0.6))
    url = await provider(mock)
    base = await gateway(make_config({"a": ("anthropic", url)}, keepalive_interval_secs=0.1))
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1/chat/completions", json={
                "model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}) as r:
            body = await r.read()
    assert body.startswith(b": keep-alive\n\n")
    assert body.endswith(b"data: [DONE]\n\n")


async def test_idle_timeout_after_first_byte_is_in_band_error(gateway, provider):
    mock = MockProvider(Reply(chunks=frames("text"), hang_after=3))
    url = await provider(mock)
    base = await gateway(make_config({"a": ("anthropic", url)}, stream_idle_timeout_secs=0.3))
    status, events = await raw_stream(base)
    names = [e for e, _ in events]
    assert status == 200
    assert names[-1] == "error" and "message_stop" not in names
    err = orjson.loads(events[-1][1])
    assert err["type"] == "error" and err["error"]["type"] == "api_error"
    await asyncio.wait_for(mock.stream_closed.wait(), 5)


async def test_connection_reset_mid_stream_is_in_band_error(gateway, provider):
    url = await provider(MockProvider(Reply(chunks=frames("text"), reset_after=4)))
    base = await gateway(make_config({"a": ("anthropic", url)}))
    status, events = await raw_stream(base)
    assert status == 200 and events[-1][0] == "error"
    assert "message_stop" not in [e for e, _ in events]


async def test_provider_error_event_mid_stream_reaches_client(gateway, provider, sdk):
    url = await provider(MockProvider(Reply(chunks=frames("error_overloaded"))))
    base = await gateway(make_config({"a": ("anthropic", url)}))
    client = sdk.anthropic(base)
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client.messages.stream(model="claude-x", max_tokens=10,
                                          messages=[{"role": "user", "content": "hi"}]) as stream:
            await stream.get_final_message()
    assert "Overloaded" in str(info.value)


async def test_provider_error_before_first_byte_is_http_error(gateway, provider):
    url = await provider(MockProvider(Reply(status=529, body={
        "type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})))
    base = await gateway(make_config({"a": ("openai", url)}))
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1/messages", json=BODY) as r:
            assert r.status == 529
            body = await r.json()
    assert body["error"]["type"] == "overloaded_error"


async def test_stream_survives_first_attempt_503_through_retry(gateway, provider, sdk):
    mock = MockProvider().then(
        Reply(status=503, body={"error": {"message": "busy"}}), Reply(chunks=frames("text")))
    url = await provider(mock)
    base = await gateway(make_config({"a": ("anthropic", url)}, retry_attempts=2,
                                     retry_backoff_ms=1))
    client = sdk.anthropic(base)
    async with client.messages.stream(model="claude-x", max_tokens=10,
                                      messages=[{"role": "user", "content": "hi"}]) as stream:
        msg = await stream.get_final_message()
    assert msg.stop_reason == "end_turn" and msg.content[0].text
    assert len(mock.received) == 2


async def test_served_by_fallback_while_primary_circuit_is_open(gateway, provider, sdk):
    primary = MockProvider(Reply(status=500, body={"error": {"message": "down"}}))
    backup = MockProvider(Reply(chunks=frames("text")))
    p_url, b_url = await provider(primary), await provider(backup)
    base = await gateway(make_config(
        {"primary": ("anthropic", p_url), "backup": ("anthropic", b_url)},
        [{"match": "*", "provider": "primary", "fallback_providers": ["backup"]}],
        circuit_breaker_failures=1, circuit_breaker_cooldown_secs=3600))
    client = sdk.anthropic(base)
    for _ in range(3):
        async with client.messages.stream(model="claude-x", max_tokens=10,
                                          messages=[{"role": "user", "content": "hi"}]) as stream:
            msg = await stream.get_final_message()
        assert msg.stop_reason == "end_turn"
    assert len(primary.received) == 1  # opened after one failure: later requests skip it
    assert len(backup.received) == 3
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/metrics") as r:
            metrics = await r.text()
    assert 'ferryllm_circuit_state{provider="primary"} 1.0' in metrics
    assert 'from_provider="primary",to_provider="backup"' in metrics


async def test_client_disconnect_cancels_provider_request(gateway, provider):
    mock = MockProvider(Reply(chunks=frames("text"), hang_after=3))
    url = await provider(mock)
    base = await gateway(make_config({"a": ("anthropic", url)}))
    async with aiohttp.ClientSession() as s:
        resp = await s.post(base + "/v1/messages", json=BODY)
        await resp.content.readany()  # the stream has started
        assert mock.open_streams == 1
        resp.close()  # the client goes away
    await asyncio.wait_for(mock.stream_closed.wait(), 5)
    assert mock.open_streams == 0 and mock.cancelled_streams == 1


async def test_fallback_when_primary_rejects_the_gateway_key_but_not_on_client_error(
        gateway, provider, sdk):
    primary = MockProvider().then(Reply(status=401, body={"error": {"message": "bad key"}}),
                                  Reply(status=400, body={"error": {"message": "too long"}}))
    backup = MockProvider(Reply(chunks=frames("text")))
    p_url, b_url = await provider(primary), await provider(backup)
    base = await gateway(make_config(
        {"primary": ("anthropic", p_url), "backup": ("anthropic", b_url)},
        [{"match": "*", "provider": "primary", "fallback_providers": ["backup"]}],
        retry_attempts=2, retry_backoff_ms=1))
    client = sdk.anthropic(base)
    async with client.messages.stream(model="claude-x", max_tokens=10,
                                      messages=[{"role": "user", "content": "hi"}]) as stream:
        assert (await stream.get_final_message()).stop_reason == "end_turn"
    assert (len(primary.received), len(backup.received)) == (1, 1)  # no retry, one fallback
    with pytest.raises(anthropic.BadRequestError):
        await client.messages.create(model="claude-x", max_tokens=10,
                                     messages=[{"role": "user", "content": "hi"}])
    assert (len(primary.received), len(backup.received)) == (2, 1)  # a 400 is the client's


@pytest.mark.parametrize("idle", [None, 30.0])  # the read timeout bounds it, or the deadline does
async def test_stream_headers_not_in_time_is_504(gateway, provider, idle):
    mock = MockProvider(Reply(chunks=frames("text"), delay=1.5))
    url = await provider(mock)
    base = await gateway(make_config({"a": ("anthropic", url)}, request_timeout_secs=0.3,
                                     stream_idle_timeout_secs=idle, keepalive_interval_secs=60))
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1/messages", json=BODY) as r:
            assert r.status == 504
            assert (await r.json())["error"]["type"] == "api_error"
