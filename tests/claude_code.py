"""Install (once) and locate the real Claude Code CLI for the end-to-end tests.

The npm package `@anthropic-ai/claude-code` is installed with `npm install --prefix
.cache/claude-code` inside the repository (the folder ignores itself with its own `.gitignore`)
at the pinned version below, or at `$FERRYLLM_CLAUDE_CODE_VERSION` to try another one. An
existing install of the wanted version is reused. Without npm the tests FAIL (CI has npm): a
bridge for Claude Code that was never run against Claude Code is not tested.

2.1.x releases ship a native binary in a per-platform optional dependency
(`@anthropic-ai/claude-code-linux-x64` …); the package's postinstall links it over
`bin/claude.exe`. Where install scripts did not run, the platform binary is used directly.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

PINNED_VERSION = "2.1.331"
PACKAGE = "@anthropic-ai/claude-code"
ROOT = Path(__file__).resolve().parent.parent
INSTALL_DIR = ROOT / ".cache" / "claude-code"
INSTALL_TIMEOUT = 900  # seconds: the native binary is a ~400 MB download
VERSION_TIMEOUT = 60


class ClaudeCodeUnavailable(RuntimeError):
    """The CLI could not be installed or run; the message says why and what to do."""


def wanted_version() -> str:
    return os.environ.get("FERRYLLM_CLAUDE_CODE_VERSION") or PINNED_VERSION


def _candidates(prefix: Path) -> list[Path]:
    modules = prefix / "node_modules"
    out = [modules / ".bin" / "claude"]
    out += sorted((modules / "@anthropic-ai").glob("claude-code-*/claude"))
    out.append(modules / "@anthropic-ai" / "claude-code" / "cli.js")  # releases before native
    return [p for p in out if p.exists()]


def _version_of(binary: Path) -> str | None:
    cmd = (["node", str(binary)] if binary.suffix == ".js" else [str(binary)]) + ["--version"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=VERSION_TIMEOUT,
                              stdin=subprocess.DEVNULL, env={**os.environ, "HOME": str(INSTALL_DIR),
                                                             "DISABLE_AUTOUPDATER": "1"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.split()[0] if done.stdout.split() else None


def _find(version: str) -> list[str] | None:
    """The command that runs the installed CLI of `version`, or None."""
    for binary in _candidates(INSTALL_DIR / version):
        if _version_of(binary) == version:
            return ["node", str(binary)] if binary.suffix == ".js" else [str(binary)]
    return None


def claude_command() -> list[str]:
    """argv prefix that runs the pinned Claude Code CLI, installing it first if needed."""
    version = wanted_version()
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    ignore = INSTALL_DIR / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    with open(INSTALL_DIR / ".install.lock", "w") as lock:  # one installer at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _find(version)
        if found:
            return found
        npm = shutil.which("npm")
        if npm is None:
            raise ClaudeCodeUnavailable(
                "npm is not installed: the Claude Code end-to-end tests install the real CLI "
                f"with `npm install {PACKAGE}@{version}`. Install Node.js and npm "
                "(e.g. `apt-get install -y nodejs npm`) and run the tests again.")
        prefix = INSTALL_DIR / version
        try:
            done = subprocess.run(
                [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                 "--no-save", "--loglevel=error", f"{PACKAGE}@{version}"],
                capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise ClaudeCodeUnavailable(
                f"`npm install {PACKAGE}@{version}` took more than {INSTALL_TIMEOUT}s") from None
        if done.returncode != 0:
            raise ClaudeCodeUnavailable(
                f"`npm install {PACKAGE}@{version}` failed ({done.returncode}):\n"
                + (done.stderr or done.stdout)[-3000:])
        found = _find(version)
        if not found:
            raise ClaudeCodeUnavailable(
                f"{PACKAGE}@{version} installed into {prefix} but no runnable `claude` "
                f"reporting version {version} was found there")
        return found
