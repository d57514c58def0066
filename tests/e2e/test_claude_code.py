"""The real Claude Code CLI → ferryllm → a streaming OpenAI-compatible mock.

The CLI (`tests/claude_code.py` installs the pinned npm release) runs as a subprocess with
`claude --print --allowedTools Bash -- PROMPT`, a throw-away HOME and working directory, and
`ANTHROPIC_BASE_URL` pointing at a gateway served in this test's event loop (so the CLI is
driven with `asyncio.create_subprocess_exec`, never a blocking `subprocess.run`).

The mock (`tests/model_mock.py`, `ferry_plan`) answers like a real model: with a Bash tool call
when the prompt asks for the command and no tool result has come back yet, and with text
otherwise. It records every request body,
so the test can check what reached the provider: the tool result, a byte-identical prefix
between consecutive turns (billing header stripped), `max_tokens` capped, no Anthropic-only
fields, schemas cleaned.
"""
from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from tests.claude_code import ClaudeCodeUnavailable, claude_command
from tests.conftest import make_config
from tests.model_mock import Call, ModelMock, Say, View

pytestmark = pytest.mark.claude_code

CLI_TIMEOUT = 120.0  # seconds for one `claude --print` run
CAP = 8192
BACKEND_MODEL = "mock-coder-1"
COMMAND = "echo ferry-$((40+2))"
PLAIN_ANSWER = "Hello from the ferry mock: the crossing is calm."
ASK_FOR_TOOL = "RUN-THE-FERRY-COMMAND"
# Anthropic-only request fields that must never reach an OpenAI-compatible provider
FORBIDDEN = (b'"cache_control"', b'"context_management"', b'"thinking"', b'"output_config"',
             b'"anthropic-beta"', b'"metadata"', b'"defer_loading"', b'"$schema"',
             b"x-anthropic-billing-header", b"cc_version=")


@pytest.fixture(scope="module")
def claude() -> list[str]:
    try:
        return claude_command()
    except ClaudeCodeUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


# ---------------------------------------------------------------- the model


def ferry_plan(view: View) -> Say | Call:
    """A Bash call when the prompt asks for the command and no result came back yet, then what
    it printed; a plain answer otherwise."""
    if view.latest:
        return Say(f"The command printed {view.latest[-1].strip()} and the ferry has arrived.")
    if ASK_FOR_TOOL in view.user_text and "Bash" in view.tools:
        return Call(("Bash", {"command": COMMAND, "description": "Print a greeting"}))
    return Say(PLAIN_ANSWER)


# ---------------------------------------------------------------- running the CLI


async def run_claude(claude: list[str], base_url: str, prompt: str, tmp: Path,
                     args: tuple[str, ...] = ("--allowedTools", "Bash"),
                     extra_env: dict[str, str] | None = None) -> tuple[int, str, str]:
    home, work = tmp / "home", tmp / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home), "SHELL": "/bin/bash", "TERM": "dumb", "NO_COLOR": "1", "CI": "1",
        "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "test-key",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0", **(extra_env or {}),
    }
    proc = await asyncio.create_subprocess_exec(
        *claude, "--print", *args, "--", prompt,
        cwd=work, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True)  # its own process group: a timeout ends the CLI and its shells
    try:
        out, err = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT)
    except asyncio.TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = await proc.communicate()
        pytest.fail(f"claude did not finish within {CLI_TIMEOUT}s\nstdout: {out.decode()[-2000:]}"
                    f"\nstderr: {err.decode()[-2000:]}")
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def start(gateway, provider, mock: ModelMock) -> str:
    url = await provider(mock)
    config = make_config({"mock": ("openai", url)},
                         [{"match": "*", "provider": "mock", "rewrite_model": BACKEND_MODEL}])
    config = replace(config, providers=tuple(replace(p, max_tokens_cap=CAP)
                                             for p in config.providers))
    return await gateway(config)


def check_upstream_hygiene(mock: ModelMock) -> None:
    assert mock.bodies, "the provider received no request"
    assert not mock.rejected, f"the provider rejected ferryllm's requests: {mock.rejected}"
    for raw, body in zip(mock.raw, mock.bodies):
        found = [f.decode() for f in FORBIDDEN if f in raw]
        assert not found, f"Anthropic-only content reached the OpenAI provider: {found}"
        assert body["model"] == BACKEND_MODEL
        assert body["stream"] is True
        assert body.get("max_tokens", body.get("max_completion_tokens")) <= CAP
        assert body["messages"][0]["role"] == "system"


# ---------------------------------------------------------------- scenarios


async def test_plain_answer(claude, gateway, provider, tmp_path):
    mock = ModelMock("openai", ferry_plan)
    base = await start(gateway, provider, mock)
    code, out, err = await run_claude(claude, base, "Say hello to the ferry passengers.", tmp_path)
    assert code == 0, f"claude exited {code}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert PLAIN_ANSWER in out
    check_upstream_hygiene(mock)
    main = [b for b in mock.bodies if b.get("tools")]
    assert main, "Claude Code's main request (with its tools) never reached the provider"
    assert main[0]["max_tokens"] == CAP  # Claude Code asks for 64000+; the provider's cap wins


async def test_tool_round_trip(claude, gateway, provider, tmp_path):
    mock = ModelMock("openai", ferry_plan)
    base = await start(gateway, provider, mock)
    code, out, err = await run_claude(
        claude, base, f"{ASK_FOR_TOOL}: run the greeting command with Bash and tell me what it "
                      "printed.", tmp_path)
    assert code == 0, f"claude exited {code}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert "ferry-42" in out, f"stdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    check_upstream_hygiene(mock)

    # the tool call reached Claude Code, it ran Bash and sent the result back
    turns = [(raw, body) for raw, body in zip(mock.raw, mock.bodies) if body.get("tools")]
    assert len(turns) >= 2, f"expected a tool turn and a follow-up, got {len(turns)}"
    (raw1, first), (raw2, second) = turns[-2], turns[-1]
    calls = [m for m in second["messages"] if m["role"] == "assistant" and m.get("tool_calls")]
    assert calls and calls[-1]["tool_calls"][0]["function"]["name"] == "Bash"
    assert orjson.loads(calls[-1]["tool_calls"][0]["function"]["arguments"])["command"] == COMMAND
    results = [m for m in second["messages"] if m["role"] == "tool"]
    assert results and "ferry-42" in str(results[-1]["content"])
    assert results[-1]["tool_call_id"] == calls[-1]["tool_calls"][0]["id"]

    # two consecutive turns share a byte-identical prefix: every byte of the first request up
    # to the end of its messages starts the second one, and the tools are the same bytes
    end = raw1.index(b'],"tools":')
    assert raw2[:end] == raw1[:end], "consecutive turns do not share a byte-identical prefix"
    assert len(second["messages"]) > len(first["messages"])
    tools1 = b'"tools":' + orjson.dumps(first["tools"])
    assert tools1 in raw1 and tools1 in raw2
    assert first["messages"][0] == second["messages"][0]
    assert first["prompt_cache_key"] == second["prompt_cache_key"]  # stable per conversation
    # Claude Code's schemas arrive cleaned and still strict about extra properties
    bash = next(t["function"] for t in first["tools"] if t["function"]["name"] == "Bash")
    assert bash["parameters"]["type"] == "object"
    assert bash["parameters"]["additionalProperties"] is False
    assert "command" in bash["parameters"]["required"]
