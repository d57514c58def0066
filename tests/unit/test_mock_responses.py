"""The Responses mock provider: the official `openai` SDK reads exactly what it streams, its
streams follow OpenAI's grammar, it accepts every request the real Codex CLI sent
(tests/fixtures/codex) and rejects what the real API rejects, in OpenAI's error shape."""
from __future__ import annotations

import copy
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.mock_responses import (ResponsesMock, custom_call, function_call, reasoning, text,
                                  turn, turn_events)
from tests.responses_grammar import check_stream, parse_sse
from tests.responses_rules import RequestRejected, check_request

CODEX = Path(__file__).resolve().parent.parent / "fixtures" / "codex"
AUTH = {"Authorization": "Bearer sk-test"}
TOOLS = [{"type": "function", "name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}},
         {"type": "custom", "name": "apply_patch", "description": "patch"}]
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"


def codex_bodies() -> list[tuple[str, dict]]:
    return [(p.name, orjson.loads(p.read_bytes())["body"]) for p in sorted(CODEX.glob("*.json"))]


def every_kind():
    return turn(reasoning("Thinking about it.", "Second thought."), text("Checking both."),
                function_call("get_weather", {"city": "Oslo"}, call_id="call_a"),
                function_call("get_weather", {"city": "Bergen"}, call_id="call_b"),
                custom_call("apply_patch", PATCH, call_id="call_c"),
                input_tokens=120, cached_tokens=100, output_tokens=30, reasoning_tokens=9)


@pytest.fixture
async def mock_url(aiohttp_server):
    async def start(mock: ResponsesMock) -> str:
        server = await aiohttp_server(mock.app())
        return f"http://127.0.0.1:{server.port}"
    return start


async def test_sdk_stream_accumulates_exactly_what_the_mock_sent(mock_url, sdk):
    mock = ResponsesMock(every_kind())
    client = sdk.openai(await mock_url(mock))
    async with client.responses.stream(model="gpt-x", input="weather?", tools=TOOLS,
                                       store=False) as stream:
        final = await stream.get_final_response()
    kinds = [item.type for item in final.output]
    assert kinds == ["reasoning", "message", "function_call", "function_call",
                     "custom_tool_call"]
    assert [s.text for s in final.output[0].summary] == ["Thinking about it.", "Second thought."]
    assert final.output[0].encrypted_content
    assert final.output_text == "Checking both."
    calls = final.output[2:4]
    assert [(c.call_id, orjson.loads(c.arguments)) for c in calls] == [
        ("call_a", {"city": "Oslo"}), ("call_b", {"city": "Bergen"})]
    assert (final.output[4].call_id, final.output[4].input) == ("call_c", PATCH)
    assert final.usage.input_tokens == 120 and final.usage.output_tokens == 30
    assert final.usage.input_tokens_details.cached_tokens == 100
    assert final.usage.output_tokens_details.reasoning_tokens == 9
    assert final.status == "completed"


async def test_json_answer_is_the_completed_body(mock_url, sdk):
    mock = ResponsesMock(turn(text("Plain.")))
    client = sdk.openai(await mock_url(mock))
    out = await client.responses.create(model="gpt-x", input="hi")
    assert out.output_text == "Plain." and out.status == "completed"
    assert out.usage.total_tokens == out.usage.input_tokens + out.usage.output_tokens


def test_stream_follows_the_grammar():
    events = turn_events({"model": "m", "stream": True}, every_kind(), "resp_1", 1)
    raw = b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n"
                   for e in events)
    final = check_stream(parse_sse(raw))
    assert final["status"] == "completed" and len(final["output"]) == 5


