"""The real Claude Code CLI with an MCP server of 60 tools and DEFAULT settings (tool search on),
through ferryllm, to an OpenAI-compatible mock and to an Anthropic mock.

Claude Code defers MCP tools: its first request declares the built-in tools, a client-side
`ToolSearch` and a `DeferredToolPlaceholder` (`defer_loading: true`); the MCP tool names sit only
in a reminder. The mock model calls `ToolSearch`; Claude Code answers with `tool_reference`
blocks and declares the found tool with `defer_loading: true`. The mocks then call the MCP tool
only if its schema reached them, and answer with the tool's output, which must end up in the
CLI's stdout. The MCP server (`tests/mcp_server.py`, standard library only) logs every call.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import make_config
from tests.e2e.test_claude_code import check_upstream_hygiene, run_claude, start
from tests.mcp_server import BERTH_ANSWER, SERVER_NAME, TARGET_TOOL, TOOL_COUNT
from tests.model_mock import Call, ModelMock, Say, View

pytestmark = pytest.mark.claude_code

MCP_TOOL = f"mcp__{SERVER_NAME}__{TARGET_TOOL}"
SEARCH = {"query": f"select:{MCP_TOOL}", "max_results": 5}
PROMPT = "FIND-THE-BERTH: use the ferry tools to find where the ferry Nordlys is berthed."
MCP_SERVER = Path(__file__).resolve().parent.parent / "mcp_server.py"


@pytest.fixture(scope="module")
def claude():
    from tests.claude_code import ClaudeCodeUnavailable, claude_command
    try:
        return claude_command()
    except ClaudeCodeUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


def mcp_args(tmp: Path) -> tuple[tuple[str, ...], dict[str, str]]:
    config = {"mcpServers": {SERVER_NAME: {"command": sys.executable, "args": [str(MCP_SERVER)]}}}
    return (("--mcp-config", json.dumps(config), "--allowedTools", f"mcp__{SERVER_NAME}"),
            {"FERRY_MCP_LOG": str(tmp / "mcp-calls.jsonl")})


def mcp_calls(tmp: Path) -> list[dict]:
    log = tmp / "mcp-calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# ---------------------------------------------------------------- the model


def searching_plan(loaded: Callable[[View], bool]):
    """Searches for the MCP tool, calls it once `loaded(view)` says the search made it
    callable, answers with its output."""
    def plan(view: View) -> Say | Call:
        if view.latest:
            if BERTH_ANSWER in view.latest[-1]:
                return Say(f"The Nordlys is moored at {BERTH_ANSWER} says the harbour.")
            if loaded(view):
                return Call((MCP_TOOL, {"ferry": "Nordlys"}))
            return Say("The tool search gave me nothing I can call.")
        if "FIND-THE-BERTH" in view.user_text and "ToolSearch" in view.tools:
            return Call(("ToolSearch", SEARCH))
        return Say("Nothing to do.")
    return plan


def schema_arrived(view: View) -> bool:
    """OpenAI-compatible: the search's result carries the definition, the tool is declared."""
    return "<functions>" in view.latest[-1] and MCP_TOOL in view.tools


def reference_kept(view: View) -> bool:
    """Anthropic loads deferred tools itself: the result references the tool, which is declared
    with `defer_loading`."""
    last = view.body["messages"][-1]["content"]
    refs = [p.get("tool_name") for b in (last if isinstance(last, list) else ()) if b.get("type") == "tool_result"
            and isinstance(b.get("content"), list) for p in b["content"]
            if isinstance(p, dict) and p.get("type") == "tool_reference"]
    tool = next((t for t in view.body.get("tools") or () if t.get("name") == MCP_TOOL), {})
    return MCP_TOOL in refs and tool.get("defer_loading") is True


async def test_mcp_tool_found_by_tool_search_on_openai_backend(claude, gateway, provider, tmp_path):
    mock = ModelMock("openai", searching_plan(schema_arrived))
    base = await start(gateway, provider, mock)
    args, env = mcp_args(tmp_path)
    code, out, err = await run_claude(claude, base, PROMPT, tmp_path, args, env)
    assert code == 0, f"claude exited {code}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert BERTH_ANSWER in out, f"stdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert mcp_calls(tmp_path) == [{"name": TARGET_TOOL, "arguments": {"ferry": "Nordlys"}}]
    check_upstream_hygiene(mock)  # no defer_loading, no Anthropic-only field

    main = [b for b in mock.bodies if any(
        t["function"]["name"] == "ToolSearch" for t in b.get("tools") or ())]
    first = main[0]
    names = [t["function"]["name"] for t in first["tools"]]
    assert MCP_TOOL not in names and "DeferredToolPlaceholder" not in names
    assert len(names) < TOOL_COUNT  # the 60 MCP tools stay deferred until searched
    # after the search the tool's schema is among the provider's tools, and the search's
    # result carries its definition instead of nothing
    loaded = next(b for b in main if any(m.get("role") == "tool" for m in b["messages"]))
    schema = next(t["function"] for t in loaded["tools"] if t["function"]["name"] == MCP_TOOL)
    assert schema["parameters"]["required"] == ["ferry"]
    result = next(m for m in loaded["messages"] if m.get("role") == "tool")["content"]
    assert f'"name":"{MCP_TOOL}"' in result and result.startswith("<functions>")
    # the call and its output went back to the provider on the last turn
    final = main[-1]
    calls = [c["function"]["name"] for m in final["messages"] if m.get("tool_calls")
             for c in m["tool_calls"]]
    assert calls == ["ToolSearch", MCP_TOOL]
    assert BERTH_ANSWER in str([m for m in final["messages"] if m.get("role") == "tool"][-1])
    # consecutive turns after the load share their prefix (prompt cache)
    raw = [r for r, b in zip(mock.raw, mock.bodies) if b in main]
    end = raw[-2].index(b'],"tools":')
    assert raw[-1][:end] == raw[-2][:end]


async def test_mcp_tool_search_on_anthropic_backend_keeps_deferral(claude, gateway, provider,
                                                                   tmp_path):
    mock = ModelMock("anthropic", searching_plan(reference_kept))
    url = await provider(mock)
    base = await gateway(make_config({"ant": ("anthropic", url)}))
    args, env = mcp_args(tmp_path)
    code, out, err = await run_claude(claude, base, PROMPT, tmp_path, args, env)
    assert code == 0, f"claude exited {code}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert BERTH_ANSWER in out, f"stdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert mcp_calls(tmp_path) == [{"name": TARGET_TOOL, "arguments": {"ferry": "Nordlys"}}]
    assert not mock.rejected, f"the provider rejected ferryllm's requests: {mock.rejected}"
    main = [b for b in mock.bodies if any(t.get("name") == "ToolSearch" for t in b.get("tools") or ())]
    # deferral untouched: the placeholder and the found tool keep defer_loading, and the
    # search's tool_reference reached the provider as Claude Code sent it
    assert all(any(t.get("name") == "DeferredToolPlaceholder" and t.get("defer_loading")
                   for t in b["tools"]) for b in main)
    final = main[-1]
    assert next(t for t in final["tools"] if t["name"] == MCP_TOOL)["defer_loading"] is True
    assert {"type": "tool_reference", "tool_name": MCP_TOOL} in [
        p for m in final["messages"] if isinstance(m["content"], list) for b in m["content"]
        if b.get("type") == "tool_result" and isinstance(b.get("content"), list)
        for p in b["content"]]
