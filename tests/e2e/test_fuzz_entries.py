"""Property-based fuzzing of every entry route: no input gives a 5xx.

Every chat and count_tokens route in the registry (`protocols.entries()` → `entry.routes`) gets
(1) generated JSON values as the body and (2) mutations of the valid seed bodies in
`tests/fuzz_seeds.py` (a value replaced by generated JSON, a key removed or added, a string
swapped for another one the seeds use). The request is routed to a mock provider of every
provider type in the registry. The answer must be below 500 and, when it is an error, have the
shape of the entry's own `error_body`; afterwards the gateway still answers every seed with 200.

The gateway and the mock run on 127.0.0.1 in a thread with their own event loop, so Hypothesis
drives plain synchronous tests. Examples are derandomized (fixed seed) and bounded; raise
`FERRYLLM_FUZZ_EXAMPLES` (default 120 per route and strategy) for a longer run
(docs/operations.md).
"""
from __future__ import annotations

import asyncio
import fnmatch
import http.client
import os
import re
import threading
from urllib.parse import quote, urlsplit

import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferryllm import protocols
from ferryllm.config import Config, ProviderConfig, RouteConfig, ServerConfig
from ferryllm.errors import InvalidRequest
from ferryllm.server import build_app
from tests.fuzz_seeds import PROVIDER_REPLIES, SEEDS, URLS

EXAMPLES = int(os.environ.get("FERRYLLM_FUZZ_EXAMPLES", "120"))
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
ROUTES = [(proto, route) for proto in protocols.entries() for route in proto.entry.routes
          if route.kind in (protocols.CHAT, protocols.COUNT_TOKENS)]
PROVIDER_TYPES = protocols.provider_types()
MODELS = [f"via-{kind}" for kind in PROVIDER_TYPES]


# ---------------------------------------------------------------- servers in a thread


async def _mock(request: web.Request) -> web.StreamResponse:
    """A well-behaved provider of every type: the answer for its endpoint path."""
    raw = await request.read()
    reply = PROVIDER_REPLIES.get(request.path)
    if reply is None:
        reply = next((v for k, v in PROVIDER_REPLIES.items()
                      if "*" in k and fnmatch.fnmatch(request.path, k)), None)
    if reply is None:
        return web.json_response({"error": {"message": "no such endpoint"}}, status=404)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    stream = (isinstance(body, dict) and body.get("stream") is True) or "stream" in request.path.lower()
    if stream and reply[1]:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(reply[1])
        await resp.write_eof()
        return resp
    return web.json_response(reply[0])


class Servers:
    """The mock provider and the gateway, served by a private event loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runners: list[web.AppRunner] = []

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    async def _serve(self, app: web.Application) -> int:
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.runners.append(runner)
        return site._server.sockets[0].getsockname()[1]

    def start(self) -> int:
        self.thread.start()
        mock = web.Application()
        mock.router.add_route("*", "/{tail:.*}", _mock)
        mock_port = self._run(self._serve(mock))
        base = f"http://127.0.0.1:{mock_port}"
        config = Config(
            server=ServerConfig(request_timeout_secs=20),
            providers=tuple(ProviderConfig(name=f"p-{kind}", type=kind, base_url=base,
                                           api_key="sk-fuzz", max_tokens_cap=1024)
                            for kind in PROVIDER_TYPES),
            routes=tuple(RouteConfig(match=model, provider=f"p-{kind}", match_type="exact",
                                     rewrite_model="backend-model")
                         for kind, model in zip(PROVIDER_TYPES, MODELS)))
        return self._run(self._serve(build_app(config)))

    def stop(self) -> None:
        async def cleanup() -> None:
            for runner in reversed(self.runners):
                await runner.cleanup()
        self._run(cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def port():
    servers = Servers()
    try:
        yield servers.start()
    finally:
        servers.stop()


def post(port: int, url: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", url, body=body, headers={"content-type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# ---------------------------------------------------------------- strategies


def _walk(value, path=()):
    """(path, value) of every node of a JSON value, the root first."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, (*path, i))


_SEED_NODES = [n for bodies in SEEDS.values() for body in bodies for n in _walk(body)]
KEYS = sorted({p[-1] for p, _ in _SEED_NODES if p and isinstance(p[-1], str)})
WORDS = sorted({v for _, v in _SEED_NODES if isinstance(v, str) and len(v) < 40} | set(MODELS))

_scalars = (st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 64 - 1)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
            | st.sampled_from(WORDS))
_keys = st.sampled_from(KEYS) | st.text(max_size=8)
json_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=24)
bodies = st.dictionaries(_keys, json_values, max_size=8) | json_values


