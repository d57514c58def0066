"""The real Codex CLI → ferryllm's Responses entry (`/v1/responses`) → an OpenAI-compatible
(Chat Completions), an Anthropic or a Responses (`openai_responses`) mock that behaves like a
model (tests/model_mock.py).

`codex exec` (tests/codex_cli.py: pinned npm release, temporary HOME/CODEX_HOME, a custom
provider with `wire_api = "responses"` whose `base_url` is the gateway, a model catalog entry
so Codex sends its full tool set) runs as a subprocess of the test's event loop. Each scenario
is run against both provider kinds: a plain answer; a shell round trip (the model asks for
`exec_command`, Codex runs it, the result comes back paired by call id, the final answer
prints); an `apply_patch` edit (Codex's freeform tool, a one-string-parameter function for
these providers) that really changes a file on disk; two parallel calls; a thinking block
whose signature comes back to the provider through Codex; upstream errors before and after the
first byte, which Codex must print (not hang on). A tap between Codex and ferryllm keeps every
stream ferryllm sent, and each one must follow OpenAI's grammar (tests/responses_grammar.py).
"""
from __future__ import annotations

from dataclasses import replace

import aiohttp
import orjson
import pytest
from aiohttp import web

from tests.codex_cli import KEY, CodexUnavailable, codex_command, run_codex
from tests.conftest import make_config
from tests.model_mock import Call, Fail, ModelMock, Say, View, signature_of
from tests.responses_grammar import check_stream, parse_sse

pytestmark = pytest.mark.codex

BACKEND_MODEL = "mock-coder-1"
CAP = 8192
CHAT_KINDS = ("openai", "anthropic")  # providers without Responses items or freeform tools
KINDS = (*CHAT_KINDS, "openai_responses")
PLAIN = "Hello from the ferry mock: the crossing is calm."
COMMAND = "echo ferry-$((40+2))"
PATCH = ("*** Begin Patch\n*** Update File: notes.txt\n@@\n-the ferry leaves at nine\n"
         "+the ferry leaves at ten\n*** End Patch\n")
CODEX_HEADERS = ("session-id", "thread-id", "originator", "x-client-request-id")
# what a Responses request carries that no Chat Completions or Messages provider accepts
CODEX_ONLY = ('"client_metadata"', '"include"', '"encrypted_content"', '"store"',
              '"custom_tool_call', '"function_call_output"', '"input_text"', '"summary"')


@pytest.fixture(scope="module")
def codex() -> list[str]:
    try:
        return codex_command()
    except CodexUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


