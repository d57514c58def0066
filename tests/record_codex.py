"""Record what the real Codex CLI sends to a Responses provider: `python -m tests.record_codex`.

Runs `codex exec` (tests/codex_cli.py) against the Responses mock (tests/mock_responses.py)
in a few scripted conversations and writes every request Codex made — method, path, headers
(the key redacted) and JSON body — to `tests/fixtures/codex/<scenario>.<n>.json`. The fixtures
README says what each one shows. Re-run after bumping the pinned Codex version.
"""
from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import orjson
from aiohttp import web

from tests.codex_cli import codex_command, run_codex
from tests.mock_responses import ResponsesMock, Turn, custom_call, function_call, reasoning, text, turn

OUT = Path(__file__).resolve().parent / "fixtures" / "codex"
PATCH = ("*** Begin Patch\n*** Update File: notes.txt\n@@\n-the ferry leaves at nine\n"
         "+the ferry leaves at ten\n*** End Patch\n")
SECRET_HEADERS = ("authorization",)


def scenarios() -> dict[str, tuple[str, list[Turn], dict[str, str], dict]]:
    """name -> (prompt, turns, files to create in the workspace, run_codex options)."""
    return {
        "unknown_model": ("Say hello to the ferry passengers.",
                          [turn(text("Hello, passengers!"))], {}, {"full_tools": False}),
        "bare_config": ("Say hello to the ferry passengers.",
                        [turn(text("Hello, passengers!"))], {},
                        {"full_tools": False, "bare": True}),
        "newest_model": ("Say hello to the ferry passengers.",
                         [turn(text("Hello, passengers!"))], {},
                         {"full_tools": False, "bare": True, "model": "gpt-6.2-sol"}),
        "first_turn": ("Say hello to the ferry passengers.",
                       [turn(text("Hello, passengers!"))], {}, {}),
        "shell": ("Run `echo ferry-$((40+2))` and tell me what it printed.", [
            turn(reasoning("Running the command the user asked for."),
                 text("I will run the command."),
                 function_call("exec_command", {"cmd": "echo ferry-$((40+2))"}),
                 reasoning_tokens=12),
            turn(text("The command printed ferry-42."))], {}, {}),
        "apply_patch": ("Change the departure time in notes.txt to ten.", [
            turn(custom_call("apply_patch", PATCH)),
            turn(text("Updated notes.txt."))],
            {"notes.txt": "the ferry leaves at nine\n"}, {}),
        "parallel": ("Print both greetings at once.", [
            turn(function_call("exec_command", {"cmd": "echo port"}),
                 function_call("exec_command", {"cmd": "echo starboard"})),
            turn(text("Both sides answered."))], {}, {}),
    }


def scrub(headers: dict[str, str]) -> dict[str, str]:
    return {k: ("<redacted>" if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


async def record(name: str, prompt: str, turns: list[Turn], files: dict[str, str],
                 options: dict, codex: list[str]) -> int:
    mock = ResponsesMock(*turns)
    runner = web.AppRunner(mock.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "work"
            work.mkdir()
            for path, content in files.items():
                (work / path).write_text(content)
            run = await run_codex(codex, f"http://127.0.0.1:{port}", prompt, Path(tmp), **options)
            if run.code != 0:
                print(run.explain(), file=sys.stderr)
    finally:
        await runner.cleanup()
    for n, seen in enumerate(mock.seen, 1):
        record = {"method": "POST", "path": seen.path, "status": seen.status,
                  "headers": scrub(seen.headers), "body": seen.json}
        (OUT / f"{name}.{n}.json").write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    return len(mock.seen)


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    codex = codex_command()
    for name, (prompt, turns, files, options) in scenarios().items():
        count = await record(name, prompt, turns, files, options, codex)
        print(f"{name}: {count} request(s)")


if __name__ == "__main__":
    asyncio.run(main())
