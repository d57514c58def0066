"""Load tester for ferryllm and the mock upstream.

    python -m benchmarks.load_test --preset mock-anthropic --stream --requests 10000 --concurrency 64
    python -m benchmarks.load_test --preset mock-anthropic --stream --rate 1000 --requests 10000 --compare
    python -m benchmarks.load_test --preset mock-openai --url http://127.0.0.1:8081 --stream --json

Presets (as in the Rust reference, every preset targets ferryllm at http://127.0.0.1:3000; point
--url at a mock to load it directly; --compare with no URL compares with the preset's mock):
  mock-anthropic      Anthropic Messages, a one-line prompt, model claude-bench (with
                      examples/config/mock-loadtest.toml: → the OpenAI-compatible mock on :8081);
                      compare: the Anthropic mock on :8082
  mock-openai         OpenAI Chat Completions, a one-line prompt, model gpt-bench; compare: :8081
  anthropic-messages  Anthropic Messages shaped like a Claude Code turn (system blocks with
                      cache_control, 12 tools, a tool round trip; ~10 KB), model claude-sonnet-4-5;
                      compare: :8082. The mock answers a request with tools with one tool call.
  openai-chat         OpenAI Chat Completions of the same shape (~10 KB), model gpt-4o-mini; compare: :8081
  mock-gemini         Gemini generateContent (`:streamGenerateContent?alt=sse`), a one-line prompt,
                      model gemini-bench (→ the OpenAI-compatible mock); compare: the Gemini mock on
                      :8083. `--preset mock-anthropic --model via-gemini` loads the Gemini adapter.
  mock-responses      OpenAI Responses API (what Codex speaks), a one-line prompt, model gpt-5-bench
                      (→ the OpenAI-compatible mock); compare: the Responses mock on :8084.
                      `--preset mock-anthropic --model via-responses` loads the Responses adapter.

Closed loop (`--concurrency N`: N requests always in flight) or open loop (`--rate R`: requests
start on a fixed schedule whatever the completions, and latency counts from the scheduled start,
so queueing shows). Streams are read with aiohttp `iter_any()` and ferryllm's `SSEParser`, or with
aiohttp-sse-client (`--client aiohttp-sse-client`) as an independent check of the SSE framing; a
stream that does not end properly (Anthropic `message_stop`, OpenAI `[DONE]`, Gemini a chunk with
`finishReason`) is an error.
Exit status 1 when any request failed.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass

if not __package__:  # run as a file (python benchmarks/load_test.py): make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import aiohttp
import orjson
from yarl import URL

from benchmarks import procstat
from benchmarks.report import Tally, compare, distribution, document, summarize, table
from ferryllm.errors import UpstreamProtocolError
from ferryllm.loop import event_loop_factory
from ferryllm.sse import SSEParser

PATHS = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions",
         "responses": "/v1/responses"}


@dataclass(frozen=True)
class Preset:
    protocol: str
    url: str
    model: str
    direct: str  # the mock to compare with
    realistic: bool = False  # a Claude Code-shaped body instead of a one-line prompt


GATEWAY, OPENAI_MOCK, ANTHROPIC_MOCK = "http://127.0.0.1:3000", "http://127.0.0.1:8081", "http://127.0.0.1:8082"
GEMINI_MOCK, RESPONSES_MOCK = "http://127.0.0.1:8083", "http://127.0.0.1:8084"
PRESETS = {
    "mock-anthropic": Preset("anthropic", GATEWAY, "claude-bench", ANTHROPIC_MOCK),
    "mock-openai": Preset("openai", GATEWAY, "gpt-bench", OPENAI_MOCK),
    "anthropic-messages": Preset("anthropic", GATEWAY, "claude-sonnet-4-5", ANTHROPIC_MOCK, realistic=True),
    "openai-chat": Preset("openai", GATEWAY, "gpt-4o-mini", OPENAI_MOCK, realistic=True),
    "mock-gemini": Preset("gemini", GATEWAY, "gemini-bench", GEMINI_MOCK),
    "mock-responses": Preset("responses", GATEWAY, "gpt-5-bench", RESPONSES_MOCK),
}


class StreamCheck:
    """Sans-IO: SSE bytes (or events) in; notes the first content event, the proper end of the
    stream and in-band errors, with as little work per event as that takes (Anthropic events
    are told apart by name, OpenAI chunks are parsed only until the first content);
    `validate=True` parses every event's JSON too. `feed()` is True when the first content
    event arrived."""

    __slots__ = ("parser", "anthropic", "gemini", "responses", "validate", "content", "done",
                 "error")

    def __init__(self, protocol: str, validate: bool = False) -> None:
        self.parser = SSEParser()
        self.anthropic = protocol == "anthropic"
        self.gemini = protocol == "gemini"
        self.responses = protocol == "responses"
        self.validate = validate
        self.content = self.done = False
        self.error: str | None = None

    def feed(self, chunk: bytes) -> bool:
        had = self.content
        try:
            events = self.parser.feed(chunk)
        except UpstreamProtocolError:
            self.error = self.error or "sse_error"
            return False
        for ev in events:
            self.event(ev.event, ev.data)
        return self.content and not had

    def event(self, name: bytes, data: bytes) -> None:
        if self.error:
            return
        if self.done:
            self.error = "data_after_end"
        elif self.responses:  # events are named: parse only errors (and all with validate)
            if self.validate and self._json(data) is None:
                return
            if name in (b"response.output_text.delta", b"response.function_call_arguments.delta"):
                self.content = True
            elif name in (b"response.completed", b"response.incomplete"):
                self.done = True
            elif name in (b"response.failed", b"error"):
                obj = self._json(data)
                if obj is not None:
                    err = (obj.get("response") or {}).get("error") or obj
                    self.error = "stream_error:" + str(err.get("code"))
        elif self.anthropic:
            if name == b"message":  # no `event:` line: the type is in the data
                obj = self._json(data)
                if obj is None:
                    return
                name = str(obj.get("type")).encode()
            elif self.validate and self._json(data) is None:
                return
            if name == b"content_block_delta":
                self.content = True
            elif name == b"message_stop":
                self.done = True
            elif name == b"error":
                obj = self._json(data)
                if obj is not None:
                    self.error = "stream_error:" + str((obj.get("error") or {}).get("type"))
        elif self.gemini:  # no end event: the chunk with a finish reason ends the answer
            if not self.content or self.validate or b'"error"' in data or b'"finishReason"' in data:
                obj = self._json(data)
                if obj is None:
                    return
                if "error" in obj:
                    self.error = "stream_error:" + str((obj.get("error") or {}).get("status"))
                    return
                candidate = (obj.get("candidates") or [{}])[0]
                if not self.content and (candidate.get("content") or {}).get("parts"):
                    self.content = True
                if candidate.get("finishReason"):
                    self.done = True
        elif data == b"[DONE]":
            self.done = True
        elif not self.content or self.validate or b'"error"' in data:
            obj = self._json(data)
            if obj is None:
                return
            if "error" in obj:
                self.error = "stream_error:" + str((obj.get("error") or {}).get("type"))
            elif not self.content:
                choices = obj.get("choices")
                delta = (choices[0].get("delta") or {}) if choices else {}
                if delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content"):
                    self.content = True

    def _json(self, data: bytes) -> dict | None:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            self.error = "bad_json"
            return None
        return obj

    def close(self) -> str | None:
        """End of the body: the error kind, or None for a well-formed stream."""
        try:
            events = self.parser.close()
        except UpstreamProtocolError:
            events, self.error = [], self.error or "sse_error"
        for ev in events:
            self.event(ev.event, ev.data)
        if self.error:
            return self.error
        return None if self.done else "incomplete_stream"


@dataclass(frozen=True)
class Target:
    url: URL
    protocol: str
    body: bytes
    headers: dict[str, str]
    stream: bool
    validate: bool = False


TOOLS = ["Bash", "Read", "Edit", "Write", "Glob", "Grep", "LS", "TodoWrite", "WebFetch", "Task",
         "NotebookEdit", "MultiEdit"]
SYSTEM = ("You are an interactive CLI tool that helps users with software engineering tasks. "
          "Use the instructions below and the tools available to you to assist the user. " * 12)


def request_body(protocol: str, model: str, stream: bool, max_tokens: int, realistic: bool = False) -> dict:
    """The preset's request: a one-line prompt, or a Claude Code-shaped turn (system prompt,
    tools, a tool round trip). Gemini's model and stream flag are in the URL (`full_url`)."""
    if protocol == "gemini":
        return {"contents": [{"role": "user", "parts": [{"text": "Say hello in twenty short chunks."}]}],
                "generationConfig": {"maxOutputTokens": max_tokens}}
    if protocol == "responses":
        return {"model": model, "input": "Say hello in twenty short chunks.",
                "max_output_tokens": max_tokens, "stream": stream, "store": False}
    if not realistic:
        messages = [{"role": "user", "content": "Say hello in twenty short chunks."}]
        body = {"model": model, "max_tokens": max_tokens, "messages": messages, "stream": stream}
        if protocol == "openai" and stream:
            body["stream_options"] = {"include_usage": True}
        return body
    schema = {"type": "object", "properties": {
        "path": {"type": "string", "description": "Absolute path of the file or folder to work on."},
        "pattern": {"type": "string", "description": "A glob or regular expression to match."},
        "limit": {"type": "integer", "description": "At most this many results."}}, "required": ["path"]}
    describe = "Runs the {0} tool on the user's workspace and returns its output. " * 3
    if protocol == "anthropic":
        tools = [{"name": n, "description": describe.format(n), "input_schema": schema} for n in TOOLS]
        tools[-1]["cache_control"] = {"type": "ephemeral"}
        messages = [
            {"role": "user", "content": [{"type": "text", "text": "Find where the SSE parser splits lines."}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "I'll search the code."},
                {"type": "tool_use", "id": "toolu_01", "name": "Grep", "input": {"path": "/repo", "pattern": "splitlines"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "ferryllm/sse.py:57: lines = ...\n" * 20},
                {"type": "text", "text": "Now explain it briefly.", "cache_control": {"type": "ephemeral"}}]}]
        return {"model": model, "max_tokens": max_tokens, "stream": stream, "tools": tools,
                "system": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
                "messages": messages, "metadata": {"user_id": "bench-user"}}
    tools = [{"type": "function", "function": {"name": n, "description": describe.format(n), "parameters": schema}}
             for n in TOOLS]
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Find where the SSE parser splits lines."},
        {"role": "assistant", "content": "I'll search the code.", "tool_calls": [
            {"id": "call_01", "type": "function",
             "function": {"name": "Grep", "arguments": '{"path": "/repo", "pattern": "splitlines"}'}}]},
        {"role": "tool", "tool_call_id": "call_01", "content": "ferryllm/sse.py:57: lines = ...\n" * 20},
        {"role": "user", "content": "Now explain it briefly."}]
    body = {"model": model, "max_tokens": max_tokens, "stream": stream, "tools": tools, "messages": messages}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def full_url(base: str, protocol: str, model: str = "", stream: bool = False) -> str:
    base = base.rstrip("/")
    if protocol == "gemini":
        action = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
        return f"{base}/v1beta/models/{model}{action}"
    return base if base.endswith(PATHS[protocol]) else base + PATHS[protocol]


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "disconnected"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "payload"
    if isinstance(exc, aiohttp.ClientError):
        return "client:" + type(exc).__name__
    return "exception:" + type(exc).__name__