class Tap:
    """Sits between Codex and ferryllm: forwards each request as it is and keeps the status and
    bytes of every answer, streamed through unchanged."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.answers: list[tuple[int, str, bytes]] = []  # status, content type, body
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "content-length", "accept-encoding")}
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            async with session.request(request.method, self.target + request.path_qs,
                                       data=body, headers=headers) as upstream:
                kind = upstream.headers.get("content-type", "")
                resp = web.StreamResponse(status=upstream.status,
                                          headers={"content-type": kind})
                await resp.prepare(request)
                data = []
                async for chunk in upstream.content.iter_any():
                    data.append(chunk)
                    await resp.write(chunk)
                self.answers.append((upstream.status, kind, b"".join(data)))
                await resp.write_eof()
                return resp

    def streams(self) -> list[dict]:
        """The final response body of every stream ferryllm sent, each checked for grammar."""
        finals = []
        for status, kind, raw in self.answers:
            assert status == 200, f"ferryllm answered {status}: {raw[:500]!r}"
            assert kind.startswith("text/event-stream"), kind
            finals.append(check_stream(parse_sse(raw)))
        return finals


@pytest.fixture
async def start(gateway, provider, aiohttp_server):
    """`tap = await start(mock)`: the mock, ferryllm routing every model to it, and a tap."""
    async def run(mock: ModelMock) -> Tap:
        url = await provider(mock)
        config = make_config({"mock": (mock.kind, url)},
                             [{"match": "*", "provider": "mock", "rewrite_model": BACKEND_MODEL}])
        config = replace(config, providers=tuple(replace(p, max_tokens_cap=CAP)
                                                 for p in config.providers))
        tap = Tap(await gateway(config))
        server = await aiohttp_server(tap.app())
        tap.url = f"http://127.0.0.1:{server.port}"
        return tap
    return run


def check_upstream(mock: ModelMock, turns: int) -> None:
    assert not mock.rejected, f"the provider rejected ferryllm's requests: {mock.rejected}"
    assert len(mock.bodies) == turns, f"{len(mock.bodies)} provider requests, wanted {turns}"
    for headers in mock.headers:  # Codex's key and session headers stay on the client side
        auth = headers.get("x-api-key") or headers.get("authorization", "")
        assert auth.endswith("sk-provider-mock") and KEY not in auth, auth
        leaked = sorted(h for h in headers if h.startswith("x-codex") or h in CODEX_HEADERS)
        assert not leaked, f"Codex's headers reached the provider: {leaked}"
    for body in mock.bodies:
        raw = orjson.dumps(body).decode()
        leaked = [f for f in CODEX_ONLY if f in raw]
        if mock.kind != "openai_responses":  # a Responses provider takes them all
            assert not leaked, f"Responses-only fields reached the {mock.kind} provider: {leaked}"
        assert body["model"] == BACKEND_MODEL and body["stream"] is True
        limit = body.get("max_tokens", body.get("max_completion_tokens",
                                                body.get("max_output_tokens")))
        if mock.kind == "anthropic" or limit is not None:  # required by Anthropic only
            assert 0 < limit <= CAP  # Codex sends no max_output_tokens: the cap applies
        assert "exec_command" in {n for n in _tools(mock, body)}


def _tools(mock: ModelMock, body: dict) -> dict[str, dict]:
    return mock.view(body).tools


def last_result(view: View) -> str:
    return view.results[view.calls[-1][0]]


@pytest.mark.parametrize("kind", KINDS)
async def test_plain_answer(codex, start, tmp_path, kind):
    mock = ModelMock(kind, lambda view: Say(PLAIN))
    tap = await start(mock)
    run = await run_codex(codex, tap.url, "Say hello.", tmp_path)
    assert run.code == 0, run.explain()
    assert run.last_message.strip() == PLAIN
    check_upstream(mock, 1)
    (final,) = tap.streams()
    assert final["status"] == "completed" and final["model"] == "ferry-coder"
    assert final["usage"]["input_tokens"] == 900 and final["usage"]["output_tokens"] == 25


def shell_plan(view: View) -> Say | Call:
    if not view.results:
        return Call(("exec_command", {"cmd": COMMAND}))
    return Say(f"The command printed {last_result(view).strip().splitlines()[-1]}.")


@pytest.mark.parametrize("kind", KINDS)
async def test_shell_round_trip(codex, start, tmp_path, kind):
    mock = ModelMock(kind, shell_plan)
    tap = await start(mock)
    run = await run_codex(codex, tap.url, "Run the greeting command and tell me what it printed.",
                          tmp_path)
    assert run.code == 0, run.explain()
    assert run.last_message.strip() == "The command printed ferry-42."
    check_upstream(mock, 2)
    view = mock.view(mock.bodies[1])
    (call_id, name, args), = view.calls
    assert (name, args) == ("exec_command", {"cmd": COMMAND})
    assert "ferry-42" in view.results[call_id]  # paired by the provider's own call id
    first, _ = tap.streams()
    (call,) = [i for i in first["output"] if i["type"] == "function_call"]
    assert call["call_id"] == call_id and orjson.loads(call["arguments"]) == {"cmd": COMMAND}


def patch_plan(view: View) -> Say | Call:
    if not view.results:
        if "apply_patch" not in view.freeform:  # a function with one string parameter
            schema = view.tools["apply_patch"]
            assert schema["properties"]["input"]["type"] == "string", schema
        return Call(("apply_patch", {"input": PATCH}))
    return Say("Updated notes.txt." if "Success" in last_result(view) else
               f"The patch failed: {last_result(view)}")


@pytest.mark.parametrize("kind", KINDS)
async def test_apply_patch_edits_a_file(codex, start, tmp_path, kind):
    (tmp_path / "work").mkdir()
    notes = tmp_path / "work" / "notes.txt"
    notes.write_text("the ferry leaves at nine\n")
    mock = ModelMock(kind, patch_plan)
    tap = await start(mock)
    run = await run_codex(codex, tap.url, "Change the departure time in notes.txt to ten.",
                          tmp_path)
    assert run.code == 0, run.explain()
    assert notes.read_text() == "the ferry leaves at ten\n"
    assert run.last_message.strip() == "Updated notes.txt."
    check_upstream(mock, 2)
    view = mock.view(mock.bodies[1])
    assert [(name, args) for _, name, args in view.calls] == [("apply_patch", {"input": PATCH})]
    first, _ = tap.streams()  # Codex got a freeform call whose input is the raw patch
    (call,) = [i for i in first["output"] if i["type"] == "custom_tool_call"]
    assert (call["name"], call["input"]) == ("apply_patch", PATCH)


def parallel_plan(view: View) -> Say | Call:
    if not view.results:
        return Call(("exec_command", {"cmd": "echo port-side"}),
                    ("exec_command", {"cmd": "echo starboard-side"}))
    heard = [view.results[call_id].strip().splitlines()[-1] for call_id, _, _ in view.calls]
    return Say("Heard " + " and ".join(heard) + ".")


@pytest.mark.parametrize("kind", KINDS)
async def test_two_parallel_calls(codex, start, tmp_path, kind):
    mock = ModelMock(kind, parallel_plan)
    tap = await start(mock)
    run = await run_codex(codex, tap.url, "Greet both sides of the ferry at once.", tmp_path)
    assert run.code == 0, run.explain()
    assert run.last_message.strip() == "Heard port-side and starboard-side."
    check_upstream(mock, 2)
    view = mock.view(mock.bodies[1])
    assert [args["cmd"] for _, _, args in view.calls] == ["echo port-side",
                                                          "echo starboard-side"]
    first, _ = tap.streams()
    calls = [i["call_id"] for i in first["output"] if i["type"] == "function_call"]
    assert calls == [call_id for call_id, _, _ in view.calls]


THOUGHT = "The user wants the greeting; running it is the quickest way."


def thinking_plan(view: View) -> Say | Call:
    if not view.results:
        return Call(("exec_command", {"cmd": COMMAND}), thinking=THOUGHT)
    return Say("Done: " + last_result(view).strip().splitlines()[-1], thinking="Report it.")


@pytest.mark.parametrize("kind", KINDS)
async def test_reasoning_reaches_codex_and_its_signature_comes_back(codex, start, tmp_path,
                                                                     kind):
    mock = ModelMock(kind, thinking_plan)
    tap = await start(mock)
    run = await run_codex(codex, tap.url, "Run the greeting command.", tmp_path)
    assert run.code == 0, run.explain()
    assert run.last_message.strip() == "Done: ferry-42"
    check_upstream(mock, 2)
    first, _ = tap.streams()
    (item,) = [i for i in first["output"] if i["type"] == "reasoning"]
    assert "".join(s["text"] for s in item["summary"]) == THOUGHT
    if kind != "openai":  # signed reasoning goes back to the provider kind that signed it
        assert item["encrypted_content"]
        assert mock.view(mock.bodies[1]).thinking == [(THOUGHT, signature_of(THOUGHT))]


@pytest.mark.parametrize("kind", KINDS)
async def test_upstream_error_before_the_first_byte_is_printed(codex, start, tmp_path, kind):
    mock = ModelMock(kind, lambda view: Fail(400, "The ferry model refuses this request."))
    tap = await start(mock)
    run = await run_codex(codex, tap.url, "Say hello.", tmp_path)
    assert run.code != 0, run.explain()
    assert "The ferry model refuses this request." in run.stderr, run.explain()
    status, _, raw = tap.answers[0]
    assert status == 400 and orjson.loads(raw)["error"]["message"]


@pytest.mark.parametrize("kind", KINDS)
async def test_upstream_error_mid_stream_is_printed(codex, start, tmp_path, kind):
    mock = ModelMock(kind, lambda view: Say("Half of this answer arrives and then",
                                            break_with="The ferry engine stalled."))
    tap = await start(mock)
    run = await run_codex(codex, tap.url, "Say hello.", tmp_path)
    assert run.code != 0, run.explain()
    assert "The ferry engine stalled." in run.stderr, run.explain()
    (final,) = tap.streams()  # a grammatical stream that ends in response.failed
    assert final["status"] == "failed" and final["error"]["code"]


@pytest.mark.parametrize("kind", CHAT_KINDS)
async def test_newest_model_tools_arrive_from_additional_tools(codex, start, tmp_path, kind):
    """Codex's newest models send no top-level `tools`: the tool set comes as an input item
    `additional_tools` holding namespaces (tests/fixtures/codex/newest_model.1.json). They reach
    the provider merged and flattened (`<namespace>__<tool>`), never dropped."""
    mock = ModelMock(kind, lambda view: Say(PLAIN))
    tap = await start(mock)
    run = await run_codex(codex, tap.url, "Say hello.", tmp_path, model="gpt-6.2-sol",
                          full_tools=False)
    assert run.code == 0, run.explain()
    assert run.last_message.strip() == PLAIN
    assert not mock.rejected and len(mock.bodies) == 1
    tools = mock.view(mock.bodies[0]).tools
    assert "functions__exec" in tools and all("__" in name for name in tools), sorted(tools)
    tap.streams()


COMPACTION = "CONTEXT CHECKPOINT COMPACTION"  # Codex's summarising prompt (local compaction)


def compaction_plan(view: View) -> Say | Call:
    if COMPACTION in view.user_text:
        return Say("SUMMARY: the first step ran and printed step-one.", input_tokens=1_000)
    if "SUMMARY: the first step ran" in view.user_text:
        return Say("Finished after compacting.", input_tokens=1_000)
    return Call(("exec_command", {"cmd": "echo step-one"}), input_tokens=50_000)


@pytest.mark.parametrize("kind", KINDS)
async def test_auto_compaction_runs_through_the_gateway(codex, start, tmp_path, kind):
    """A model that reports a context near the window makes Codex compact: for a custom
    provider that is one more ordinary `/v1/responses` request with its summarising prompt
    (never a `/responses/compact` endpoint), and the session continues from the summary."""
    mock = ModelMock(kind, compaction_plan)
    tap = await start(mock)
    run = await run_codex(codex, tap.url, "Run the first step.", tmp_path,
                          catalog={"context_window": 60_000, "auto_compact_token_limit": 40_000})
    assert run.code == 0, run.explain()
    assert run.last_message.strip() == "Finished after compacting.", run.explain()
    texts = [mock.view(body).user_text for body in mock.bodies]
    assert sum(COMPACTION in t for t in texts) == 1, texts
    assert not mock.rejected
    tap.streams()
