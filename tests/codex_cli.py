"""Install (once), locate and run the real Codex CLI (`codex exec`) for the end-to-end tests.

The npm package `@openai/codex` is installed by `tests/npm_cli.py` into `.cache/codex/<version>`
at the pinned version below, or at `$FERRYLLM_CODEX_VERSION` to try another one. The package
is a thin Node launcher; the Rust binary comes in a per-platform optional dependency
(`@openai/codex-linux-x64` → `vendor/<target triple>/bin/codex`), which is run directly (the
launcher is the fallback).

`run_codex` drives `codex exec` non-interactively with a throw-away HOME and CODEX_HOME whose
`config.toml` defines one custom provider (`base_url` = the given URL, `wire_api =
"responses"`, key from `$FERRY_CODEX_KEY`, no retries), turns analytics, update checks,
plugins, apps, web search and the other networked features off, lets commands and patches
run in the workspace without asking, and declares the model in a model catalog
(`model_catalog_json`) so that Codex sends its full tool set — `apply_patch` as a freeform
`custom` tool included — for a model name it does not know (without a catalog entry it falls
back to a reduced tool set without `apply_patch`). See docs/codex.md.
"""
from __future__ import annotations

import asyncio
import os
import platform
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

import orjson

from tests.npm_cli import CACHE, ROOT, CLIUnavailable, npm_cli, version_of

PINNED_VERSION = "0.171.0"
PACKAGE = "@openai/codex"
INSTALL_DIR = CACHE / "codex"
INSTALL_TIMEOUT = 900
RUN_TIMEOUT = 120.0  # seconds for one `codex exec`
KEY_ENV = "FERRY_CODEX_KEY"
KEY = "sk-codex-test-key"
PROVIDER = "ferry"
MODEL = "ferry-coder"
CodexUnavailable = CLIUnavailable
EXAMPLE_CATALOG = ROOT / "examples" / "codex" / "ferry-models.json"

TRIPLES = {("Linux", "x86_64"): ("linux-x64", "x86_64-unknown-linux-musl"),
           ("Linux", "aarch64"): ("linux-arm64", "aarch64-unknown-linux-musl"),
           ("Darwin", "x86_64"): ("darwin-x64", "x86_64-apple-darwin"),
           ("Darwin", "arm64"): ("darwin-arm64", "aarch64-apple-darwin")}
# Features that reach the network or add tools a provider-neutral test does not want.
FEATURES_OFF = ("plugins", "apps", "remote_plugin", "tool_suggest", "goals",
                "image_generation", "browser_use", "browser_use_external", "computer_use",
                "in_app_browser", "api_key_model_discovery", "enable_request_compression",
                "unbounded_connection_retries", "shell_snapshot", "skill_search",
                "skill_mcp_dependency_install", "workspace_dependencies", "memories",
                "daemon_auto_start")


def wanted_version() -> str:
    return os.environ.get("FERRYLLM_CODEX_VERSION") or PINNED_VERSION


def _candidates(prefix: Path) -> list[list[str]]:
    modules = prefix / "node_modules" / "@openai"
    plat, triple = TRIPLES.get((platform.system(), platform.machine()), ("", ""))
    native = modules / f"codex-{plat}" / "vendor" / triple / "bin" / "codex"
    out = [[str(native)]] if plat and native.exists() else []
    launcher = modules / "codex" / "bin" / "codex.js"
    if launcher.exists():
        out.append(["node", str(launcher)])
    return out


def _locate(prefix: Path) -> list[str] | None:
    with tempfile.TemporaryDirectory() as home:
        for argv in _candidates(prefix):
            if version_of(argv, Path(home), {"CODEX_HOME": home}) == wanted_version():
                return argv
    return None


def codex_command() -> list[str]:
    """argv prefix that runs the pinned Codex CLI, installing it first if needed."""
    return npm_cli(PACKAGE, wanted_version(), "codex", _locate, INSTALL_TIMEOUT)


# ---------------------------------------------------------------- configuration


def catalog_entry(model: str) -> dict:
    """A model catalog entry (`model_catalog_json`) that gives an unknown model name Codex's
    full tool set (`unified_exec` shell tools and the freeform `apply_patch` tool): the first
    entry of the documented example, `examples/codex/ferry-models.json`, renamed."""
    entry = orjson.loads(EXAMPLE_CATALOG.read_bytes())["models"][0]
    return {**entry, "slug": model, "display_name": model}