async def one_aiohttp(session: aiohttp.ClientSession, t: Target, t0: float):
    """One request; (status, error kind or None, latency s, time to first content s or None)."""
    clock = time.perf_counter
    status, error, ttfc = None, None, None
    try:
        async with session.post(t.url, data=t.body, headers=t.headers) as resp:
            status = resp.status
            if status >= 300:
                await resp.read()
                error = f"http_{status}"
            elif t.stream:
                if resp.content_type != "text/event-stream":
                    await resp.read()
                    error = "not_event_stream"
                else:
                    check = StreamCheck(t.protocol, t.validate)
                    async for chunk in resp.content.iter_any():
                        if check.feed(chunk):
                            ttfc = clock() - t0
                    error = check.close()
            else:
                error = _check_json(await resp.read(), t.protocol)
    except Exception as exc:  # every failure is counted, none stops the run
        error = _error_kind(exc)
    return status, error, clock() - t0, ttfc


def _check_json(body: bytes, protocol: str) -> str | None:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "bad_json"
    key = {"anthropic": "content", "gemini": "candidates", "responses": "output"}.get(
        protocol, "choices")
    return None if isinstance(obj, dict) and obj.get(key) else "bad_body"


class _Ended(Exception):
    """aiohttp-sse-client reached the end of the body (it would reconnect: we stop it)."""


