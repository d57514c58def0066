"""The floor of ferryllm's fixed shape: a bare pass-through proxy with no translation, no
routing, no limits, no metrics — only what every request through an aiohttp server and one
shared aiohttp `ClientSession` must cost. Measured like the gateway, its CPU per request is the
part of ferryllm's cost no change inside ferryllm can remove.

It does what ferryllm does with the same aiohttp pieces and options: read the client's body,
POST it to one upstream with a pooled keep-alive connection, and send the upstream's bytes back
(a stream as a chunked SSE response whose headers go out with the first bytes and whose last
bytes go out with the end of the response, as ferryllm sends a short stream: one write; a JSON
body as one response).

    python -m benchmarks.floor --port 3000 --upstream http://127.0.0.1:8082
    python -m benchmarks.instructions --floor          # its instructions per request
    python -m benchmarks.run_all --scenarios floor     # its CPU per request under the target-1 load
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys

if not __package__:  # run as a file: make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import aiohttp
from aiohttp import web

from ferryllm.downstream import SSE_HEADERS, SSEResponse
from ferryllm.loop import event_loop_factory, tune_gc
from ferryllm.transport import client_session

SESSION = web.AppKey("session", aiohttp.ClientSession)


def build_app(upstream: str) -> web.Application:
    """Every POST path is forwarded to the same path on `upstream`."""
    app = web.Application(client_max_size=32 * 1024 * 1024)
    headers = {"content-type": "application/json", "x-api-key": "floor", "authorization": "Bearer floor",
               "anthropic-version": "2023-06-01"}
    timeout = aiohttp.ClientTimeout(total=None, connect=600, sock_read=300)

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        resp = await request.app[SESSION].post(upstream + request.path, data=body, headers=headers,
                                               timeout=timeout)
        try:
            if not resp.content_type.startswith("text/event-stream"):
                return web.Response(status=resp.status, body=await resp.read(),
                                    content_type="application/json")
            out = SSEResponse(status=resp.status, headers=SSE_HEADERS)
            await out.prepare(request)
            held = b""  # one read behind, so the last bytes go out with the end of the response
            async for chunk in resp.content.iter_any():
                if held:
                    await out.write(held)
                held = chunk
            await out.write_eof(held)
            return out
        finally:
            resp.release()

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def on_startup(app: web.Application) -> None:
        app[SESSION] = client_session(1024)  # ferryllm's own provider session

    async def on_cleanup(app: web.Application) -> None:
        await app[SESSION].close()

    app.router.add_post("/{path:.*}", forward)
    app.router.add_get("/health", health)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def make_runner(app: web.Application) -> web.AppRunner:
    return web.AppRunner(app, handle_signals=True, access_log=None, handler_cancellation=True)


async def _serve(host: str, port: int, upstream: str) -> None:
    runner = make_runner(build_app(upstream))
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=2048).start()
    tune_gc()  # as the gateway does: a process setting, not ferryllm's own work
    print(f"floor proxy on http://{host}:{port} -> {upstream}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=3000)
    ap.add_argument("--upstream", default="http://127.0.0.1:8082",
                    help="the provider (default: the Anthropic mock, so Anthropic clients get its bytes)")
    args = ap.parse_args(argv)
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(_serve(args.host, args.port, args.upstream.rstrip("/")))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
