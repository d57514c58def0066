"""Install (once) and run the real Gemini CLI (npm `@google/gemini-cli`) for the end-to-end tests.

The pinned release is installed by `tests/npm_cli.py` into `.cache/gemini-cli/<version>` (or
`$FERRYLLM_GEMINI_CLI_VERSION` to try another one); without npm the tests FAIL. The package needs
Node >= 20 (its `engines`); the bundle is plain JavaScript, run with `node`.

`run_gemini()` drives it non-interactively (`--prompt`) as a subprocess of the test's event loop,
hermetic and offline:
- a throw-away HOME, workspace and settings (`$HOME/.gemini/settings.json`); the system settings
  and system-defaults paths (`GEMINI_CLI_SYSTEM_SETTINGS_PATH`, `…_DEFAULTS_PATH`) point at files
  that do not exist, so no `/etc/gemini-cli/*.json` on the machine changes the run (the CLI skips
  system files whose folder is writable by others, so they cannot live under /tmp);
- API-key auth (`security.auth.selectedType = "gemini-api-key"`, `GEMINI_API_KEY` a dummy) and
  `GOOGLE_GEMINI_BASE_URL` = the given URL: every model call goes to 127.0.0.1;
- what would phone home is off: usage statistics (Clearcut) and the installation-id header
  (`privacy.usageStatisticsEnabled`), telemetry (`telemetry.enabled`, `GEMINI_TELEMETRY_ENABLED`),
  the npm update check and auto-update (`general.enableAutoUpdate*`), IDE integration
  (`ide.enabled`), extensions and MCP servers (none installed or configured, `admin.*` off);
  proxy variables are not passed on;
- the workspace is trusted (`trustedFolders.json` at `GEMINI_CLI_TRUSTED_FOLDERS_PATH`), without
  which headless runs fall back from `--approval-mode yolo` to `default` and cannot run tools.
Every run also loads `tests/node_netguard.cjs` (`NODE_OPTIONS=--require`): each fetch, socket
connect and DNS lookup is logged (`GeminiRun.network`) and anything not loopback is refused on
the spot, so a test can assert that nothing tried to leave and no packet ever does.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from tests.npm_cli import CACHE, CLIUnavailable, npm_cli, version_of

PINNED_VERSION = "0.61.0"
PACKAGE = "@google/gemini-cli"
INSTALL_DIR = CACHE / "gemini-cli"
NETGUARD = Path(__file__).parent / "node_netguard.cjs"
CLI_TIMEOUT = 150.0  # seconds for one `gemini --prompt` run
DEFAULT_MODEL = "gemini-2.5-pro"  # a fixed model: "auto" first asks a classifier model
UNTRUSTED_WARNING = 'Approval mode overridden to "default"'
GeminiCLIUnavailable = CLIUnavailable

SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": True}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False, "logPrompts": False},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
    "ide": {"enabled": False, "hasSeenNudge": True},
    "admin": {"extensions": {"enabled": False}, "mcp": {"enabled": False}},
    "tools": {"useRipgrep": False},
    "ui": {"hideTips": True, "hideBanner": True},
}


def wanted_version() -> str:
    return os.environ.get("FERRYLLM_GEMINI_CLI_VERSION") or PINNED_VERSION


def _locate(prefix: Path) -> list[str] | None:
    script = prefix / "node_modules" / "@google" / "gemini-cli" / "bundle" / "gemini.js"
    if not script.exists():
        return None
    argv = ["node", str(script)]
    env = {"GEMINI_CLI_NO_RELAUNCH": "true", "NO_COLOR": "1"}
    return argv if version_of(argv, INSTALL_DIR, env) == wanted_version() else None


def gemini_command() -> list[str]:
    """argv prefix that runs the pinned Gemini CLI, installing it first if needed."""
    return npm_cli(PACKAGE, wanted_version(), "gemini-cli", _locate)


@dataclass
class GeminiRun:
    code: int
    stdout: str
    stderr: str
    workspace: Path
    network: list[dict]  # every network attempt: {"kind", "target", "allowed"}

    @property
    def refused(self) -> list[dict]:
        """Attempts to reach anything but loopback (refused by the guard)."""
        return [n for n in self.network if not n["allowed"]]

    @property
    def json(self) -> dict:
        """`--output-format json`: the one JSON object the CLI prints (an answer on stdout; a
        failed run prints `{"session_id", "error": {"type", "message", "code"}}` on stderr)."""
        if "{" in self.stdout:
            return json.loads(self.stdout[self.stdout.index("{"):])
        return json.loads(self.stderr[self.stderr.rindex("\n{\n") + 1:])

    def explain(self) -> str:
        return (f"gemini exited {self.code}\nstdout: {self.stdout[-3000:]}\n"
                f"stderr: {self.stderr[-3000:]}")


API_KEY = "gemini-cli-test-key"


def prepare(tmp: Path, base_url: str, settings: dict | None = None,
            api_key: str = API_KEY) -> tuple[dict, Path]:
    """The environment and the trusted workspace of one run under `tmp`."""
    home, work = tmp / "home", tmp / "work"
    home.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    (home / ".gemini").mkdir(exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(
        json.dumps({**SETTINGS, **(settings or {})}, indent=2))
    trusted = tmp / "trustedFolders.json"
    trusted.write_text(json.dumps({str(work.resolve()): "TRUST_FOLDER"}))
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home), "SHELL": "/bin/bash", "TERM": "dumb", "NO_COLOR": "1",
        "LANG": "C.UTF-8", "TMPDIR": str(tmp),
        "GEMINI_API_KEY": api_key, "GOOGLE_GEMINI_BASE_URL": base_url,
        "GEMINI_CLI_SYSTEM_SETTINGS_PATH": str(tmp / "no-system-settings.json"),
        "GEMINI_CLI_SYSTEM_DEFAULTS_PATH": str(tmp / "no-system-defaults.json"),
        "GEMINI_CLI_TRUSTED_FOLDERS_PATH": str(trusted),
        "GEMINI_TELEMETRY_ENABLED": "false",
        "NODE_OPTIONS": f'--require "{NETGUARD}"', "FERRY_NETLOG": str(tmp / "network.log"),
    }
    return env, work


async def run_gemini(gemini: list[str], base_url: str, prompt: str, tmp: Path, *,
                     model: str = DEFAULT_MODEL, yolo: bool = False, output: str = "text",
                     settings: dict | None = None, files: dict[str, bytes] | None = None,
                     api_key: str = API_KEY, timeout: float = CLI_TIMEOUT) -> GeminiRun:
    """`gemini --prompt PROMPT` against `base_url` (`files` are written into the workspace
    first); a timeout kills its process group and fails."""
    env, work = prepare(tmp, base_url, settings, api_key)
    for name, data in (files or {}).items():
        (work / name).write_bytes(data)
    argv = [*gemini, "--output-format", output]
    if model:
        argv += ["--model", model]
    if yolo:
        argv += ["--approval-mode", "yolo"]
    proc = await asyncio.create_subprocess_exec(
        *argv, "--prompt", prompt, cwd=work, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True)  # its own process group: a timeout ends the CLI and its shells
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = await proc.communicate()
        raise AssertionError(f"gemini did not finish within {timeout}s\n"
                             f"stdout: {out.decode()[-3000:]}\nstderr: {err.decode()[-3000:]}")
    log = Path(env["FERRY_NETLOG"])
    network = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return GeminiRun(proc.returncode, out.decode(errors="replace"),
                     err.decode(errors="replace"), work, network)
