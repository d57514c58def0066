"""Record what the real Gemini CLI sends: `python -m tests.record_gemini_cli`.

Runs the pinned CLI (tests/gemini_cli.py) against the Gemini mock (tests/mock_gemini.py) on
127.0.0.1 for each scenario below and writes every request it made to
`tests/fixtures/gemini_cli/<scenario>.json`: method, path, query, headers (the key replaced by
`<redacted>`, `content-length` dropped) and the parsed body, with the run's temporary paths
replaced by `/tmp/gemini-cli/...`. `cli_plan` is the model of these scenarios for every
provider protocol (tests/model_mock.py).
"""
from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from tests.gemini_cli import gemini_command, run_gemini
from tests.mock_gemini import GeminiMock, Turn, calls, snake_get, text
from tests.model_mock import Call, Say, View

FIXTURES = Path(__file__).parent / "fixtures" / "gemini_cli"
COMMAND = "echo ferry-boat | tr a-z A-Z"  # prints FERRY-BOAT: proof that a shell ran it
SECOND = "echo second-crossing | rev"  # prints gnissorc-dnoces
ASK_ONE = "RUN-THE-FERRY-COMMAND"
ASK_TWO = "RUN-BOTH-FERRY-COMMANDS"
PLAIN_ANSWER = "Hello from the ferry mock: the crossing is calm."
SECRET_HEADERS = ("x-goog-api-key", "authorization")


def cli_plan(view: View) -> Say | Call:
    """The model of the shell scenarios, for any provider protocol: calls run_shell_command once
    (or twice in parallel) when the prompt asks and no result came back yet, then reports the
    results; a plain answer otherwise; JSON of the asked schema for the CLI's router (model
    `auto` scores each prompt with a structured-output call first)."""
    if view.json_schema is not None:
        return Say(json.dumps({"complexity_reasoning": "a greeting", "complexity_score": 5}))
    if view.latest:
        outputs = " and ".join(r.strip() for r in view.latest)
        return Say(f"The commands printed {outputs}; the ferry has arrived.")
    if "run_shell_command" in view.tools and ASK_TWO in view.user_text:
        return Call(("run_shell_command", {"command": COMMAND, "description": "Shout"}),
                    ("run_shell_command", {"command": SECOND, "description": "Reverse"}))
    if "run_shell_command" in view.tools and ASK_ONE in view.user_text:
        return Call(("run_shell_command", {"command": COMMAND,
                                           "description": "Print the ferry greeting"}))
    return Say(PLAIN_ANSWER)


def shell_plan(body: dict, model: str) -> Turn:
    """`cli_plan` as a Gemini model (with thought summaries)."""
    config = snake_get(body, "generationConfig") or {}
    schema = snake_get(config, "responseJsonSchema") or snake_get(config, "responseSchema")
    contents = snake_get(body, "contents")
    results = [snake_get(p, "functionResponse") for p in contents[-1].get("parts", [])
               if snake_get(p, "functionResponse")]
    user = [p.get("text", "") for c in contents if c.get("role", "user") == "user"
            for p in c.get("parts", [])]
    tools = {d.get("name"): {} for t in snake_get(body, "tools") or []
             for d in snake_get(t, "functionDeclarations") or []}
    decision = cli_plan(View(body, tools, user_text="\n".join(user), json_schema=schema, latest=[
        str(r.get("response", {}).get("output", "")) for r in results]))
    if schema is not None:
        return text(decision.text)
    if isinstance(decision, Say):
        return text(decision.text, thought="Time to answer.")
    return calls(*decision.calls, thought="The user wants commands run.")


# a 1x1 PNG: an @-referenced image goes as inlineData and makes the CLI call countTokens
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a0b3d1"
                    "b60000000049454e44ae426082")
FILES = {"image": {"ferry.png": PNG}}
SCENARIOS = {  # name: (prompt, --model ("" = the CLI's default, auto), yolo)
    "plain": ("Say hello to the ferry passengers.", "gemini-2.5-pro", False),
    "shell": (f"{ASK_ONE}: run the greeting command and tell me what it printed.",
              "gemini-2.5-pro", True),
    "parallel": (f"{ASK_TWO}: run both commands at once and tell me what they printed.",
                 "gemini-3-pro-preview", True),
    "auto_model": ("Say hello to the ferry passengers.", "", False),
    "image": ("Describe the picture @ferry.png in one sentence.", "gemini-2.5-flash", False),
}


def scrub(value, tmp: str):
    if isinstance(value, str):
        return value.replace(tmp, "/tmp/gemini-cli")
    if isinstance(value, list):
        return [scrub(v, tmp) for v in value]
    if isinstance(value, dict):
        return {k: scrub(v, tmp) for k, v in value.items()}
    return value


def as_fixture(mock: GeminiMock, tmp: str) -> list[dict]:
    out = []
    for got in mock.received:
        headers = {k.lower(): ("<redacted>" if k.lower() in SECRET_HEADERS else v)
                   for k, v in got.headers.items() if k.lower() not in ("content-length", "host")}
        out.append(scrub({"method": got.method, "path": got.path, "query": got.query,
                          "headers": headers, "body": got.json}, tmp))
    return out


async def record(gemini: list[str], name: str) -> list[dict]:
    prompt, model, yolo = SCENARIOS[name]
    mock = GeminiMock(plan=shell_plan)
    runner = web.AppRunner(mock.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        with tempfile.TemporaryDirectory(prefix="gemini-rec-") as tmp:
            run = await run_gemini(gemini, f"http://127.0.0.1:{port}", prompt, Path(tmp),
                                   model=model, yolo=yolo, files=FILES.get(name))
            if run.code != 0 or mock.rejected:
                raise SystemExit(f"{name}: {run.explain()}\nrejected: {mock.rejected}")
            print(f"{name}: {len(mock.received)} requests; stdout: {run.stdout.strip()[-200:]}")
            return as_fixture(mock, str(Path(tmp).resolve()))
    finally:
        await runner.cleanup()


async def main(names: list[str]) -> None:
    gemini = gemini_command()
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name in names or list(SCENARIOS):
        requests = await record(gemini, name)
        (FIXTURES / f"{name}.json").write_text(json.dumps(requests, indent=1) + "\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
