"""Instructions per request on the whole path, counted by valgrind's callgrind: the same number on
every run, whatever else the machine does (CPU time on a shared 2-core VM moves ±15 %).

One uvloop process holds the raw mock (`benchmarks.mock_raw`, OpenAI-compatible), ferryllm's app
and a raw asyncio client that sends N sequential Anthropic requests over one keep-alive
connection. The process runs under callgrind with N = 0 and N = `--requests`; the difference
divided by N is the cost of one request (gateway + mock + client; the last two are small and do
not change between two ferryllm commits, so a before/after ratio is the gateway's).

    python -m benchmarks.instructions --requests 200            # streams
    python -m benchmarks.instructions --requests 200 --json-path  # non-streaming
    python -m benchmarks.instructions --floor   # the same through benchmarks/floor.py: the floor
    python -m benchmarks.instructions --key-pool 3  # the provider with a pool of 3 keys
    python -m benchmarks.instructions --entry gemini      # Gemini client → OpenAI-compatible mock
    python -m benchmarks.instructions --provider gemini   # Anthropic client → Gemini mock
    python -m benchmarks.instructions --entry responses   # Responses client → OpenAI-compatible
    python -m benchmarks.instructions --provider responses  # Anthropic client → Responses mock
    python -m benchmarks.instructions --shared-state redis://127.0.0.1:6379/0  # limits on Redis
Needs valgrind (Debian: apt-get install valgrind). User-space instructions only: syscalls saved
show in CPU time, not here.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys

if not __package__:  # run as a file: make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PROVIDER_TYPES = {"responses": "openai_responses"}  # mock protocol → provider type


def _request(entry: str, stream: bool) -> bytes:
    """The client's request: Anthropic Messages, or Gemini generateContent (model in the URL)."""
    import orjson

    if entry == "gemini":
        body = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "hello there"}]}],
                            "generationConfig": {"maxOutputTokens": 64}})
        path = (b"/v1beta/models/gemini-bench:streamGenerateContent?alt=sse" if stream
                else b"/v1beta/models/gemini-bench:generateContent")
    elif entry == "responses":
        body = orjson.dumps({"model": "gpt-x", "max_output_tokens": 64, "stream": stream,
                             "input": "hello there", "store": False})
        path = b"/v1/responses"
    else:
        body = orjson.dumps({"model": "claude-x", "max_tokens": 64, "stream": stream,
                             "messages": [{"role": "user", "content": "hello there"}]})
        path = b"/v1/messages"
    return (b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % (path, len(body))) + body


async def _drive(requests: int, stream: bool, floor: bool = False, entry: str = "anthropic",
                 provider: str = "openai", shared_state: str | None = None,
                 key_pool: int = 0) -> None:
    import logging

    import orjson
    from aiohttp import web

    from benchmarks.mock_raw import start as start_mock
    from benchmarks.mock_upstream import Mock, MockConfig
    from ferryllm.config import (Config, KeyConfig, ProviderConfig, RouteConfig, ServerConfig,
                                 SharedStateConfig)
    from ferryllm.server import build_app, make_runner

    logging.getLogger("ferryllm").setLevel(logging.WARNING)
    mock_port, gw_port = _free_port(), _free_port()
    mock = await start_mock("127.0.0.1", mock_port,
                            Mock(MockConfig(protocol="anthropic" if floor else provider)))
    if floor:  # the bare pass-through proxy: what the fixed shape costs with no translation
        from benchmarks import floor as floor_proxy
        runner = floor_proxy.make_runner(floor_proxy.build_app(f"http://127.0.0.1:{mock_port}"))
    else:
        cfg = Config(server=ServerConfig(listen=f"127.0.0.1:{gw_port}"),
                     providers=(ProviderConfig(
                         name="p", type=PROVIDER_TYPES.get(provider, provider),
                         api_key=None if key_pool else "k",
                         keys=tuple(KeyConfig(str(i), f"k{i}") for i in range(key_pool)),
                         base_url=f"http://127.0.0.1:{mock_port}"),),
                     routes=(RouteConfig(match="*", provider="p"),),
                     # a generous timeout: everything runs ~50x slower under callgrind
                     shared_state=SharedStateConfig(url=shared_state, key_prefix="instr",
                                                    timeout_ms=10_000)
                     if shared_state else None)
        runner = make_runner(build_app(cfg), cfg)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", gw_port).start()
    request = _request(entry, stream)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw_port)
    for _ in range(requests):
        writer.write(request)
        if stream:
            await reader.readuntil(b"0\r\n\r\n")
        else:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
            await reader.readexactly(length)
    writer.close()
    await runner.cleanup()
    mock.close()


def _count(requests: int, stream: bool, floor: bool, entry: str = "anthropic",
           provider: str = "openai", shared_state: str | None = None, key_pool: int = 0) -> int:
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
           "-m", "benchmarks.instructions", "--run", str(requests), "--entry", entry,
           "--provider", provider]
    if not stream:
        cmd.append("--json-path")
    if floor:
        cmd.append("--floor")
    if shared_state:
        cmd += ["--shared-state", shared_state]
    if key_pool:
        cmd += ["--key-pool", str(key_pool)]
    # a fixed hash seed: str hashes (dict layouts, set orders) otherwise move the count ~1 %
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"error: callgrind run failed: {done.stderr[-500:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--json-path", action="store_true", help="non-streaming requests")
    ap.add_argument("--floor", action="store_true",
                    help="the bare pass-through proxy (benchmarks/floor.py) instead of ferryllm")
    ap.add_argument("--entry", choices=("anthropic", "gemini", "responses"), default="anthropic",
                    help="the client's protocol (default anthropic)")
    ap.add_argument("--provider", choices=("openai", "gemini", "responses"), default="openai",
                    help="the mock provider's protocol (default openai)")
    ap.add_argument("--shared-state", metavar="REDIS_URL",
                    help="the same, with [shared_state] on this Redis (its CPU is not counted)")
    ap.add_argument("--key-pool", type=int, default=0, metavar="N",
                    help="the provider with a pool of N keys instead of one key")
    ap.add_argument("--run", type=int, help=argparse.SUPPRESS)  # the measured child
    args = ap.parse_args(argv)
    stream = not args.json_path
    if args.run is not None:
        import uvloop
        uvloop.run(_drive(args.run, stream, args.floor, args.entry, args.provider,
                          args.shared_state, args.key_pool))
        return 0
    if shutil.which("valgrind") is None:
        print("error: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    shape = (stream, args.floor, args.entry, args.provider, args.shared_state, args.key_pool)
    base, loaded = _count(0, *shape), _count(args.requests, *shape)
    per = (loaded - base) // args.requests
    print(f"{'floor ' if args.floor else ''}{'shared-state ' if args.shared_state else ''}"
          f"{f'key-pool {args.key_pool} ' if args.key_pool else ''}"
          f"{args.entry} → {args.provider} "
          f"{'stream' if stream else 'json'}: {per} instructions per request "
          f"({args.requests} requests)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
