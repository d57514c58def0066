"""The real Codex CLI directly against the Responses mock provider (no ferryllm): proof that the
mock speaks the Responses API as Codex expects it, and that Codex's requests pass the checks
the real API makes (every request below must be accepted: a 400 fails the test).

Covers a plain answer, a shell round trip (the result comes back paired by `call_id`), an
`apply_patch` edit that changes a file on disk, and two parallel calls."""
from __future__ import annotations

import re
import shlex
import shutil

import orjson
import pytest

from tests.codex_cli import CodexUnavailable, codex_command, run_codex
from tests.mock_responses import (ResponsesMock, custom_call, function_call, reasoning, text,
                                  turn)
from tests.npm_cli import ROOT

pytestmark = pytest.mark.codex
EXAMPLES = ROOT / "examples" / "codex"

PATCH = ("*** Begin Patch\n*** Update File: notes.txt\n@@\n-the ferry leaves at nine\n"
         "+the ferry leaves at ten\n*** End Patch\n")


@pytest.fixture(scope="module")
def codex() -> list[str]:
    try:
        return codex_command()
    except CodexUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
async def serve(aiohttp_server):
    async def start(mock: ResponsesMock) -> str:
        server = await aiohttp_server(mock.app())
        return f"http://127.0.0.1:{server.port}"
    return start


def outputs(body: dict, kind: str) -> dict[str, str]:
    return {i["call_id"]: i["output"] for i in body["input"] if i.get("type") == kind}


def check_all_accepted(mock: ResponsesMock, count: int) -> list[dict]:
    rejected = [(s.status, s.body[:300]) for s in mock.seen if s.status != 200]
    assert not rejected, f"the mock rejected Codex's requests: {rejected}"
    assert len(mock.seen) == count, [s.path for s in mock.seen]
    return mock.accepted


async def test_plain_answer(codex, serve, tmp_path):
    mock = ResponsesMock(turn(text("Hello from the ferry mock.")))
    run = await run_codex(codex, await serve(mock), "Say hello.", tmp_path)
    assert run.code == 0, run.explain()
    assert run.last_message.strip() == "Hello from the ferry mock."
    (body,) = check_all_accepted(mock, 1)
    assert body["stream"] is True and body["store"] is False
    tools = {t.get("name"): t["type"] for t in body["tools"]}
    assert tools["apply_patch"] == "custom" and tools["exec_command"] == "function"


async def test_shell_round_trip(codex, serve, tmp_path):
    call = function_call("exec_command", {"cmd": "echo ferry-$((40+2))"})
    mock = ResponsesMock(turn(reasoning("Run it."), call),
                         turn(text("The command printed ferry-42.")))
    run = await run_codex(codex, await serve(mock), "Run the greeting command.", tmp_path)
    assert run.code == 0, run.explain()
    assert "ferry-42" in run.last_message
    first, second = check_all_accepted(mock, 2)
    assert "ferry-42" in outputs(second, "function_call_output")[call.call_id]
    echoed = [i for i in second["input"] if i.get("type") == "reasoning"]
    assert echoed and echoed[0]["encrypted_content"]  # given back for a stateless API
    assert first["prompt_cache_key"] == second["prompt_cache_key"]


async def test_apply_patch_edits_the_file(codex, serve, tmp_path):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("the ferry leaves at nine\n")
    patch = custom_call("apply_patch", PATCH)
    mock = ResponsesMock(turn(patch), turn(text("Updated notes.txt.")))
    run = await run_codex(codex, await serve(mock), "Change the time to ten.", tmp_path)
    assert run.code == 0, run.explain()
    assert (tmp_path / "work" / "notes.txt").read_text() == "the ferry leaves at ten\n"
    _, second = check_all_accepted(mock, 2)
    call = next(i for i in second["input"] if i.get("type") == "custom_tool_call")
    assert call["input"] == PATCH and call["call_id"] == patch.call_id
    assert "Success" in outputs(second, "custom_tool_call_output")[patch.call_id]


