"""Install (once) a real coding CLI from npm for the end-to-end tests, and find its binary.

`npm_cli(package, version, folder, locate)` runs `npm install --prefix .cache/<folder>/<version>`
inside the repository (the folder ignores itself with its own `.gitignore`) unless a runnable
install of that version is already there; `locate(prefix)` returns the argv that runs the
installed CLI, or None. One installer at a time (a file lock), so parallel test processes share
one install. Without npm the tests FAIL (CI has npm): a bridge for a CLI that was never run
against the CLI is not tested.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
VERSION_TIMEOUT = 60


class CLIUnavailable(RuntimeError):
    """The CLI could not be installed or run; the message says why and what to do."""


def version_of(argv: list[str], home: Path, env: dict[str, str] | None = None) -> str | None:
    """The first word `argv --version` prints that starts with a digit, or None."""
    try:
        done = subprocess.run(argv + ["--version"], capture_output=True, text=True,
                              timeout=VERSION_TIMEOUT, stdin=subprocess.DEVNULL,
                              env={**os.environ, "HOME": str(home), **(env or {})})
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return next((w for w in done.stdout.split() if w[:1].isdigit()), None)


def npm_cli(package: str, version: str, folder: str,
            locate: Callable[[Path], list[str] | None], timeout: float = 900) -> list[str]:
    """argv prefix that runs `package@version`, installing it first if needed."""
    root = CACHE / folder
    root.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    prefix = root / version
    with open(root / ".install.lock", "w") as lock:  # one installer at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = locate(prefix) if prefix.exists() else None
        if found:
            return found
        npm = shutil.which("npm")
        if npm is None:
            raise CLIUnavailable(
                f"npm is not installed: these end-to-end tests install the real CLI with "
                f"`npm install {package}@{version}`. Install Node.js and npm "
                "(e.g. `apt-get install -y nodejs npm`) and run the tests again.")
        try:
            done = subprocess.run(
                [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                 "--no-save", "--loglevel=error", f"{package}@{version}"],
                capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise CLIUnavailable(
                f"`npm install {package}@{version}` took more than {timeout}s") from None
        if done.returncode != 0:
            raise CLIUnavailable(f"`npm install {package}@{version}` failed ({done.returncode}):\n"
                                 + (done.stderr or done.stdout)[-3000:])
        found = locate(prefix)
        if not found:
            raise CLIUnavailable(f"{package}@{version} installed into {prefix} but no runnable "
                                 f"binary reporting version {version} was found there")
        return found
