"""Install (once) and locate the real Claude Code CLI for the end-to-end tests.

The npm package `@anthropic-ai/claude-code` is installed by `tests/npm_cli.py` into
`.cache/claude-code/<version>` at the pinned version below, or at
`$FERRYLLM_CLAUDE_CODE_VERSION` to try another one. An existing install of the wanted version is
reused. Without npm the tests FAIL (CI has npm).

2.1.x releases ship a native binary in a per-platform optional dependency
(`@anthropic-ai/claude-code-linux-x64` …); the package's postinstall links it over
`bin/claude.exe`. Where install scripts did not run, the platform binary is used directly.
"""
from __future__ import annotations

import os
from pathlib import Path

from tests.npm_cli import CACHE, CLIUnavailable, npm_cli, version_of

PINNED_VERSION = "2.1.331"
PACKAGE = "@anthropic-ai/claude-code"
INSTALL_DIR = CACHE / "claude-code"
INSTALL_TIMEOUT = 900  # seconds: the native binary is a ~400 MB download
ClaudeCodeUnavailable = CLIUnavailable


def wanted_version() -> str:
    return os.environ.get("FERRYLLM_CLAUDE_CODE_VERSION") or PINNED_VERSION


def _candidates(prefix: Path) -> list[Path]:
    modules = prefix / "node_modules"
    out = [modules / ".bin" / "claude"]
    out += sorted((modules / "@anthropic-ai").glob("claude-code-*/claude"))
    out.append(modules / "@anthropic-ai" / "claude-code" / "cli.js")  # releases before native
    return [p for p in out if p.exists()]


def _locate(prefix: Path) -> list[str] | None:
    """The command that runs the installed CLI of the wanted version, or None."""
    for binary in _candidates(prefix):
        argv = ["node", str(binary)] if binary.suffix == ".js" else [str(binary)]
        if version_of(argv, INSTALL_DIR, {"DISABLE_AUTOUPDATER": "1"}) == wanted_version():
            return argv
    return None


def claude_command() -> list[str]:
    """argv prefix that runs the pinned Claude Code CLI, installing it first if needed."""
    return npm_cli(PACKAGE, wanted_version(), "claude-code", _locate, INSTALL_TIMEOUT)
