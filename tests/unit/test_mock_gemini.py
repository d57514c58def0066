"""The Gemini mock answers as the API does and rejects what the real API rejects."""
from __future__ import annotations

import orjson
import pytest

from tests.mock_gemini import GeminiMock, calls, text

KEY = {"x-goog-api-key": "k"}
STREAM = "/v1beta/models/{}:streamGenerateContent?alt=sse"
USER = {"role": "user", "parts": [{"text": "run it"}]}


@pytest.fixture
async def client(aiohttp_client):
    async def make(mock: GeminiMock):
        return await aiohttp_client(mock.app())
    return make


def frames(raw: bytes) -> list[dict]:
    assert raw.endswith(b"\r\n\r\n") and b"[DONE]" not in raw
    return [orjson.loads(f.removeprefix(b"data: ")) for f in raw.split(b"\r\n\r\n") if f]


async def post(cli, model: str, body: dict, path: str = STREAM, headers=KEY):
    resp = await cli.post(path.format(model), data=orjson.dumps(body), headers=headers)
    return resp.status, await resp.read()


def replay(call_part: dict, n: int = 1) -> list[dict]:
    """A conversation that sends back a model turn and n function responses."""
    return [USER, {"role": "model", "parts": [call_part]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}] * n}]


async def test_stream_frames_usage_and_signature(client):
    mock = GeminiMock().then(calls(("f", {"a": 1}), ("g", {})))
    cli = await client(mock)
    status, raw = await post(cli, "gemini-2.5-pro", {"contents": [USER]})
    assert status == 200
    chunks = frames(raw)
    parts = chunks[-1]["candidates"][0]["content"]["parts"]
    assert [p["functionCall"]["name"] for p in parts] == ["f", "g"]
    assert parts[0]["thoughtSignature"] in mock.issued and "thoughtSignature" not in parts[1]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    usage = chunks[-1]["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]


async def test_text_comes_in_pieces_and_json_mode_merges(client):
    mock = GeminiMock().then(text("one two three four"), text("one two three four"))
    cli = await client(mock)
    _, raw = await post(cli, "gemini-2.5-pro", {"contents": [USER]})
    pieces = [c["candidates"][0]["content"]["parts"][0]["text"] for c in frames(raw)]
    assert len(pieces) == 2 and "".join(pieces) == "one two three four"
    status, raw = await post(cli, "gemini-2.5-pro", {"contents": [USER]},
                             "/v1beta/models/{}:generateContent")
    body = orjson.loads(raw)
    assert "".join(p["text"] for p in body["candidates"][0]["content"]["parts"]) == \
        "one two three four"


async def test_key_missing_or_wrong(client):
    cli = await client(GeminiMock(api_key="right"))
    status, raw = await post(cli, "gemini-2.5-pro", {"contents": [USER]}, headers={})
    assert status == 403 and orjson.loads(raw)["error"]["status"] == "PERMISSION_DENIED"
    status, raw = await post(cli, "gemini-2.5-pro", {"contents": [USER]},
                             STREAM + "&key=wrong", headers={})
    assert status == 400 and "API key not valid" in orjson.loads(raw)["error"]["message"]
    status, _ = await post(cli, "gemini-2.5-pro", {"contents": [USER]}, STREAM + "&key=right",
                           headers={})
    assert status == 200


@pytest.mark.parametrize("body, field", [
    ({"contents": [USER], "temprature": 1}, "temprature"),
    ({"contents": [{"role": "user", "parts": [{"text": "x", "cache_control": {}}]}]},
     "cache_control"),
    ({"contents": [USER], "tools": [{"functionDeclarations": [{"name": "f", "parameters": {
        "type": "object", "additionalProperties": False}}]}]}, "additionalProperties"),
])
async def test_unknown_fields_are_rejected(client, body, field):
    cli = await client(GeminiMock())
    status, raw = await post(cli, "gemini-2.5-pro", body)
    err = orjson.loads(raw)["error"]
    assert status == 400 and err["status"] == "INVALID_ARGUMENT" and f'"{field}"' in err["message"]


async def test_both_spellings_are_accepted(client):
    cli = await client(GeminiMock())
    body = {"contents": [USER], "system_instruction": {"parts": [{"text": "be brief"}]},
            "generation_config": {"max_output_tokens": 5, "thinking_config": {
                "include_thoughts": True}},
            "tools": [{"function_declarations": [{"name": "f", "parameters_json_schema": {
                "type": "object", "additionalProperties": False}}]}]}
    status, raw = await post(cli, "gemini-2.5-pro", body)
    assert status == 200, raw


async def test_call_and_response_counts_must_match(client):
    mock = GeminiMock()
    cli = await client(mock)
    two = {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}] * 2}
    body = {"contents": [USER, two, replay({})[2]]}
    status, raw = await post(cli, "gemini-2.5-pro", body)
    assert status == 400 and "number of function response parts" in raw.decode()
    status, raw = await post(cli, "gemini-2.5-pro", {"contents": [USER, replay({})[2]]})
    assert status == 400 and "function response turn" in raw.decode()


async def test_signatures_on_replayed_calls(client):
    mock = GeminiMock()
    cli = await client(mock)
    bare = {"functionCall": {"name": "f", "args": {}}}
    status, raw = await post(cli, "gemini-3-pro-preview", {"contents": replay(bare)})
    assert status == 400 and "missing a thought_signature" in raw.decode()
    assert (await post(cli, "gemini-2.5-pro", {"contents": replay(bare)}))[0] == 200
    skip = {**bare, "thoughtSignature": "skip_thought_signature_validator"}
    assert (await post(cli, "gemini-3-pro-preview", {"contents": replay(skip)}))[0] == 200
    forged = {**bare, "thoughtSignature": "c2lnbmVkIGJ5IHNvbWVvbmUgZWxzZQ=="}
    status, raw = await post(cli, "gemini-2.5-pro", {"contents": replay(forged)})
    assert status == 400 and "Corrupted thought signature" in raw.decode()
    issued = {**bare, "thoughtSignature": mock.signature()}
    assert (await post(cli, "gemini-3-pro-preview", {"contents": replay(issued)}))[0] == 200


async def test_thinking_level_only_for_3x(client):
    cli = await client(GeminiMock())
    body = {"contents": [USER], "generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW"}}}
    assert (await post(cli, "gemini-2.5-pro", body))[0] == 400
    assert (await post(cli, "gemini-3-pro-preview", body))[0] == 200
    body["generationConfig"]["thinkingConfig"]["thinkingBudget"] = 10
    assert (await post(cli, "gemini-3-pro-preview", body))[0] == 400


async def test_count_tokens_and_models_run_no_generation(client):
    mock = GeminiMock().then(text("scripted"))
    cli = await client(mock)
    status, raw = await post(cli, "gemini-2.5-pro", {"contents": [USER]},
                             "/v1beta/models/{}:countTokens")
    assert status == 200 and orjson.loads(raw)["totalTokens"] > 0
    resp = await cli.get("/v1beta/models", headers=KEY)
    assert "models/gemini-2.5-pro" in [m["name"] for m in (await resp.json())["models"]]
    assert mock.script and not mock.generations  # the scripted turn is still there