async def test_two_parallel_calls(codex, serve, tmp_path):
    port = function_call("exec_command", {"cmd": "echo port-side"})
    starboard = function_call("exec_command", {"cmd": "echo starboard-side"})
    mock = ResponsesMock(turn(port, starboard), turn(text("Both sides answered.")))
    run = await run_codex(codex, await serve(mock), "Greet both sides.", tmp_path)
    assert run.code == 0, run.explain()
    assert run.last_message.strip() == "Both sides answered."
    _, second = check_all_accepted(mock, 2)
    results = outputs(second, "function_call_output")
    assert "port-side" in results[port.call_id]
    assert "starboard-side" in results[starboard.call_id]
    calls = [orjson.loads(i["arguments"])["cmd"] for i in second["input"]
             if i.get("type") == "function_call"]
    assert calls == ["echo port-side", "echo starboard-side"]


async def test_documented_config_sends_the_full_tool_set(codex, serve, tmp_path):
    """docs/codex.md's files as they are (examples/codex/): Codex knows the model name from the
    catalog next to config.toml, sends `apply_patch` as a freeform tool, and connects to
    nothing but the gateway (every connect() seen by strace)."""
    mock = ResponsesMock(turn(text("Configured.")))
    url = await serve(mock)
    codex_home = tmp_path / "home" / ".codex"
    codex_home.mkdir(parents=True)
    (codex_home / "ferry-models.json").write_bytes((EXAMPLES / "ferry-models.json").read_bytes())
    config = (EXAMPLES / "config.toml").read_text()
    assert 'base_url = "http://127.0.0.1:3000/v1"' in config
    config = config.replace("http://127.0.0.1:3000", url)
    strace = shutil.which("strace")
    assert strace, "strace is needed to see where Codex connects (apt-get install strace)"
    trace = tmp_path / "connect.trace"
    run = await run_codex([strace, "-f", "-qq", "-e", "trace=connect", "-o", str(trace), *codex],
                          url, "Say hello.", tmp_path, config=config,
                          env={"FERRYLLM_API_KEY": "client-key"})
    assert run.code == 0, run.explain()
    # the only place Codex connects to is the gateway: no DNS, no other host
    hosts = set(re.findall(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"',
                           trace.read_text()))
    assert hosts == {("127.0.0.1", "")}, hosts
    assert "not found. Defaulting to fallback metadata" not in run.stderr
    (body,) = check_all_accepted(mock, 1)
    assert body["model"] == "ferry-coder"
    assert mock.seen[0].headers["Authorization"] == "Bearer client-key"
    tools = {t.get("name"): t for t in body["tools"]}
    assert tools["apply_patch"]["type"] == "custom"
    assert tools["apply_patch"]["format"]["type"] == "grammar"
    assert body["reasoning"]["effort"] == "medium"


def documented_flags() -> list[str]:
    """The `codex exec -c …` command of docs/codex.md, without `codex exec` and the prompt."""
    text = (ROOT / "docs" / "codex.md").read_text()
    block = text.split("with `-c` flags")[1].split("```sh")[1].split("```")[0]
    argv = shlex.split(block.replace("\\\n", " "))
    assert argv[:2] == ["codex", "exec"], argv
    return argv[2:-1]


async def test_documented_flags_need_no_config_file(codex, serve, tmp_path):
    """The `-c` flags of docs/codex.md, with an empty config.toml, reach the provider with the
    model name and the full tool set."""
    mock = ResponsesMock(turn(text("Flagged.")))
    url = await serve(mock)
    flags = [f.replace("http://127.0.0.1:3000", url).replace(
        "/home/me/.codex/ferry-models.json", str(EXAMPLES / "ferry-models.json"))
        for f in documented_flags()]
    run = await run_codex(codex, url, "Say hello.", tmp_path, config="", args=tuple(flags),
                          env={"FERRYLLM_API_KEY": "client-key"})
    assert run.code == 0, run.explain()
    assert run.last_message.strip() == "Flagged."
    (body,) = check_all_accepted(mock, 1)
    assert body["model"] == "ferry-coder"
    assert {t.get("name"): t["type"] for t in body["tools"]}["apply_patch"] == "custom"