async def one_sse_client(session: aiohttp.ClientSession, t: Target, t0: float):
    """One streamed request read with aiohttp-sse-client, an SSE parser independent of ferryllm's."""
    from aiohttp_sse_client.client import EventSource

    clock = time.perf_counter
    state = {"open": False}
    status, ttfc, error = None, None, None
    check = StreamCheck(t.protocol, t.validate)

    def on_open() -> None:
        state["open"] = True

    def on_error() -> None:
        if state["open"]:
            raise _Ended

    try:
        async with EventSource(t.url, option={"method": "POST"}, session=session, data=t.body,
                               headers=dict(t.headers), on_open=on_open, on_error=on_error,
                               max_connect_retry=0) as source:
            status = 200
            async for ev in source:
                had = check.content
                check.event((ev.type or "message").encode(), ev.data.encode())
                if check.content and not had:
                    ttfc = clock() - t0
                if check.done or check.error:
                    break
    except _Ended:
        pass
    except ConnectionError as exc:  # the library's way to report a status >= 400
        tail = str(exc).rsplit(" ", 1)[-1]
        status = int(tail) if tail.isdigit() else None
        error = f"http_{status}" if status else "client:" + type(exc).__name__
    except Exception as exc:
        error = _error_kind(exc)
    if error is None:
        error = check.close()
    return status, error, clock() - t0, ttfc


