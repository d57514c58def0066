"""The real Gemini CLI → ferryllm's Gemini entry → an OpenAI-compatible or an Anthropic provider.

The CLI (`tests/gemini_cli.py`: the pinned npm release, temporary HOME and settings, API-key
auth, `GOOGLE_GEMINI_BASE_URL` = a ferryllm served in this test's event loop, trusted workspace,
nothing phoning home) runs `gemini --prompt`, with `--approval-mode yolo` for tool runs. The
provider is a mock that behaves like a model (`tests/model_mock.py`, `cli_plan`): it asks for
`run_shell_command` (once, or twice in one turn) when the prompt says so, and reports what came
back; it refuses a tool result whose id answers no call. The CLI runs the command for real, so
`FERRY-BOAT` in the final answer went model → ferryllm → CLI → shell → CLI → ferryllm → model.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from ferryllm.config import AuthConfig, load_config
from tests.conftest import make_config
from tests.gemini_cli import UNTRUSTED_WARNING, GeminiCLIUnavailable, gemini_command, run_gemini
from tests.mock_gemini import GeminiMock
from tests.model_mock import INPUT_TOKENS, OUTPUT_TOKENS, Fail, ModelMock
from tests.npm_cli import ROOT
from tests.record_gemini_cli import (COMMAND, PLAIN_ANSWER, SCENARIOS, SECOND, cli_plan,
                                     shell_plan)

pytestmark = pytest.mark.gemini_cli

CLI_MODEL = "gemini-2.5-pro"
BACKENDS = {"openai": "mock-coder-1", "anthropic": "claude-mock-1"}  # kind: backend model


@pytest.fixture(scope="module")
def gemini() -> list[str]:
    try:
        return gemini_command()
    except GeminiCLIUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


async def through_ferryllm(gemini, gateway, provider, tmp_path, kind: str, scenario: str):
    backend = BACKENDS[kind]
    mock = ModelMock(kind, cli_plan)
    url = await provider(mock)
    base = await gateway(make_config({"mock": (kind, url)}, [
        {"match": "*", "provider": "mock", "rewrite_model": backend}]))
    prompt, model, yolo = SCENARIOS[scenario]
    result = await run_gemini(gemini, base, prompt, tmp_path, model=model and CLI_MODEL,
                              yolo=yolo, output="json")
    assert result.code == 0, result.explain()
    assert not mock.rejected, f"the provider refused ferryllm's request: {mock.rejected}"
    assert UNTRUSTED_WARNING not in result.stderr
    assert not result.refused, f"the CLI tried to leave 127.0.0.1: {result.refused}"
    assert mock.bodies, "the provider received no request"
    for body in mock.bodies:
        assert body["model"] == backend
        if body.get("tools"):  # a conversation turn (not the router's side call)
            assert body["stream"] is True
            assert "run_shell_command" in tool_names(kind, body) or not yolo
    return mock, result


def tool_names(kind: str, body: dict) -> set[str]:
    if kind == "openai":
        return {t["function"]["name"] for t in body.get("tools") or []}
    return {t["name"] for t in body.get("tools") or []}


def tool_turn(kind: str, body: dict) -> tuple[list[tuple[str, str, dict]], list[tuple[str, str]]]:
    """The provider request's last tool calls [(id, name, args)] and results [(id, output)]."""
    import orjson
    messages = body["messages"]
    if kind == "openai":
        asked = next(m for m in reversed(messages) if m.get("tool_calls"))
        calls = [(c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"]))
                 for c in asked["tool_calls"]]
        results = [(m["tool_call_id"], m["content"] if isinstance(m["content"], str)
                    else "".join(p.get("text", "") for p in m["content"]))
                   for m in messages if m["role"] == "tool"]
        return calls, results
    asked = next(m for m in reversed(messages) if m["role"] == "assistant" and any(
        b.get("type") == "tool_use" for b in m["content"]))
    calls = [(b["id"], b["name"], b["input"]) for b in asked["content"] if b["type"] == "tool_use"]
    last = messages[-1]["content"]
    results = [(b["tool_use_id"], b["content"] if isinstance(b["content"], str) else
                "".join(c.get("text", "") for c in b["content"]))
               for b in last if b.get("type") == "tool_result"]
    return calls, results


@pytest.mark.parametrize("kind", BACKENDS)
async def test_plain_answer(gemini, gateway, provider, tmp_path, kind):
    mock, result = await through_ferryllm(gemini, gateway, provider, tmp_path, kind, "plain")
    assert result.json["response"].strip() == PLAIN_ANSWER
    (only,) = mock.bodies
    assert tool_names(kind, only)  # the CLI's read-only tools crossed over
    tokens = result.json["stats"]["models"][CLI_MODEL]["tokens"]  # usageMetadata reached the CLI
    assert tokens["prompt"] == INPUT_TOKENS and tokens["candidates"] == OUTPUT_TOKENS


@pytest.mark.parametrize("kind", BACKENDS)
async def test_shell_round_trip(gemini, gateway, provider, tmp_path, kind):
    mock, result = await through_ferryllm(gemini, gateway, provider, tmp_path, kind, "shell")
    assert "FERRY-BOAT" in result.json["response"], result.explain()
    assert len(mock.bodies) == 2
    calls, results = tool_turn(kind, mock.bodies[-1])
    assert [(name, args["command"]) for _, name, args in calls] == [("run_shell_command", COMMAND)]
    assert [rid for rid, _ in results] == [calls[0][0]]  # the provider's own id came back
    assert "FERRY-BOAT" in results[0][1]


@pytest.mark.parametrize("kind", BACKENDS)
async def test_two_parallel_calls(gemini, gateway, provider, tmp_path, kind):
    mock, result = await through_ferryllm(gemini, gateway, provider, tmp_path, kind, "parallel")
    answer = result.json["response"]
    assert "FERRY-BOAT" in answer and "gnissorc-dnoces" in answer, result.explain()
    assert answer.index("FERRY-BOAT") < answer.index("gnissorc-dnoces")
    assert len(mock.bodies) == 2
    calls, results = tool_turn(kind, mock.bodies[-1])
    assert [args["command"] for _, _, args in calls] == [COMMAND, SECOND]
    assert [rid for rid, _ in results] == [cid for cid, _, _ in calls]
    assert "FERRY-BOAT" in results[0][1] and "gnissorc-dnoces" in results[1][1]


STRUCTURED = {  # kind: where a provider request carries the structured-output schema
    "openai": lambda body: body["response_format"]["json_schema"]["schema"],
    "anthropic": lambda body: body["output_config"]["format"]["schema"],
}


@pytest.mark.parametrize("kind", BACKENDS)
async def test_auto_model_router_gets_structured_output(gemini, gateway, provider, tmp_path, kind):
    """The CLI's default model `auto` first scores the prompt with a JSON-mode `:generateContent`
    (an UPPER-case-typed `responseJsonSchema`); ferryllm sends it as a Chat Completions
    `response_format` or a Messages `output_config.format` the provider accepts, and the JSON
    answer lets the router pick a model without its fallback."""
    mock, result = await through_ferryllm(gemini, gateway, provider, tmp_path, kind,
                                          "auto_model")
    assert result.json["response"].strip() == PLAIN_ANSWER
    classifier, main = mock.bodies
    assert not classifier.get("stream") and "tools" not in classifier
    schema = STRUCTURED[kind](classifier)
    assert schema["type"] == "object"
    assert {p["type"] for p in schema["properties"].values()} == {"string", "integer"}
    assert main["stream"] is True and main["tools"]
    assert "NumericalClassifierStrategy failed" not in result.stderr


async def test_parallel_calls_to_a_gemini_provider_replay_signatures(gemini, gateway, provider,
                                                                     tmp_path):
    """Gemini CLI → ferryllm → Gemini (a 3.x model, whose API rejects a replayed call without its
    thought signature): the signatures the provider issued come back on the calls they came with,
    two results answer two calls, and the provider sees its own key, never the client's."""
    mock = GeminiMock(plan=shell_plan, api_key="sk-provider-mock")
    url = await provider(mock)
    base = await gateway(make_config({"mock": ("gemini", url)}, [
        {"match": "*", "provider": "mock", "rewrite_model": "gemini-3-pro-preview"}]))
    prompt, model, _ = SCENARIOS["parallel"]
    result = await run_gemini(gemini, base, prompt, tmp_path, model=model, yolo=True,
                              output="json")
    assert result.code == 0, result.explain()
    assert not result.refused, f"the CLI tried to leave 127.0.0.1: {result.refused}"
    assert not mock.rejected, f"the Gemini provider rejected ferryllm's request: {mock.rejected}"
    answer = result.json["response"]
    assert "FERRY-BOAT" in answer and "gnissorc-dnoces" in answer, result.explain()
    first, second = mock.generations
    assert second.path == "/v1beta/models/gemini-3-pro-preview:streamGenerateContent"
    assert second.headers["x-goog-api-key"] == "sk-provider-mock"
    call, answered = second.json["contents"][-2:]
    calls = [p for p in call["parts"] if "functionCall" in p]
    assert [p["functionCall"]["args"]["command"] for p in calls] == [COMMAND, SECOND]
    assert calls[0]["thoughtSignature"] in mock.issued
    assert len([p for p in answered["parts"] if "functionResponse" in p]) == 2


REFUSALS = {  # kind: (provider status, message)
    "openai": (400, "This model's maximum context length is 8192 tokens; your messages use 9731 "
                    "tokens."),
    "anthropic": (429, "Number of request tokens has exceeded your per-minute rate limit."),
}


@pytest.mark.parametrize("kind", BACKENDS)
async def test_provider_error_reaches_the_cli(gemini, gateway, provider, tmp_path, kind):
    """A provider's refusal comes back to the CLI as Google's error with the provider's status
    and message (not a hang, not an empty answer), and the CLI exits non-zero."""
    backend = BACKENDS[kind]
    status, message = REFUSALS[kind]
    mock = ModelMock(kind, lambda view: Fail(status, message))
    url = await provider(mock)
    base = await gateway(make_config({"mock": (kind, url)}, [
        {"match": "*", "provider": "mock", "rewrite_model": backend}]))
    prompt, model, _ = SCENARIOS["plain"]
    result = await run_gemini(gemini, base, prompt, tmp_path, model=model, output="json",
                              settings={"general": {"maxAttempts": 1}})
    assert result.code != 0, result.explain()
    error = result.json["error"]
    assert error["code"] == status and message in error["message"], result.explain()
    assert not result.refused


async def test_client_keys_from_the_cli(gemini, gateway, provider, tmp_path):
    """With `[auth]` on, the key the CLI sends (`GEMINI_API_KEY` as `x-goog-api-key`) is the
    client key: the right one is served, a wrong one gets Google's 401 and reaches no provider."""
    mock = ModelMock("openai", cli_plan)
    url = await provider(mock)
    config = make_config({"mock": ("openai", url)})
    base = await gateway(replace(config, auth=AuthConfig(enabled=True, keys=("ferry-client-1",))))
    prompt, model, _ = SCENARIOS["plain"]
    good = await run_gemini(gemini, base, prompt, tmp_path / "good", model=model,
                            output="json", api_key="ferry-client-1")
    assert good.code == 0 and good.json["response"].strip() == PLAIN_ANSWER, good.explain()
    served = len(mock.bodies)
    bad = await run_gemini(gemini, base, prompt, tmp_path / "bad", model=model, output="json",
                           api_key="not-a-client-key", settings={"general": {"maxAttempts": 1}})
    assert bad.code != 0 and bad.json["error"]["code"] == 401, bad.explain()
    assert "not-a-client-key" not in bad.stderr  # the key is not echoed back
    assert len(mock.bodies) == served


async def test_readme_recipe(gemini, gateway, provider, tmp_path, monkeypatch):
    """README's quick start: examples/config/openai-compatible-claude-code.toml (its provider
    pointed at the mock) serves the Gemini CLI with its default model, router call included."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-example")
    config = load_config(str(ROOT / "examples" / "config" / "openai-compatible-claude-code.toml"))
    mock = ModelMock("openai", cli_plan)
    url = await provider(mock)
    base = await gateway(replace(config, providers=tuple(
        replace(p, base_url=url) for p in config.providers)))
    prompt, _, yolo = SCENARIOS["shell"]
    result = await run_gemini(gemini, base, prompt, tmp_path, model="", yolo=yolo,
                              output="json")
    assert result.code == 0, result.explain()
    assert "FERRY-BOAT" in result.json["response"], result.explain()
    assert not mock.rejected and not result.refused
    assert {b["model"] for b in mock.bodies} == {"gpt-5"}
    assert "response_format" in mock.bodies[0]  # the router's call, answered with JSON