def _set(body, path, op, value):
    """A copy of `body` with the node at `path` replaced (`op` "set"), removed ("del") or given
    a new key ("add")."""
    if not path:
        return value if op == "set" else body
    head, rest = path[0], path[1:]
    if isinstance(body, dict):
        out = dict(body)
        if not rest:
            if op == "del":
                out.pop(head, None)
            elif op == "add" and isinstance(out.get(head), dict):
                out[head] = {**out[head], value[0]: value[1]}
            else:
                out[head] = value if op == "set" else out[head]
            return out
        out[head] = _set(body[head], rest, op, value)
        return out
    out = list(body)
    if not rest:
        if op == "del":
            del out[head]
        elif op == "set":
            out[head] = value
        return out
    out[head] = _set(body[head], rest, op, value)
    return out


@st.composite
def mutated(draw, seeds: list[dict]):
    body = dict(draw(st.sampled_from(seeds)))
    body["model"] = draw(st.sampled_from(MODELS))
    for _ in range(draw(st.integers(1, 3))):
        nodes = list(_walk(body))
        path, _ = draw(st.sampled_from(nodes))
        op = draw(st.sampled_from(("set", "set", "set", "del", "add")))
        if op == "add":
            value = (draw(_keys), draw(json_values))
        elif op == "set":
            value = draw(json_values | st.sampled_from(
                ([], {}, "", 0, -1, None, True, 1e308, [[]], [{}], {"type": []}, {"type": {}})))
        else:
            value = None
        body = _set(body, path, op, value)
    return body


# ---------------------------------------------------------------- the properties


def _shape(value):
    return {k: _shape(v) for k, v in value.items()} if isinstance(value, dict) else None


def _url(route, body=None) -> str:
    """The route's concrete URL; a `{model}` in it (a protocol that names the model in the URL)
    is the body's model, escaped, so the request is routed like the body says."""
    url = URLS.get(route.path) or re.sub(r"\{[^}]*\}", "fuzz-model", route.path)
    model = body.get("model") if isinstance(body, dict) else None
    return url.replace("{model}", quote(model if isinstance(model, str) and model else
                                        "fuzz-model", safe=""))


def check(port: int, proto, route, body, raw: bytes | None = None) -> None:
    raw = orjson.dumps(body) if raw is None else raw
    status, answer = post(port, _url(route, body), raw)
    shown = raw[:600].decode(errors="replace")
    assert status < 500, f"{route.path} answered {status}: {answer[:500]!r}\nbody: {shown}"
    assert b"internal gateway error" not in answer, f"{route.path}: {answer[:500]!r}\nbody: {shown}"
    if status >= 400:
        want = _shape(orjson.loads(proto.entry.error_body(InvalidRequest("x", param="p"))))
        assert _shape(orjson.loads(answer)) == want, f"{route.path} error shape: {answer[:500]!r}"


def still_serving(port: int, route) -> None:
    for seed in SEEDS.get(route.path, ()):
        for model in MODELS:
            body = {**seed, "model": model}
            status, answer = post(port, _url(route, body), orjson.dumps(body))
            assert status == 200, f"{route.path} via {model}: {status} {answer[:500]!r}"


_IDS = [route.path for _, route in ROUTES]


@pytest.mark.parametrize(("proto", "route"), ROUTES, ids=_IDS)
def test_generated_json_never_5xx(port, proto, route):
    @FUZZ_SETTINGS
    @given(bodies)
    def run(body):
        check(port, proto, route, body)
    run()
    still_serving(port, route)


@pytest.mark.parametrize(("proto", "route"), ROUTES, ids=_IDS)
def test_mutated_seeds_never_5xx(port, proto, route):
    seeds = SEEDS.get(route.path)
    if not seeds:  # a route without seeds is covered by the generated JSON alone
        return

    @FUZZ_SETTINGS
    @given(mutated(seeds))
    def run(body):
        check(port, proto, route, body)
    run()
    still_serving(port, route)


def test_seeds_name_registered_routes():
    """A seed for a path no entry serves is a typo (or a protocol that was renamed)."""
    paths = {route.path for _, route in ROUTES}
    assert set(SEEDS) <= paths, set(SEEDS) - paths


@pytest.mark.parametrize(("proto", "route"), ROUTES, ids=_IDS)
@pytest.mark.parametrize("depth", [200, 300, 1000])
def test_deep_nesting_never_5xx(port, proto, route, depth):
    """JSON nested deeper than the encoder's limit (orjson dumps 254 levels) in a field the
    gateway passes on untouched, and in a tool's input: a 4xx (or a 200), never a 5xx."""
    deep = b"[" * depth + b"]" * depth
    for seed in SEEDS.get(route.path, ()):
        for model in MODELS:
            head = orjson.dumps({**seed, "model": model})[:-1]
            where = {"model": model}  # the URL of a protocol that names the model there
            check(port, proto, route, where, head + b',"fuzz_deep":' + deep + b"}")
            check(port, proto, route, where, head + b',"metadata":{"x":' + deep + b"}}")
