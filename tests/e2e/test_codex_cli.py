"""The real Codex CLI → ferryllm's Responses entry (`/v1/responses`) → an OpenAI-compatible
(Chat Completions) or an Anthropic mock that behaves like a model (tests/model_mock.py).

`codex exec` (tests/codex_cli.py: pinned npm release, temporary HOME/CODEX_HOME, a custom
provider with `wire_api = "responses"` whose `base_url` is the gateway, a model catalog entry
so Codex sends its full tool set) runs as a subprocess of the test's event loop. Each scenario
is run against both provider kinds: a plain answer; a shell round trip (the model asks for
`exec_command`, Codex runs it, the result comes back paired by call id, the final answer
prints); an `apply_patch` edit (Codex's freeform tool, a one-string-parameter function for
these providers) that really changes a file on disk; two parallel calls.
"""
from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from tests.codex_cli import CodexUnavailable, codex_command, run_codex
from tests.conftest import make_config
from tests.model_mock import Call, ModelMock, Say, View

pytestmark = pytest.mark.codex

BACKEND_MODEL = "mock-coder-1"
CAP = 8192
KINDS = ("openai", "anthropic")
PLAIN = "Hello from the ferry mock: the crossing is calm."
COMMAND = "echo ferry-$((40+2))"
PATCH = ("*** Begin Patch\n*** Update File: notes.txt\n@@\n-the ferry leaves at nine\n"
         "+the ferry leaves at ten\n*** End Patch\n")
# what a Responses request carries that no Chat Completions or Messages provider accepts
CODEX_ONLY = ('"client_metadata"', '"include"', '"encrypted_content"', '"store"',
              '"custom_tool_call', '"function_call_output"', '"input_text"', '"summary"')


@pytest.fixture(scope="module")
def codex() -> list[str]:
    try:
        return codex_command()
    except CodexUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


async def start(gateway, provider, mock: ModelMock) -> str:
    url = await provider(mock)
    config = make_config({"mock": (mock.kind, url)},
                         [{"match": "*", "provider": "mock", "rewrite_model": BACKEND_MODEL}])
    config = replace(config, providers=tuple(replace(p, max_tokens_cap=CAP)
                                             for p in config.providers))
    return await gateway(config)


def check_upstream(mock: ModelMock, turns: int) -> None:
    assert not mock.rejected, f"the provider rejected ferryllm's requests: {mock.rejected}"
    assert len(mock.bodies) == turns, f"{len(mock.bodies)} provider requests, wanted {turns}"
    for body in mock.bodies:
        raw = orjson.dumps(body).decode()
        leaked = [f for f in CODEX_ONLY if f in raw]
        assert not leaked, f"Responses-only fields reached the {mock.kind} provider: {leaked}"
        assert body["model"] == BACKEND_MODEL and body["stream"] is True
        limit = body.get("max_tokens", body.get("max_completion_tokens"))
        if mock.kind == "anthropic" or limit is not None:  # required by Anthropic only
            assert 0 < limit <= CAP  # Codex sends no max_output_tokens: the cap applies
        assert "exec_command" in {n for n in _tools(mock, body)}


def _tools(mock: ModelMock, body: dict) -> dict[str, dict]:
    return mock.view(body).tools


def last_result(view: View) -> str:
    return view.results[view.calls[-1][0]]


@pytest.mark.parametrize("kind", KINDS)
async def test_plain_answer(codex, gateway, provider, tmp_path, kind):
    mock = ModelMock(kind, lambda view: Say(PLAIN))
    run = await run_codex(codex, await start(gateway, provider, mock), "Say hello.", tmp_path)
    assert run.code == 0, run.explain()
    assert run.last_message.strip() == PLAIN
    check_upstream(mock, 1)


def shell_plan(view: View) -> Say | Call:
    if not view.results:
        return Call(("exec_command", {"cmd": COMMAND}))
    return Say(f"The command printed {last_result(view).strip().splitlines()[-1]}.")


@pytest.mark.parametrize("kind", KINDS)
async def test_shell_round_trip(codex, gateway, provider, tmp_path, kind):
    mock = ModelMock(kind, shell_plan)
    run = await run_codex(codex, await start(gateway, provider, mock),
                          "Run the greeting command and tell me what it printed.", tmp_path)
    assert run.code == 0, run.explain()
    assert run.last_message.strip() == "The command printed ferry-42."
    check_upstream(mock, 2)
    view = mock.view(mock.bodies[1])
    (call_id, name, args), = view.calls
    assert (name, args) == ("exec_command", {"cmd": COMMAND})
    assert "ferry-42" in view.results[call_id]  # paired by the provider's own call id


def patch_plan(view: View) -> Say | Call:
    if not view.results:
        schema = view.tools["apply_patch"]
        assert schema["properties"]["input"]["type"] == "string", schema
        return Call(("apply_patch", {"input": PATCH}))
    return Say("Updated notes.txt." if "Success" in last_result(view) else
               f"The patch failed: {last_result(view)}")


@pytest.mark.parametrize("kind", KINDS)
async def test_apply_patch_edits_a_file(codex, gateway, provider, tmp_path, kind):
    (tmp_path / "work").mkdir()
    notes = tmp_path / "work" / "notes.txt"
    notes.write_text("the ferry leaves at nine\n")
    mock = ModelMock(kind, patch_plan)
    run = await run_codex(codex, await start(gateway, provider, mock),
                          "Change the departure time in notes.txt to ten.", tmp_path)
    assert run.code == 0, run.explain()
    assert notes.read_text() == "the ferry leaves at ten\n"
    assert run.last_message.strip() == "Updated notes.txt."
    check_upstream(mock, 2)
    view = mock.view(mock.bodies[1])
    assert [(name, args) for _, name, args in view.calls] == [("apply_patch", {"input": PATCH})]


def parallel_plan(view: View) -> Say | Call:
    if not view.results:
        return Call(("exec_command", {"cmd": "echo port-side"}),
                    ("exec_command", {"cmd": "echo starboard-side"}))
    heard = [view.results[call_id].strip().splitlines()[-1] for call_id, _, _ in view.calls]
    return Say("Heard " + " and ".join(heard) + ".")


@pytest.mark.parametrize("kind", KINDS)
async def test_two_parallel_calls(codex, gateway, provider, tmp_path, kind):
    mock = ModelMock(kind, parallel_plan)
    run = await run_codex(codex, await start(gateway, provider, mock),
                          "Greet both sides of the ferry at once.", tmp_path)
    assert run.code == 0, run.explain()
    assert run.last_message.strip() == "Heard port-side and starboard-side."
    check_upstream(mock, 2)
    view = mock.view(mock.bodies[1])
    assert [args["cmd"] for _, _, args in view.calls] == ["echo port-side",
                                                          "echo starboard-side"]
