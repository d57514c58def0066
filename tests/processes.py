"""`ferryllm serve` as a real process for end-to-end tests: started on a free loopback port,
ready once `/health` answers, stopped by its PID (the `serve` fixture in conftest)."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import aiohttp


def parent_pid(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, proc: asyncio.subprocess.Process, base: str) -> None:
        self.proc, self.base = proc, base
        self.signalled = False

    def send(self, sig: int = signal.SIGTERM) -> None:
        self.signalled = True
        self.proc.send_signal(sig)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.returncode is None and not self.signalled:
            self.send(sig)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise

    async def workers_serving(self, workers: int, tries: int = 400) -> None:
        """`serve` returns once one worker answers; on a busy machine the others may still be
        starting (and a signal forwarded to a worker still starting is lost). A 404 is answered
        by any worker, carries its process's request-id prefix and counts against no limit: ask
        until `workers` prefixes have been seen (bounded)."""
        seen: set[str] = set()
        for _ in range(tries):
            async with aiohttp.ClientSession() as s:  # a new connection each: either worker
                async with s.get(self.base + "/no-such-path") as resp:
                    seen.add(resp.headers["request-id"][:16])
            if len(seen) == workers:
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"only {len(seen)} of {workers} workers answered")


async def serve_fixture():
    """Yields `start(*args, env=None)`; kills what it started afterwards."""
    started: list[Served] = []

    async def start(*args: str, env: dict[str, str] | None = None) -> Served:
        port = free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ferryllm", "serve", *args, "--listen", f"127.0.0.1:{port}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env=None if env is None else {**os.environ, **env},
            start_new_session=True)  # its own process group: teardown reaches --workers' children
        served = Served(proc, f"http://127.0.0.1:{port}")
        started.append(served)
        async with aiohttp.ClientSession() as s:
            for _ in range(200):  # up to ~10 s for start-up
                try:
                    async with s.get(served.base + "/health") as r:
                        if r.status == 200:
                            return served
                except aiohttp.ClientConnectionError:
                    pass
                if proc.returncode is not None:
                    break
                await asyncio.sleep(0.05)
        out = await proc.stdout.read() if proc.returncode is not None else b""
        raise AssertionError(f"ferryllm did not start: {out.decode(errors='replace')}")

    yield start
    for served in started:
        try:  # the whole group: a supervisor killed alone would leave its workers serving
            os.killpg(served.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if served.proc.returncode is None:
            await served.proc.wait()


