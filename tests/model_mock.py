"""Providers that behave like a model in an agent loop, for the coding-CLI end-to-end tests
(Claude Code, Codex, Gemini CLI).

`ModelMock(kind, plan)` serves an OpenAI-compatible Chat Completions (`kind="openai"`,
`POST /v1/chat/completions`), an Anthropic Messages (`kind="anthropic"`, `POST /v1/messages`,
and `/v1/messages/count_tokens`) or an OpenAI Responses (`kind="openai_responses"`,
`POST /v1/responses`, checked and streamed by tests/mock_responses.py; freeform tools are called
natively) provider. Each request is read into a protocol-neutral `View` (tool names and schemas,
the calls made so far, their results by call id and those of the latest turn, the structured
output schema asked for, the body itself) and `plan(view)` decides the answer: `Say(text)` or
`Call((name, args), …)` (several = parallel calls), either after a reasoning block (`thinking=`:
Anthropic `thinking` with a signature, OpenAI `reasoning_content`), or `Fail(status, message)`
(the provider's error body) before the first byte, or `Say(…, break_with=message)` for an error
event after the text has started. A streaming request gets the provider's real SSE, another the
whole JSON answer (Chat Completions and Messages; a JSON-mode call is answered by a plan's
`Say(json)`). Requests the real APIs reject are rejected the same way, and listed in `rejected`:
a tool result with no call of that id before it, a call left without its result, a thinking
block without its signature, Anthropic's `max_tokens`/thinking/`output_config.format` rules.
Every request is kept: `raw` (bytes), `bodies` (parsed), `headers` (names lower-cased).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Callable

import orjson
from aiohttp import web

from tests import model_streams as streams
from tests.model_streams import OUTPUT_TOKENS, signature_of  # noqa: F401 - for the tests
from tests.responses_rules import RequestRejected, check_request

INPUT_TOKENS = 900  # the prompt usage an answer reports unless it says otherwise


@dataclass
class Say:
    text: str
    thinking: str | None = None
    break_with: str | None = None  # an error event after the first half of the text
    input_tokens: int = INPUT_TOKENS  # the usage reported (a large one makes Codex compact)
    calls: tuple = ()


@dataclass
class Call:
    calls: tuple[tuple[str, dict], ...]
    thinking: str | None = None
    input_tokens: int = INPUT_TOKENS
    text = None
    break_with = None

    def __init__(self, *calls: tuple[str, dict], thinking: str | None = None,
                 input_tokens: int = INPUT_TOKENS) -> None:
        self.calls, self.thinking, self.input_tokens = calls, thinking, input_tokens


@dataclass
class Fail:
    status: int
    message: str
    kind: str | None = None  # the error's `type`; None: the provider's type for the status


@dataclass
class View:
    body: dict = field(default_factory=dict)  # the request as sent, for protocol details
    tools: dict[str, dict] = field(default_factory=dict)  # name -> parameter schema
    calls: list[tuple[str, str, dict]] = field(default_factory=list)  # (id, name, args)
    results: dict[str, str] = field(default_factory=dict)  # call id -> result text
    latest: list[str] = field(default_factory=list)  # results since the last model turn
    thinking: list[tuple[str, str]] = field(default_factory=list)  # (text, signature) given back
    freeform: set[str] = field(default_factory=set)  # tools called with raw text (Responses)
    user_text: str = ""  # every user message's text, joined (tool results excluded)
    json_schema: dict | None = None  # structured output asked for: answer JSON of this schema

    def result(self, call_id: str, text: str) -> None:
        self.results[call_id] = text
        self.latest.append(text)


Plan = Callable[[View], "Say | Call | Fail"]


class Rejected(Exception):
    pass


def _text(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


def openai_view(body: dict) -> View:
    view = View(body, {(t.get("function") or {}).get("name"): (t.get("function") or {}).get(
        "parameters") or {} for t in body.get("tools") or []})
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        view.json_schema = (fmt.get("json_schema") or {}).get("schema") or {}
    pending: set[str] = set()
    for n, message in enumerate(body.get("messages") or []):
        if message.get("role") == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                raise Rejected(f"Invalid parameter: messages with role 'tool' must be a response "
                               f"to a preceeding message with 'tool_calls' (messages[{n}]).")
            pending.discard(call_id)
            view.result(call_id, _text(message.get("content")))
            continue
        if message.get("role") == "user":
            view.user_text += _text(message.get("content")) + "\n"
        if pending:
            raise Rejected("An assistant message with 'tool_calls' must be followed by tool "
                           "messages responding to each 'tool_call_id'. The following "
                           f"tool_call_ids did not have response messages: {sorted(pending)}")
        if message.get("role") == "assistant":
            view.latest = []
        for call in message.get("tool_calls") or []:
            fn = call["function"]
            view.calls.append((call["id"], fn["name"], orjson.loads(fn["arguments"] or "{}")))
            pending.add(call["id"])
    if pending:
        raise Rejected(f"tool_call_ids did not have response messages: {sorted(pending)}")
    return view


def _check_anthropic(body: dict) -> None:
    if not isinstance(body.get("max_tokens"), int):
        raise Rejected("max_tokens: Field required")
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or not 1024 <= budget < body["max_tokens"]:
            raise Rejected("thinking.budget_tokens: must be >= 1024 and less than max_tokens")
        if body.get("temperature", 1) != 1 or "top_k" in body:
            raise Rejected("`temperature` may only be set to 1 and `top_k` not at all when "
                           "thinking is enabled")
        if not 0.95 <= body.get("top_p", 1) <= 1:
            raise Rejected("`top_p` must be between 0.95 and 1 when thinking is enabled")
    fmt = (body.get("output_config") or {}).get("format")
    if fmt is not None:
        if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
            raise Rejected("output_config.format: must be {type: json_schema, schema: {...}}")
        _closed_objects(fmt["schema"], "output_config.format.schema")


def _closed_objects(schema, where: str) -> None:
    """Anthropic's structured outputs take only objects closed by `additionalProperties: false`."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
            raise Rejected(f"{where}: For 'object' type, 'additionalProperties' must be "
                           "explicitly set to false")
        for key, value in schema.items():
            _closed_objects(value, f"{where}.{key}")
    elif isinstance(schema, list):
        for n, value in enumerate(schema):
            _closed_objects(value, f"{where}.{n}")