def config_toml(base_url: str, model: str = MODEL, catalog: Path | None = None,
                bare: bool = False) -> str:
    """`config.toml` for CODEX_HOME: one provider at `base_url` speaking Responses. `bare`
    keeps Codex's defaults for everything else (what a user's minimal config sends)."""
    provider = [
        f"[model_providers.{PROVIDER}]", 'name = "ferryllm"',
        f"base_url = {orjson.dumps(base_url.rstrip('/') + '/v1').decode()}",
        'wire_api = "responses"', f'env_key = "{KEY_ENV}"',
        "request_max_retries = 0", "stream_max_retries = 0",
        "stream_idle_timeout_ms = 60000", ""]
    if bare:
        return "\n".join([f'model = "{model}"', f'model_provider = "{PROVIDER}"',
                          'approval_policy = "never"', "", *provider])
    lines = [
        f'model = "{model}"', f'model_provider = "{PROVIDER}"',
        'approval_policy = "never"', 'sandbox_mode = "danger-full-access"',
        'web_search = "disabled"', "check_for_update_on_startup = false",
        'model_reasoning_summary = "auto"',
    ]
    if catalog is not None:
        lines.append(f"model_catalog_json = {orjson.dumps(str(catalog)).decode()}")
    lines += [
        "", "[analytics]", "enabled = false",
        "", "[history]", 'persistence = "none"',
        "", "[agents]", "enabled = false",
        "", "[features]", *(f"{name} = false" for name in FEATURES_OFF), "", *provider,
    ]
    return "\n".join(lines)


@dataclass
class CodexRun:
    code: int
    stdout: str
    stderr: str
    last_message: str  # `codex exec -o FILE`: the agent's final answer
    workdir: Path

    def explain(self) -> str:
        return (f"codex exited {self.code}\nlast message: {self.last_message[-1500:]}\n"
                f"stdout: {self.stdout[-3000:]}\nstderr: {self.stderr[-3000:]}")


async def run_codex(codex: list[str], base_url: str, prompt: str, tmp: Path, *,
                    model: str = MODEL, full_tools: bool = True, bare: bool = False,
                    config: str | None = None, env: dict[str, str] | None = None,
                    args: tuple[str, ...] = (), catalog: dict | None = None,
                    timeout: float = RUN_TIMEOUT) -> CodexRun:
    """Run `codex exec PROMPT` in `tmp/work` against the Responses API at `base_url`.

    Async (the gateway and mocks live in the test's event loop); the CLI gets its own process
    group, killed whole on timeout. `tmp/work` may be prepared before the call (files to patch),
    and so may `tmp/home/.codex` when `config` (the text of a `config.toml`) is given; `args`
    go on the command line before the prompt; `catalog` overrides fields of the model's catalog
    entry (e.g. a small `context_window`).
    """
    home, codex_home, work = tmp / "home", tmp / "home" / ".codex", tmp / "work"
    codex_home.mkdir(parents=True, exist_ok=True)
    work.mkdir(exist_ok=True)
    catalog_file = None
    if full_tools and config is None:
        catalog_file = codex_home / "ferry-models.json"
        catalog_file.write_bytes(orjson.dumps({"models": [{**catalog_entry(model),
                                                            **(catalog or {})}]}))
    (codex_home / "config.toml").write_text(config if config is not None else
                                            config_toml(base_url, model, catalog_file, bare))
    last = tmp / "last-message.txt"
    env = {
        **(env or {}),
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home), "CODEX_HOME": str(codex_home), "SHELL": "/bin/bash",
        "TERM": "dumb", "NO_COLOR": "1", "LANG": "C.UTF-8", "TMPDIR": str(tmp),
        KEY_ENV: KEY, "RUST_LOG": "error",
    }
    proc = await asyncio.create_subprocess_exec(
        *codex, "exec", "--skip-git-repo-check", "--ephemeral", "--color", "never",
        "-C", str(work), "-o", str(last), *args, "--", prompt,
        cwd=work, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = await proc.communicate()
        raise AssertionError(f"codex did not finish within {timeout}s\nstdout: "
                             f"{out.decode(errors='replace')[-3000:]}\nstderr: "
                             f"{err.decode(errors='replace')[-3000:]}") from None
    finally:
        try:  # shells Codex left behind (unified exec sessions) go with it
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return CodexRun(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
                    last.read_text() if last.exists() else "", work)
