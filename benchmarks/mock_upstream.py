"""A fast mock upstream for benchmarks: OpenAI-compatible `POST /v1/chat/completions`,
Anthropic `POST /v1/messages`, Gemini `POST /v1beta/models/{model}:generateContent` /
`:streamGenerateContent?alt=sse` and the OpenAI Responses API `POST /v1/responses`, streaming
and not, with a configurable chunk count, chunk size,
time to first byte and gap between chunks, and tool-call streams.

It must never be the bottleneck, so every response is encoded once and cached: the bytes for a
given (protocol, model, chunks, size, tool calls) are the same for every request (fixed ids), and
without a gap a whole stream goes out in one `write()`.

    python -m benchmarks.mock_upstream --openai-port 8081 --anthropic-port 8082 --gemini-port 8083 \
        --responses-port 8084
    python -m benchmarks.mock_upstream --port 8081 --protocol openai --chunks 20 --chunk-bytes 20
    python -m benchmarks.mock_upstream --engine aiohttp ...   # the aiohttp app instead of the raw engine

`MOCK_DELAY_MS` (as in the Rust reference) is the default time to first byte. Per-request
overrides: headers `x-mock-chunks`, `x-mock-chunk-bytes`, `x-mock-ttfb-ms`, `x-mock-gap-ms`,
`x-mock-tool-calls`, `x-mock-status` (answer with that error status) and `x-mock-truncate: 1`
(end the stream without its final events, as a provider that dies mid-stream).
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import sys
from dataclasses import dataclass

if not __package__:  # run as a file (python benchmarks/mock_upstream.py): make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import orjson
from aiohttp import web

from ferryllm.loop import event_loop_factory

FIXED_CREATED = 1_700_000_000
INPUT_TOKENS = 12
SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}
JSON_HEADERS = {"content-type": "application/json"}
TEXT = b"The quick brown fox jumps over the lazy dog. " * 4
CACHE_MAX = 256
RAW_SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
                b"transfer-encoding: chunked\r\n\r\n")
RAW_JSON_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"


@dataclass(frozen=True, slots=True)
class MockConfig:
    chunks: int = 20  # content chunks (text deltas)
    chunk_bytes: int = 20  # bytes of text per chunk
    ttfb_ms: float = 0.0  # delay before the first byte (headers included)
    gap_ms: float = 0.0  # delay between chunks
    tool_calls: int = 0  # tool calls streamed after the text
    tool_calls_if_offered: int = 1  # tool calls when the request offers tools and tool_calls is 0
    protocol: str = "both"  # which routes to mount: openai, anthropic, both, gemini or responses


@dataclass(frozen=True, slots=True)
class Shape:
    protocol: str
    model: str
    chunks: int
    chunk_bytes: int
    tool_calls: int
    tool_name: str
    truncate: bool


@dataclass(frozen=True, slots=True)
class Encoded:
    parts: tuple[bytes, ...]  # stream writes when there is a gap: first, then one per chunk
    whole: bytes  # the whole stream in one piece
    json: bytes  # the non-streaming body
    raw_parts: tuple[bytes, ...]  # `parts` as HTTP/1.1 chunks, the response head in the first
    raw_whole: bytes  # the whole streaming response: head, one chunk, the last chunk
    raw_json: bytes  # the whole non-streaming response


def _text(i: int, size: int) -> str:
    start = (i * 7) % 45
    return (TEXT[start:start + size] if size <= len(TEXT) - start else
            (TEXT * (size // len(TEXT) + 2))[start:start + size]).decode()


def _args(k: int, size: int) -> str:
    return orjson.dumps({"query": _text(k, max(size, 1)), "n": k}).decode()


def _pieces(s: str, size: int) -> list[str]:
    size = max(size, 1)
    return [s[i:i + size] for i in range(0, len(s), size)] or [""]


def _openai(shape: Shape) -> Encoded:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": FIXED_CREATED,
            "model": shape.model}

    def frame(delta: dict, finish: str | None = None) -> bytes:
        return b"data: " + orjson.dumps(
            {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + b"\n\n"

    texts = [_text(i, shape.chunk_bytes) for i in range(shape.chunks)]
    frames = [frame({"role": "assistant", "content": ""})]
    frames += [frame({"content": t}) for t in texts]
    calls = []
    for k in range(shape.tool_calls):
        call_id, args = f"call_bench{k}", _args(k, shape.chunk_bytes)
        calls.append((call_id, args))
        frames.append(frame({"tool_calls": [{"index": k, "id": call_id, "type": "function",
                                             "function": {"name": shape.tool_name, "arguments": ""}}]}))
        frames += [frame({"tool_calls": [{"index": k, "function": {"arguments": p}}]})
                   for p in _pieces(args, shape.chunk_bytes)]
    finish = "tool_calls" if calls else "stop"
    completion = shape.chunks + 8 * shape.tool_calls
    usage = {"prompt_tokens": INPUT_TOKENS, "completion_tokens": completion,
             "total_tokens": INPUT_TOKENS + completion}
    tail = (frame({}, finish) + b"data: " + orjson.dumps({**base, "choices": [], "usage": usage})
            + b"\n\ndata: [DONE]\n\n")
    message: dict = {"role": "assistant", "content": "".join(texts)}
    if calls:
        message["tool_calls"] = [{"id": i, "type": "function",
                                  "function": {"name": shape.tool_name, "arguments": a}}
                                 for i, a in calls]
    body = orjson.dumps({"id": "chatcmpl-bench", "object": "chat.completion", "created": FIXED_CREATED,
                         "model": shape.model, "choices": [{"index": 0, "message": message,
                                                             "finish_reason": finish}],
                         "usage": usage})
    return _assemble(frames, b"" if shape.truncate else tail, body)


def _anthropic(shape: Shape) -> Encoded:
    def frame(kind: str, data: dict) -> bytes:
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"

    completion = shape.chunks + 8 * shape.tool_calls
    texts = [_text(i, shape.chunk_bytes) for i in range(shape.chunks)]
    frames = [frame("message_start", {"message": {
        "id": "msg_bench", "type": "message", "role": "assistant", "model": shape.model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1}}})
        + b'event: ping\ndata: {"type": "ping"}\n\n']
    content: list[dict] = []
    index = 0
    if texts:
        frames[0] += frame("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        frames += [frame("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": t}})
                   for t in texts]
        frames[-1] += frame("content_block_stop", {"index": 0})
        content.append({"type": "text", "text": "".join(texts)})
        index = 1
    for k in range(shape.tool_calls):
        call_id, args = f"toolu_bench{k}", _args(k, shape.chunk_bytes)
        frames.append(frame("content_block_start", {"index": index, "content_block": {
            "type": "tool_use", "id": call_id, "name": shape.tool_name, "input": {}}}))
        frames += [frame("content_block_delta", {"index": index, "delta": {
            "type": "input_json_delta", "partial_json": p}}) for p in _pieces(args, shape.chunk_bytes)]
        frames[-1] += frame("content_block_stop", {"index": index})
        content.append({"type": "tool_use", "id": call_id, "name": shape.tool_name,
                        "input": orjson.loads(args)})
        index += 1
    stop = "tool_use" if shape.tool_calls else "end_turn"
    tail = (frame("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                    "usage": {"output_tokens": completion}})
            + frame("message_stop", {}))
    body = orjson.dumps({"id": "msg_bench", "type": "message", "role": "assistant",
                         "model": shape.model, "content": content, "stop_reason": stop,
                         "stop_sequence": None,
                         "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": completion}})
    return _assemble(frames, b"" if shape.truncate else tail, body)


def _gemini(shape: Shape) -> Encoded:
    """Gemini's SSE: one `data:` frame per chunk, `\r\n\r\n` after each; each call whole in
    one chunk (the first with a thought signature); the last chunk has the finish reason and
    the full usage."""
    def frame(parts: list[dict], finish: str | None = None, usage: dict | None = None) -> bytes:
        candidate: dict = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        obj: dict = {"candidates": [candidate]}
        if usage:
            obj["usageMetadata"] = usage
        obj["modelVersion"], obj["responseId"] = shape.model, "resp-bench"
        return b"data: " + orjson.dumps(obj) + b"\r\n\r\n"

    texts = [_text(i, shape.chunk_bytes) for i in range(shape.chunks)]
    frames = [b""] + [frame([{"text": t}]) for t in texts]
    calls = [{"functionCall": {"id": f"call_bench{k}", "name": shape.tool_name,
                               "args": orjson.loads(_args(k, shape.chunk_bytes))}}
             for k in range(shape.tool_calls)]
    if calls:
        calls[0]["thoughtSignature"] = "YmVuY2gtc2lnbmF0dXJl"
        frames.append(frame(calls))
    completion = shape.chunks + 8 * shape.tool_calls
    usage = {"promptTokenCount": INPUT_TOKENS, "candidatesTokenCount": completion,
             "totalTokenCount": INPUT_TOKENS + completion}
    tail = frame([], "STOP", usage)
    parts = ([{"text": "".join(texts)}] if texts else []) + calls
    body = orjson.dumps({"candidates": [{"content": {"parts": parts, "role": "model"},
                                         "finishReason": "STOP", "index": 0}],
                         "usageMetadata": usage, "modelVersion": shape.model,
                         "responseId": "resp-bench"})
    return _assemble(frames, b"" if shape.truncate else tail, body)


def _responses(shape: Shape) -> Encoded:
    """The OpenAI Responses API's stream: created, in_progress, a message item (its part, text
    deltas, done events), function_call items, completed with the whole response and usage."""
    seq = iter(range(1_000_000))

    def frame(kind: str, data: dict) -> bytes:
        return (b"event: " + kind.encode() + b"\ndata: "
                + orjson.dumps({"type": kind, "sequence_number": next(seq), **data}) + b"\n\n")

    completion = shape.chunks + 8 * shape.tool_calls
    texts = [_text(i, shape.chunk_bytes) for i in range(shape.chunks)]
    head = {"id": "resp_bench", "object": "response", "created_at": FIXED_CREATED,
            "model": shape.model, "error": None, "incomplete_details": None, "store": False}
    frames = [frame("response.created", {"response": {**head, "status": "in_progress",
                                                      "output": [], "usage": None}})
              + frame("response.in_progress", {"response": {**head, "status": "in_progress",
                                                            "output": [], "usage": None}})]
    output: list[dict] = []
    if texts:
        ref = {"item_id": "msg_bench", "output_index": 0}
        whole = "".join(texts)
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        frames[0] += (frame("response.output_item.added", {"output_index": 0, "item": {
            "id": "msg_bench", "type": "message", "status": "in_progress", "role": "assistant",
            "content": []}}) + frame("response.content_part.added", {**ref, "content_index": 0,
                                                                      "part": part}))
        frames += [frame("response.output_text.delta", {**ref, "content_index": 0, "delta": t,
                                                        "logprobs": []}) for t in texts]
        item = {"id": "msg_bench", "type": "message", "status": "completed", "role": "assistant",
                "content": [{**part, "text": whole}]}
        frames[-1] += (frame("response.output_text.done", {**ref, "content_index": 0,
                                                           "text": whole, "logprobs": []})
                       + frame("response.content_part.done", {**ref, "content_index": 0,
                                                              "part": {**part, "text": whole}})
                       + frame("response.output_item.done", {"output_index": 0, "item": item}))
        output.append(item)
    for k in range(shape.tool_calls):
        index, args = len(output), _args(k, shape.chunk_bytes)
        ref = {"item_id": f"fc_bench{k}", "output_index": index}
        item = {"id": f"fc_bench{k}", "type": "function_call", "status": "in_progress",
                "arguments": "", "call_id": f"call_bench{k}", "name": shape.tool_name}
        frames.append(frame("response.output_item.added", {"output_index": index, "item": item}))
        frames += [frame("response.function_call_arguments.delta", {**ref, "delta": p})
                   for p in _pieces(args, shape.chunk_bytes)]
        item = {**item, "status": "completed", "arguments": args}
        frames[-1] += (frame("response.function_call_arguments.done", {
                           **ref, "name": shape.tool_name, "arguments": args})
                       + frame("response.output_item.done", {"output_index": index, "item": item}))
        output.append(item)
    usage = {"input_tokens": INPUT_TOKENS, "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": INPUT_TOKENS + completion}
    final = {**head, "status": "completed", "output": output, "usage": usage}
    tail = frame("response.completed", {"response": final})
    return _assemble(frames, b"" if shape.truncate else tail, orjson.dumps(final))


def _assemble(frames: list[bytes], tail: bytes, body: bytes) -> Encoded:
    # the first write carries the opening frames and the first content chunk
    parts = [frames[0] + frames[1]] + frames[2:] if len(frames) > 1 else list(frames)
    parts[-1] += tail
    whole = b"".join(parts)
    # the same, framed as a whole HTTP/1.1 response (chunked), for the raw engine (mock_raw)
    raw_parts = [b"%x\r\n%s\r\n" % (len(p), p) for p in parts]
    raw_parts[0] = RAW_SSE_HEAD + raw_parts[0]
    raw_parts[-1] += b"0\r\n\r\n"
    raw_json = RAW_JSON_HEAD % len(body) + body
    return Encoded(tuple(parts), whole, body, tuple(raw_parts),
                   RAW_SSE_HEAD + b"%x\r\n%s\r\n0\r\n\r\n" % (len(whole), whole), raw_json)


ENCODERS = {"openai": _openai, "anthropic": _anthropic, "gemini": _gemini,
            "responses": _responses}


@dataclass(slots=True)
class Plan:
    """What to answer to one request: an encoded response (stream or JSON) or an error."""
    enc: Encoded | None
    stream: bool = False
    ttfb: float = 0.0  # seconds
    gap: float = 0.0  # seconds
    status: int = 200
    error: bytes = b""  # the error body when status != 200


class Mock:
    """The cache of encoded responses and the request logic for one configuration, shared by the
    aiohttp app (`build_app`) and the raw engine (`mock_raw`)."""

    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.cache: dict[Shape, Encoded] = {}
        self.requests = 0

    def encoded(self, shape: Shape) -> Encoded:
        enc = self.cache.get(shape)
        if enc is None:
            if len(self.cache) >= CACHE_MAX:
                self.cache.clear()
            enc = self.cache[shape] = ENCODERS[shape.protocol](shape)
        return enc

    def plan(self, protocol: str, raw: bytes, headers, model: str | None = None,
             stream: bool | None = None) -> Plan:
        """`headers.get(name)` with lowercase names; iterating it gives the names. `model` and
        `stream` come from the URL for a protocol that puts them there (Gemini)."""
        self.requests += 1
        try:
            body = orjson.loads(raw)
            if model is None:
                model = body["model"]
            if not isinstance(model, str) or len(model) > 200:
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return _error_plan(protocol, 400, "invalid_request_error", "body must be JSON with a model")
        cfg = self.config
        if any(k[:7].lower() == "x-mock-" for k in headers):
            try:
                cfg, status = _overrides(cfg, headers)
            except ValueError as exc:
                return _error_plan(protocol, 400, "invalid_request_error", str(exc))
            if status:
                kind = "rate_limit_error" if status == 429 else (
                    "overloaded_error" if status == 529 else "api_error")
                plan = _error_plan(protocol, status, kind, f"mock error {status}")
                plan.ttfb = cfg.ttfb_ms / 1000
                return plan
        tools = body.get("tools")
        calls = cfg.tool_calls or (cfg.tool_calls_if_offered if tools else 0)
        name = _tool_name(tools, protocol) if tools else "get_weather"
        shape = Shape(protocol, model, cfg.chunks, cfg.chunk_bytes, calls, name,
                      headers.get("x-mock-truncate") == "1")
        if stream is None:
            stream = bool(body.get("stream"))
        return Plan(self.encoded(shape), stream, cfg.ttfb_ms / 1000, cfg.gap_ms / 1000)

    async def openai(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "openai")

    async def anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "anthropic")

    async def responses(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "responses")

    async def gemini(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "gemini", request.match_info["model"],
                                  request.match_info["action"] == "streamGenerateContent")

    async def _handle(self, request: web.Request, protocol: str, model: str | None = None,
                      stream: bool | None = None) -> web.StreamResponse:
        plan = self.plan(protocol, await request.read(), request.headers, model, stream)
        if plan.ttfb:
            await asyncio.sleep(plan.ttfb)
        if plan.enc is None:
            headers = {**JSON_HEADERS, **({"retry-after": "1"} if plan.status == 429 else {})}
            return web.Response(status=plan.status, body=plan.error, headers=headers)
        if not plan.stream:
            return web.Response(body=plan.enc.json, headers=JSON_HEADERS)
        resp = web.StreamResponse(headers=SSE_HEADERS)
        await resp.prepare(request)
        if plan.gap <= 0:
            await resp.write(plan.enc.whole)
        else:
            await resp.write(plan.enc.parts[0])
            for part in plan.enc.parts[1:]:
                await asyncio.sleep(plan.gap)
                await resp.write(part)
        await resp.write_eof()
        return resp

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response(MODELS)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(self.health_body())

    def health_body(self) -> dict:
        return {"status": "ok", "requests": self.requests, "config": dataclasses.asdict(self.config)}


MOCK_KEY = web.AppKey("mock", Mock)
MODELS = {"object": "list", "data": [{"id": "mock-model", "object": "model", "owned_by": "ferryllm-bench"}]}


def _overrides(cfg: MockConfig, h) -> tuple[MockConfig, int]:
    changes = {}
    for header, field, kind in (("x-mock-chunks", "chunks", int), ("x-mock-chunk-bytes", "chunk_bytes", int),
                                ("x-mock-ttfb-ms", "ttfb_ms", float), ("x-mock-gap-ms", "gap_ms", float),
                                ("x-mock-tool-calls", "tool_calls", int)):
        value = h.get(header)
        if value is not None:
            try:
                changes[field] = kind(value)
            except ValueError:
                raise ValueError(f"{header} must be a number") from None
            if changes[field] < 0 or changes[field] > 100_000:
                raise ValueError(f"{header} out of range")
    try:
        status = int(h.get("x-mock-status") or 0)
    except ValueError:
        raise ValueError("x-mock-status must be a number") from None
    if status and not 400 <= status <= 599:
        raise ValueError("x-mock-status must be 400-599")
    return (dataclasses.replace(cfg, **changes) if changes else cfg), status


def _tool_name(tools, protocol: str) -> str:
    first = tools[0] if isinstance(tools, list) and tools and isinstance(tools[0], dict) else {}
    if protocol == "gemini":
        decls = first.get("functionDeclarations") or [{}]
        first = decls[0] if isinstance(decls, list) and isinstance(decls[0], dict) else {}
    name = (first.get("function") or {}).get("name") if protocol == "openai" else first.get("name")
    return name if isinstance(name, str) and len(name) <= 128 else "get_weather"


def _error_plan(protocol: str, status: int, kind: str, message: str) -> Plan:
    if protocol == "gemini":
        return Plan(None, status=status, error=orjson.dumps({"error": {
            "code": status, "message": message,
            "status": "RESOURCE_EXHAUSTED" if status == 429 else "INVALID_ARGUMENT"
            if status < 500 else "UNAVAILABLE"}}))
    if protocol == "anthropic":
        body = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return Plan(None, status=status, error=orjson.dumps(body))


def build_app(config: MockConfig | None = None) -> web.Application:
    """The mock as an aiohttp app (tests serve it with `aiohttp_server`)."""
    mock = Mock(config or MockConfig())
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[MOCK_KEY] = mock
    if mock.config.protocol in ("openai", "both"):
        app.router.add_post("/v1/chat/completions", mock.openai)
    if mock.config.protocol in ("anthropic", "both"):
        app.router.add_post("/v1/messages", mock.anthropic)
    if mock.config.protocol == "gemini":
        app.router.add_post("/v1beta/models/{model:[^:]+}:{action}", mock.gemini)
    if mock.config.protocol == "responses":
        app.router.add_post("/v1/responses", mock.responses)
    app.router.add_get("/v1/models", mock.models)
    app.router.add_get("/health", mock.health)
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.mock_upstream", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, help="one port serving --protocol")
    p.add_argument("--protocol", choices=("openai", "anthropic", "both", "gemini", "responses"),
                   default="both")
    p.add_argument("--openai-port", type=int, help="a port serving the OpenAI-compatible mock")
    p.add_argument("--anthropic-port", type=int, help="a port serving the Anthropic mock")
    p.add_argument("--gemini-port", type=int, help="a port serving the Gemini mock")
    p.add_argument("--responses-port", type=int, help="a port serving the Responses API mock")
    p.add_argument("--engine", choices=("raw", "aiohttp"), default="raw",
                   help="raw: a minimal HTTP/1.1 server on asyncio.Protocol, the cheapest (default); "
                        "aiohttp: the aiohttp app of build_app()")
    p.add_argument("--chunks", type=int, default=20)
    p.add_argument("--chunk-bytes", type=int, default=20)
    p.add_argument("--ttfb-ms", type=float, default=float(os.environ.get("MOCK_DELAY_MS", "0") or 0),
                   help="delay before the first byte (default: $MOCK_DELAY_MS or 0)")
    p.add_argument("--gap-ms", type=float, default=0.0, help="delay between chunks")
    p.add_argument("--tool-calls", type=int, default=0, help="tool calls streamed after the text")
    p.add_argument("--tool-calls-if-offered", type=int, default=1,
                   help="tool calls when the request has tools and --tool-calls is 0")
    args = p.parse_args(argv)
    if args.port is None and args.openai_port is None and args.anthropic_port is None \
            and args.gemini_port is None and args.responses_port is None:
        args.openai_port, args.anthropic_port = 8081, 8082
    return args


async def serve(args: argparse.Namespace) -> None:
    base = MockConfig(args.chunks, args.chunk_bytes, args.ttfb_ms, args.gap_ms, args.tool_calls,
                      args.tool_calls_if_offered)
    listeners = []
    if args.port is not None:
        listeners.append((args.port, args.protocol))
    if args.openai_port is not None:
        listeners.append((args.openai_port, "openai"))
    if args.anthropic_port is not None:
        listeners.append((args.anthropic_port, "anthropic"))
    if args.gemini_port is not None:
        listeners.append((args.gemini_port, "gemini"))
    if args.responses_port is not None:
        listeners.append((args.responses_port, "responses"))
    runners, servers = [], []
    for port, protocol in listeners:
        config = dataclasses.replace(base, protocol=protocol)
        if args.engine == "raw":
            from benchmarks.mock_raw import start
            servers.append(await start(args.host, port, Mock(config)))
        else:
            runner = web.AppRunner(build_app(config), access_log=None, handle_signals=False)
            await runner.setup()
            await web.TCPSite(runner, args.host, port, backlog=4096).start()
            runners.append(runner)
        print(f"mock upstream ({protocol}, {args.engine}) on http://{args.host}:{port} pid {os.getpid()}: "
              f"{base.chunks} chunks x {base.chunk_bytes} B, ttfb {base.ttfb_ms} ms, gap {base.gap_ms} ms",
              file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for server in servers:
            server.close()
        for runner in runners:
            await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(serve(args))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
