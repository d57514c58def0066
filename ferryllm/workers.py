"""`ferryllm serve --workers N`: N forked processes share the port with SO_REUSEPORT (the kernel
spreads connections across them); the parent supervises them: a worker that dies is restarted,
SIGTERM/SIGINT is passed on to all of them (each drains its streams), then the parent exits 0.
SIGHUP: the parent reads the config file again; a valid one is passed on as SIGHUP to every
worker (each reloads, `ferryllm.reload`) and serves the workers it starts from then on; an invalid
one is reported once, by the parent, and changes nothing.

Metrics are aggregated across workers with prometheus_client's multi-process mode
(`PROMETHEUS_MULTIPROC_DIR`, a fresh temporary folder unless already set). Rate limits,
concurrency caps and circuit breakers are per worker (see docs/operations.md)."""
from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
import time

from .config import Config

log = logging.getLogger("ferryllm.workers")

FAST_FAILURE_SECS = 3.0  # a worker dying this soon after its start is a start-up failure


def _worker(config: Config) -> int:
    from .server import run_async, serve_forever
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; SIGTERM drains
    try:
        run_async(serve_forever(config, reuse_port=True))
    except OSError as exc:
        print(f"error: cannot listen on {config.server.listen}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    return 0


def _spawn(config: Config) -> int:
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            code = _worker(config)
        finally:
            os._exit(code)
    return pid


def supervise(config: Config, workers: int) -> int:
    own_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="ferryllm-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    stopping = reloading = False

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    def hup(signum, frame) -> None:
        nonlocal reloading
        reloading = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, hup)
    children = {_spawn(config): time.monotonic() for _ in range(workers)}
    log.info("supervising %d workers on %s", workers, config.server.listen)
    code = 0
    try:
        while children and not stopping:
            if reloading:
                reloading = False
                config = _reload(config, list(children))
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                time.sleep(0.1)
                continue
            started = children.pop(pid, None)
            if started is None:
                continue
            _mark_dead(pid)
            exit_code = os.waitstatus_to_exitcode(status)
            if time.monotonic() - started < FAST_FAILURE_SECS and exit_code != 0:
                log.error("worker %d failed at start-up (exit %d); stopping", pid, exit_code)
                code = 1
                break
            log.warning("worker %d exited (%d); starting a new one", pid, exit_code)
            children[_spawn(config)] = time.monotonic()
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + config.server.shutdown_grace_secs + 5
        while children and time.monotonic() < deadline:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid:
                children.pop(pid, None)
            else:
                time.sleep(0.05)
        for pid in children:  # did not drain in time
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)
    return code


def _reload(config: Config, workers: list[int]) -> Config:
    """The new config after SIGHUP was passed on to the workers, or the running one after one
    `error:` line."""
    from .reload import read
    if not config.source:
        return config
    new = read(config.source, config)
    if new is None:
        return config
    for pid in workers:
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            pass
    return new


def _mark_dead(pid: int) -> None:
    try:
        from .metrics import Metrics
        Metrics.mark_process_dead(pid)
    except Exception:  # noqa: BLE001 - metrics clean-up must never stop supervision
        pass