async def closed_loop(n: int, concurrency: int, deadline: float | None, run) -> None:
    """`concurrency` workers, each starting its next request when the last one ends."""
    clock = time.perf_counter
    indices = iter(range(n))

    async def worker() -> None:
        for _ in indices:
            if deadline is not None and clock() >= deadline:
                return
            await run(clock())
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, n)))))


def due_time(start: float, i: int, rate: float) -> float:
    """Scheduled start of request i in an open loop."""
    return start + i / rate


async def open_loop(n: int, rate: float, deadline: float | None, run, *, max_inflight: int = 10_000,
                    lag: list[float] | None = None) -> None:
    """Start request i at `due_time(start, i, rate)` whatever the completions; `run(due)` measures
    from the schedule, so a late start counts against the latency. At low rates the last
    millisecond before a start is spun (loop timers have 1 ms resolution)."""
    loop = asyncio.get_running_loop()
    clock, spin = time.perf_counter, rate <= 100
    start = clock() + 0.005
    slots = asyncio.Semaphore(max_inflight)
    tasks: set[asyncio.Task] = set()

    async def guarded(due: float) -> None:
        try:
            await run(due)
        finally:
            slots.release()

    for i in range(n):
        due = due_time(start, i, rate)
        if deadline is not None and due >= deadline:
            break
        wait = due - clock()
        if wait > 0.0015 or (wait > 0 and not spin):
            await asyncio.sleep(wait - 0.001 if spin else wait)
        while spin and clock() < due:
            pass
        await slots.acquire()
        if lag is not None:
            lag.append(clock() - due)
        task = loop.create_task(guarded(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))


