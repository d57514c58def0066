"""The Gemini entry over HTTP: client keys where Google puts them (never logged, the query string
included), routes under /v1beta and /v1, the model list, and Google's error bodies."""
from __future__ import annotations

import logging
from dataclasses import replace

import aiohttp
import orjson

from ferryllm.config import AuthConfig
from ferryllm.server import build_app, make_runner
from tests.conftest import make_config
from tests.mock_gemini import GeminiMock
from tests.mockprovider import MockProvider, Reply

KEY = "client-secret-key-123"
OPENAI_REPLY = Reply(body={
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "b",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "hi there"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
BODY = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


async def start(gateway, provider, mock=None, auth: bool = False) -> str:
    url = await provider(mock or MockProvider(OPENAI_REPLY))
    config = make_config({"up": ("openai", url)}, [{"match": "gemini-", "provider": "up"}])
    if auth:
        config = replace(config, auth=AuthConfig(enabled=True, keys=(KEY,)))
    return await gateway(config)


async def post(base: str, path: str, body=BODY, headers=None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s:
        async with s.post(base + path, data=orjson.dumps(body), headers=headers or {}) as r:
            return r.status, orjson.loads(await r.read())


async def test_keys_from_goog_header_and_query_and_never_logged(gateway, provider, caplog):
    base = await start(gateway, provider, auth=True)
    caplog.set_level(logging.DEBUG)
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    status, body = await post(base, path)
    assert status == 401 and body["error"]["status"] == "UNAUTHENTICATED"
    status, body = await post(base, path + "?key=wrong")
    assert status == 401
    status, body = await post(base, path, headers={"x-goog-api-key": KEY})
    assert status == 200 and body["candidates"][0]["content"]["parts"] == [{"text": "hi there"}]
    status, body = await post(base, path + f"?key={KEY}")
    assert status == 200
    status, _ = await post(base, "/v1/models/gemini-2.5-flash:countTokens" + f"?key={KEY}")
    assert status == 200
    # ferryllm's own logs (the test server's aiohttp access log is not ferryllm's: `serve` runs
    # with access_log=None, checked below)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("ferryllm"))
    assert "gemini-2.5-flash" in logged  # the access log ran
    assert KEY not in logged
    assert "?key" not in logged and "=wrong" not in logged
    config = make_config({"up": ("openai", "http://127.0.0.1:9")})
    assert make_runner(build_app(config), config)._kwargs["access_log"] is None


async def test_model_in_the_url_is_decoded_and_may_carry_models_prefix(gateway, provider):
    mock = MockProvider(OPENAI_REPLY)
    base = await start(gateway, provider, mock)
    for path in ("/v1beta/models/gemini%2D2.5-flash:generateContent",
                 "/v1/models/models/gemini-2.5-flash:generateContent"):
        status, _ = await post(base, path)
        assert status == 200, path
    assert [r.json["model"] for r in mock.received] == ["gemini-2.5-flash"] * 2
    status, body = await post(base, "/v1beta/models/claude-x:generateContent")
    assert status == 404 and body["error"]["status"] == "NOT_FOUND"
    assert "claude-x" in body["error"]["message"]


async def test_bad_input_is_invalid_argument_naming_the_field(gateway, provider):
    base = await start(gateway, provider)
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    status, body = await post(base, path, {"contents": [{"parts": [{"functionCall": {}}]}]})
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    assert body["error"]["message"].startswith("contents[0].parts[0].functionCall.name")
    status, body = await post(base, path, [1, 2])
    assert status == 400 and body["error"]["code"] == 400
    status, body = await post(base, "/v1beta/models/gemini-2.5-flash:embedContent")
    assert status == 404 and body["error"]["status"] == "NOT_FOUND"


async def test_model_list_and_the_openai_list_stay_apart(gateway, provider):
    base = await start(gateway, provider)
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/v1beta/models") as r:
            gemini = orjson.loads(await r.read())
        async with s.get(base + "/v1/models") as r:
            openai = orjson.loads(await r.read())
    assert gemini["models"][0]["name"] == "models/gemini-"
    assert "generateContent" in gemini["models"][0]["supportedGenerationMethods"]
    assert openai["object"] == "list"


async def test_same_protocol_json_is_the_providers_body(gateway, provider):
    mock = GeminiMock()
    url = await provider(mock)
    base = await gateway(make_config({"gem": ("gemini", url)},
                                     [{"match": "*", "provider": "gem",
                                       "rewrite_model": "gemini-2.5-pro"}]))
    status, body = await post(base, "/v1beta/models/my-alias:generateContent",
                              {**BODY, "safetySettings": [], "labels": {"team": "x"}})
    assert status == 200 and body["responseId"].startswith("mock-")
    sent = mock.received[0]
    assert sent.path == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert sent.json == {**BODY, "safetySettings": [], "labels": {"team": "x"}}


async def test_stream_without_alt_sse_is_one_json_array(gateway, provider):
    """The real API's other stream format: the same chunks as one JSON array (never relayed
    from a Gemini provider's SSE bytes)."""
    from tests.mockprovider import sse_frames
    from tests.streamsummary import FIXTURES
    frames = sse_frames((FIXTURES / "openai" / "openai_text.sse").read_text(encoding="utf-8"))
    base = await start(gateway, provider, MockProvider(Reply(chunks=frames)))
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1/models/gemini-2.5-flash:streamGenerateContent",
                          json=BODY) as r:
            assert r.headers["content-type"].startswith("application/json")
            chunks = orjson.loads(await r.read())
    assert isinstance(chunks, list) and len(chunks) > 2
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "usageMetadata" in chunks[-1]
    mock = GeminiMock()
    url = await provider(mock)
    base = await gateway(make_config({"gem": ("gemini", url)}))
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                          json=BODY) as r:
            chunks = orjson.loads(await r.read())
    assert "".join(p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"]) \
        == "Hello from the Gemini mock."
    assert mock.received[0].query == {"alt": "sse"}  # upstream, ferryllm still reads SSE