def test_incomplete_and_failed_endings():
    cut = turn_events({"model": "m"}, turn(text("Trunc"), incomplete="max_output_tokens"), "r", 1)
    assert cut[-1]["type"] == "response.incomplete"
    assert cut[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    check_stream(cut)
    failed = turn_events({"model": "m"}, turn(text("Half"), fail=("server_error", "boom")), "r", 1)
    assert failed[-1]["type"] == "response.failed"
    assert failed[-1]["response"]["error"] == {"code": "server_error", "message": "boom"}
    check_stream(failed)


@pytest.mark.parametrize("name,body", codex_bodies(), ids=[n for n, _ in codex_bodies()])
def test_accepts_what_the_real_codex_cli_sent(name, body):
    assert check_request(orjson.dumps(body), AUTH) == body


def _shell_body() -> dict:
    return copy.deepcopy(orjson.loads((CODEX / "shell.2.json").read_bytes())["body"])


def _index(body: dict, kind: str) -> int:
    return next(n for n, item in enumerate(body["input"]) if item.get("type") == kind)


def _drop_output(body):
    del body["input"][_index(body, "function_call_output")]


def _drop_call(body):
    del body["input"][_index(body, "function_call")]


def _orphan_custom_output(body):
    body["input"].append({"type": "custom_tool_call_output", "call_id": "call_nowhere",
                          "output": "done"})


def _unknown_item(body):
    body["input"].append({"type": "telepathy", "content": "?"})


def _missing_call_id(body):
    del body["input"][_index(body, "function_call_output")]["call_id"]


def _unknown_param(body):
    body["temperature_celsius"] = 20


def _previous_response(body):
    body["previous_response_id"] = "resp_123"


def _reasoning_without_encrypted(body):
    del body["input"][_index(body, "reasoning")]["encrypted_content"]


def _input_text_from_assistant(body):
    body["input"][_index(body, "message") + 1]["content"] = [{"type": "input_text", "text": "x"}]
    body["input"].insert(4, {"type": "message", "role": "assistant",
                             "content": [{"type": "input_text", "text": "x"}]})


def _bad_tool_name(body):
    body["tools"][0]["name"] = "shell.exec"


def _long_tool_name(body):
    body["tools"][0]["name"] = "t" * 65


def _missing_model(body):
    del body["model"]


REJECTED = [
    (_drop_output, "input", None, "No tool output found for function call"),
    (_drop_call, "input", None, "No tool call found for function call output"),
    (_orphan_custom_output, "input", None, "No tool call found for custom tool call output"),
    (_unknown_item, "input[8].type", "invalid_value", "Invalid value: 'telepathy'"),
    (_missing_call_id, "input[7].call_id", "missing_required_parameter", "Missing required"),
    (_unknown_param, "temperature_celsius", "unknown_parameter", "Unknown parameter"),
    (_previous_response, "previous_response_id", "previous_response_not_found", "not found"),
    (_reasoning_without_encrypted, "input", None, "Items are not persisted when `store`"),
    (_input_text_from_assistant, "input[4].content[0].type", "invalid_value", "'input_text'"),
    (_bad_tool_name, "tools[0].name", "invalid_value", "does not match pattern"),
    (_long_tool_name, "tools[0].name", "string_above_max_length", "string too long"),
    (_missing_model, "model", "missing_required_parameter", "'model'"),
]


@pytest.mark.parametrize("change,param,code,words", REJECTED,
                         ids=[r[0].__name__.strip("_") for r in REJECTED])
def test_rejects_what_the_real_api_rejects(change, param, code, words):
    body = _shell_body()
    change(body)
    with pytest.raises(RequestRejected) as caught:
        check_request(orjson.dumps(body), AUTH)
    assert (caught.value.status, caught.value.param, caught.value.code) == (400, param, code)
    assert words in caught.value.message


async def test_rejection_is_an_openai_error_and_is_recorded(mock_url, sdk):
    import openai
    mock = ResponsesMock(turn(text("never sent")))
    client = sdk.openai(await mock_url(mock))
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="gpt-x", input=[
            {"type": "function_call_output", "call_id": "call_x", "output": "42"}])
    assert caught.value.body["param"] == "input"
    assert "call_x" in caught.value.body["message"]
    assert [s.status for s in mock.seen] == [400] and mock.script  # the turn is still there
    async with aiohttp.ClientSession() as session:
        async with session.post(await mock_url(mock) + "/v1/responses",
                                json={"model": "gpt-x", "input": "hi"}) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["type"] == "invalid_request_error"