class Watch:
    """CPU time and RSS of watched processes (and their descendants) over one run."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.cpu0 = {k: procstat.tree_cpu_seconds(p) for k, p in pids.items()}
        self.rss = {k: [] for k in pids}
        self.timeline: list[tuple[int, dict]] = []

    def sample(self, done: int) -> None:
        point = {}
        for k, p in self.pids.items():
            size = procstat.tree_rss_bytes(p)
            if size is not None:
                self.rss[k].append(size / 2**20)
                point[k] = round(size / 2**20, 1)
        if point:
            self.timeline.append((done, point))

    def result(self) -> dict[str, dict]:
        out = {}
        for k, p in self.pids.items():
            cpu1, cpu0 = procstat.tree_cpu_seconds(p), self.cpu0[k]
            rss = self.rss[k]
            out[k] = {"pid": p, "cpu_s": (cpu1 - cpu0) if cpu1 is not None and cpu0 is not None else None,
                      "rss_mb_start": rss[0] if rss else None, "rss_mb_peak": max(rss) if rss else None,
                      "rss_mb_end": rss[-1] if rss else None}
        return out


async def progress(label: str, tally: Tally, total: int, watch: Watch, quiet: bool, t_start: float) -> None:
    tty = sys.stderr.isatty()
    period = 0.25 if tty else 1.0
    clock = time.perf_counter
    last_done, last_t = 0, t_start
    while True:
        await asyncio.sleep(period)
        now = clock()
        watch.sample(tally.done)
        if quiet:
            continue
        rate = (tally.done - last_done) / (now - last_t) if now > last_t else 0.0
        last_done, last_t = tally.done, now
        line = (f"[{label}] {tally.done}/{total} done  {rate:7.0f} req/s  in flight {tally.started - tally.done}"
                f"  errors {sum(tally.errors.values())}  {now - t_start:5.1f}s")
        print(("\r" + line + "\x1b[K") if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)


async def run_leg(label: str, target: Target, args: argparse.Namespace, pids: dict[str, int]) -> dict:
    """One run against one URL: warm-up, then the measured load."""
    limit = args.concurrency if not args.rate else args.max_inflight
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    one = one_sse_client if (args.client == "aiohttp-sse-client" and target.stream) else one_aiohttp
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                     cookie_jar=aiohttp.DummyCookieJar(),
                                     headers={"user-agent": "ferryllm-load-test"}) as session:
        if args.warmup:
            warm = Tally()

            async def warm_run(t0: float) -> None:
                warm.record(*(await one(session, target, t0)))
            await closed_loop(args.warmup, args.concurrency, None, warm_run)

        tally, lag = Tally(), []
        loop = asyncio.get_running_loop()

        async def run(t0: float) -> None:
            tally.started += 1
            tally.record(*(await one(session, target, t0)))

        watch = Watch(pids)
        watch.sample(0)
        cpu0, t_start = time.process_time(), time.perf_counter()
        deadline = t_start + args.duration if args.duration else None
        ticker = loop.create_task(progress(label, tally, args.requests, watch, args.quiet, t_start))
        try:
            if args.rate:
                await open_loop(args.requests, args.rate, deadline, run, max_inflight=args.max_inflight, lag=lag)
            else:
                await closed_loop(args.requests, args.concurrency, deadline, run)
        finally:
            ticker.cancel()
            wall, cpu = time.perf_counter() - t_start, time.process_time() - cpu0
        watch.sample(tally.done)
        if not args.quiet and sys.stderr.isatty():
            print(file=sys.stderr)
    result = summarize(label, target.url, tally, wall, cpu, watch.result())
    if args.rate:
        result["schedule_lag_ms"] = distribution(lag)
    result["rss_timeline"] = watch.timeline[:: max(1, len(watch.timeline) // 50)]
    return result


def build_target(args: argparse.Namespace, base_url: str) -> Target:
    headers = {"content-type": "application/json"}
    if args.protocol == "anthropic":
        headers["anthropic-version"] = "2023-06-01"
    if args.api_key:
        headers["x-api-key"] = args.api_key
    if args.bearer:
        headers["authorization"] = f"Bearer {args.bearer}"
    for h in args.header:
        name, _, value = h.partition(":")
        headers[name.strip().lower()] = value.strip()
    if args.body_file:
        with open(args.body_file, "rb") as f:
            body = orjson.loads(f.read())
        body["stream"] = args.stream
        body.setdefault("model", args.model)
    else:
        body = request_body(args.protocol, args.model, args.stream, args.max_tokens, args.realistic)
    url = URL(full_url(base_url, args.protocol, args.model, args.stream), encoded=True)
    return Target(url, args.protocol, orjson.dumps(body), headers, args.stream, args.validate)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load_test", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("--preset", choices=sorted(PRESETS), default="mock-anthropic")
    p.add_argument("--url", help="base URL (the path of the preset's protocol is appended)")
    p.add_argument("--model")
    p.add_argument("--requests", type=int, default=1000, help="requests to send (default 1000)")
    p.add_argument("--concurrency", type=int, default=64, help="closed loop: requests in flight (default 64)")
    p.add_argument("--rate", type=float, help="open loop: requests started per second, on schedule")
    p.add_argument("--max-inflight", type=int, default=10_000, help="open loop: cap on requests in flight")
    p.add_argument("--stream", action="store_true", help="streaming requests")
    p.add_argument("--timeout", type=float, default=60.0, help="per request, seconds (default 60)")
    p.add_argument("--duration", type=float, help="stop starting requests after this many seconds")
    p.add_argument("--warmup", type=int, default=0, help="unmeasured requests before each run")
    p.add_argument("--bearer", help="Authorization: Bearer token")
    p.add_argument("--api-key", help="x-api-key header")
    p.add_argument("--header", action="append", default=[], metavar="NAME:VALUE", help="extra request header")
    p.add_argument("--body-file", help="JSON request body to send (model and stream are set)")
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--client", choices=("aiohttp", "aiohttp-sse-client"), default="aiohttp")
    p.add_argument("--gateway-pid", type=int, help="sample this process's CPU time and RSS (/proc)")
    p.add_argument("--watch-pid", action="append", default=[], metavar="LABEL=PID",
                   help="another process to sample (e.g. mock=1234)")
    p.add_argument("--compare", nargs="?", const="", metavar="MOCK_URL",
                   help="run the same load against the mock first (the floor), then --url; print both")
    p.add_argument("--validate", action="store_true", help="parse the JSON of every stream event")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    args = p.parse_args(argv)
    preset = PRESETS[args.preset]
    args.protocol = preset.protocol
    args.url = args.url or preset.url
    args.model = args.model or preset.model
    args.realistic = preset.realistic
    if args.compare == "":
        args.compare = preset.direct
    if args.requests < 1 or args.concurrency < 1 or (args.rate is not None and args.rate <= 0):
        p.error("--requests, --concurrency and --rate must be positive")
    args.pids = {}
    if args.gateway_pid:
        args.pids["gateway"] = args.gateway_pid
    for item in args.watch_pid:
        label, _, pid = item.partition("=")
        if not pid.isdigit():
            p.error(f"--watch-pid wants LABEL=PID, got {item!r}")
        args.pids[label] = int(pid)
    return args


async def main_async(args: argparse.Namespace) -> dict:
    runs = []
    if args.compare:
        runs.append(await run_leg("direct", build_target(args, args.compare), args, args.pids))
        await asyncio.sleep(0.5)
    runs.append(await run_leg("gateway" if args.compare else "run", build_target(args, args.url),
                              args, args.pids))
    config = {k: getattr(args, k) for k in ("preset", "protocol", "url", "model", "stream", "requests",
                                             "concurrency", "rate", "client", "timeout", "duration",
                                             "warmup", "compare")}
    config.update(pid=os.getpid(), cpus=os.sched_getaffinity(0) and sorted(os.sched_getaffinity(0)))
    return document(config, runs, compare(runs[0], runs[1]) if args.compare else None)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        doc = runner.run(main_async(args))
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(table(doc))
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
