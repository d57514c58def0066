"""Same protocol on both sides: the provider's bytes are relayed (only `model` rewritten) and the
client's request goes upstream byte-faithful; plus count_tokens and /v1/models."""
from __future__ import annotations

import aiohttp
import orjson

from tests.conftest import make_config
from tests.mockprovider import MockProvider, Reply, sse_frames
from tests.streamsummary import FIXTURES


def fixture(provider: str, name: str) -> str:
    return (FIXTURES / provider / f"{name}.sse").read_text(encoding="utf-8")


async def raw_post(url: str, body: dict, headers: dict | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json=body, headers=headers or {}) as r:
            return r.status, await r.read()


async def test_anthropic_stream_bytes_relayed_with_model_rewritten(gateway, provider):
    text = fixture("anthropic", "thinking")
    url = await provider(MockProvider(Reply(chunks=sse_frames(text))))
    base = await gateway(make_config({"a": ("anthropic", url)}, [
        {"match": "claude-", "provider": "a", "rewrite_model": "claude-sonnet-4-5-20250929"}]))
    body = {"model": "claude-alias", "max_tokens": 2048, "stream": True,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "27 * 453?"}]}
    status, out = await raw_post(base + "/v1/messages", body)
    assert status == 200
    assert text.count('"model": "claude-sonnet-4-5-20250929"') == 1
    assert out == text.replace('"model": "claude-sonnet-4-5-20250929"',
                               '"model": "claude-alias"').encode()


async def test_anthropic_request_forwarded_byte_faithful(gateway, provider):
    mock = MockProvider(Reply(chunks=sse_frames(fixture("anthropic", "text"))))
    url = await provider(mock)
    base = await gateway(make_config({"a": ("anthropic", url)}))
    body = {
        "model": "claude-opus-4-6", "max_tokens": 64, "stream": True,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "signed", "signature": "EqQBsig=="},
                {"type": "thinking", "thinking": "from an openai provider", "signature": ""},
                {"type": "text", "text": "a"}]},
            {"role": "user", "content": [{"type": "text", "text": "more",
                                          "cache_control": {"type": "ephemeral"}}]}]}
    status, _ = await raw_post(base + "/v1/messages?beta=true", body, {
        "anthropic-version": "2023-06-01", "anthropic-beta": "interleaved-thinking-2025-05-14"})
    assert status == 200
    got = mock.received[0]
    assert got.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert got.headers["anthropic-version"] == "2023-06-01"
    sent = got.json
    assert sent["system"] == body["system"]
    assert sent["context_management"] == body["context_management"]
    assert sent["messages"][2] == body["messages"][2]
    assert sent["messages"][1]["content"] == [body["messages"][1]["content"][0],
                                              body["messages"][1]["content"][2]]


async def test_openai_stream_bytes_relayed_with_model_rewritten(gateway, provider):
    text = fixture("openai", "openai_tool_parallel")
    mock = MockProvider(Reply(chunks=sse_frames(text)))
    url = await provider(mock)
    backend = orjson.loads(text.split("data: ", 1)[1].split("\n", 1)[0])["model"]
    base = await gateway(make_config({"o": ("openai", url)}, [
        {"match": "alias", "provider": "o", "rewrite_model": backend, "match_type": "exact"}]))
    body = {"model": "alias", "stream": True, "messages": [{"role": "user", "content": "x"}],
            "logit_bias": {"50256": -100}, "seed": 7}
    status, out = await raw_post(base + "/v1/chat/completions", body)
    assert status == 200
    assert out == text.replace(f'"model":"{backend}"', '"model":"alias"').encode()
    sent = mock.received[0].json
    assert sent["seed"] == 7 and sent["logit_bias"] == {"50256": -100}  # unknown-to-IR fields kept
    assert sent["model"] == backend


async def test_count_tokens_forwarded_to_anthropic_provider(gateway, provider):
    mock = MockProvider(Reply(body={"input_tokens": 42}))
    url = await provider(mock)
    base = await gateway(make_config({"a": ("anthropic", url)}, [
        {"match": "*", "provider": "a", "rewrite_model": "claude-opus-4-6"}]))
    status, out = await raw_post(base + "/v1/messages/count_tokens?beta=true", {
        "model": "claude-x", "messages": [{"role": "user", "content": "hello"}]})
    assert status == 200 and orjson.loads(out) == {"input_tokens": 42}
    assert mock.received[0].path == "/v1/messages/count_tokens"
    assert mock.received[0].json["model"] == "claude-opus-4-6"


async def test_count_tokens_estimated_locally_for_openai_provider(gateway, provider):
    mock = MockProvider()
    url = await provider(mock)
    base = await gateway(make_config({"o": ("openai", url)}))
    status, out = await raw_post(base + "/v1/messages/count_tokens", {
        "model": "claude-x", "system": "You are a helpful assistant.",
        "messages": [{"role": "user", "content": "Please summarise the following report. " * 20}]})
    assert status == 200
    assert 100 < orjson.loads(out)["input_tokens"] < 250
    assert mock.received == []  # no network call


async def test_models_lists_routes(gateway, provider):
    url = await provider(MockProvider())
    base = await gateway(make_config({"o": ("openai", url)}, [
        {"match": "claude-", "provider": "o", "rewrite_model": "gpt-4.1"},
        {"match": "*", "provider": "o"}]))
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/v1/models") as r:
            data = (await r.json())["data"]
    assert [(m["id"], m["owned_by"], m["backend_model"]) for m in data] == [
        ("claude-", "o", "gpt-4.1"), ("*", "o", None)]