def anthropic_view(body: dict) -> View:
    _check_anthropic(body)
    view = View(body, {t.get("name"): t.get("input_schema") or {}
                       for t in body.get("tools") or []})
    fmt = (body.get("output_config") or {}).get("format")
    view.json_schema = fmt["schema"] if fmt else None
    pending: set[str] = set()
    for n, message in enumerate(body.get("messages") or []):
        blocks = message.get("content")
        if message.get("role") == "user":
            view.user_text += _text(blocks) + "\n"
        else:
            view.latest = []
        blocks = blocks if isinstance(blocks, list) else []
        results = [b for b in blocks if b.get("type") == "tool_result"]
        if pending and {b.get("tool_use_id") for b in results} != pending:
            raise Rejected(f"messages.{n}: `tool_use` ids were found without `tool_result` "
                           f"blocks immediately after: {sorted(pending)}")
        for block in results:
            if block.get("tool_use_id") not in pending:
                raise Rejected(f"messages.{n}.content: unexpected `tool_use_id` found in "
                               "`tool_result` blocks")
            view.result(block["tool_use_id"], _text(block.get("content")))
        pending = set()
        for block in blocks:
            if block.get("type") == "thinking":
                if not block.get("signature"):
                    raise Rejected(f"messages.{n}.content: thinking.signature: Field required")
                view.thinking.append((block.get("thinking", ""), block["signature"]))
            if block.get("type") == "tool_use":
                view.calls.append((block["id"], block["name"], block.get("input") or {}))
                pending.add(block["id"])
    if pending:
        raise Rejected("`tool_use` ids were found without `tool_result` blocks: "
                       f"{sorted(pending)}")
    return view


def responses_view(body: dict) -> View:
    """A Responses body (already checked: every call has its output) → View; a freeform
    (`custom`) call's raw text reads as `{"input": text}` like the function it is elsewhere."""
    view = View(body)
    for tool in body.get("tools") or []:
        view.tools[tool.get("name")] = tool.get("parameters") or {}
        if tool.get("type") == "custom":
            view.freeform.add(tool["name"])
    for item in body["input"] if isinstance(body.get("input"), list) else []:
        kind = item.get("type")
        if kind in ("function_call_output", "custom_tool_call_output"):
            view.result(item["call_id"], _text(item["output"]))
            continue
        if kind == "message" and item.get("role") == "user":
            view.user_text += _text(item.get("content")) + "\n"
            continue
        view.latest = []  # the model's turn: a call, its reasoning or its message
        if kind == "function_call":
            view.calls.append((item["call_id"], item["name"], orjson.loads(item["arguments"])))
        elif kind == "custom_tool_call":
            view.calls.append((item["call_id"], item["name"], {"input": item["input"]}))
        elif kind == "reasoning":
            view.thinking.append(("".join(s["text"] for s in item["summary"]),
                                  item.get("encrypted_content") or ""))
    return view


KINDS = {  # kind: (path, view, stream, whole answer (None: streaming only), error body)
    "openai": ("/v1/chat/completions", openai_view, streams.openai_stream, streams.openai_whole,
               streams.openai_error),
    "anthropic": ("/v1/messages", anthropic_view, streams.anthropic_stream,
                  streams.anthropic_whole, streams.anthropic_error),
    "openai_responses": ("/v1/responses", responses_view, streams.responses_stream, None,
                         streams.openai_error)}


class ModelMock:
    def __init__(self, kind: str, plan: Plan) -> None:
        self.kind, self.plan = kind, plan
        self.path, self.view, self.stream, self.whole, self.error_body = KINDS[kind]
        self.raw: list[bytes] = []
        self.bodies: list[dict] = []
        self.headers: list[dict[str, str]] = []  # of each request, names lower-cased
        self.rejected: list[str] = []  # every request refused (not a scripted Fail), and why

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def _error(self, status: int, message: str, kind: str | None = None,
               scripted: bool = False) -> web.Response:
        if not scripted:
            self.rejected.append(message)
        return web.json_response(self.error_body(status, message, kind), status=status)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        if request.method == "POST" and self.kind == "anthropic" \
                and request.path == self.path + "/count_tokens":
            return web.json_response({"input_tokens": 1000})
        if request.method != "POST" or request.path != self.path:
            return self._error(404, f"no route {request.method} {request.path}")
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        self.raw.append(raw)
        self.bodies.append(body := orjson.loads(raw))
        if self.kind == "openai_responses":
            try:
                check_request(raw, request.headers)
            except RequestRejected as exc:
                return self._error(exc.status, f"{exc.param}: {exc.message}")
        streaming = body.get("stream") is True
        if not streaming and self.whole is None:
            return self._error(400, "this mock only streams")
        try:
            answer = self.plan(self.view(body))
        except Rejected as exc:
            return self._error(400, str(exc))
        if isinstance(answer, Fail):
            return self._error(answer.status, answer.message, answer.kind, scripted=True)
        if not streaming:
            return web.json_response(self.whole(body, answer))
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for chunk in self.stream(body, answer):
            await resp.write(chunk)
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp
