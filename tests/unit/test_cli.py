"""The `ferryllm` command as a user runs it: `python -m ferryllm …` in a subprocess."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import ferryllm
from ferryllm import cli

ROOT = Path(__file__).resolve().parents[2]
GOOD = """
[[providers]]
name = "a"
type = "openai"
base_url = "https://api.example.com"
api_key_env = "FERRYLLM_TEST_KEY"

[[routes]]
match = "*"
provider = "a"
"""


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "FERRYLLM_TEST_KEY"}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT),
                                                          environ.get("PYTHONPATH")]))
    environ.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "ferryllm", *args], capture_output=True,
                          text=True, cwd=ROOT, env=environ, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture
def config_file(tmp_path):
    def write(text: str) -> str:
        path = tmp_path / "ferryllm.toml"
        path.write_text(text)
        return str(path)
    return write


@pytest.mark.parametrize("args", [["version"], ["--version"]])
def test_version(args):
    proc = run(*args)
    assert proc.returncode == 0
    assert proc.stdout == f"ferryllm {ferryllm.__version__}\n"


def test_check_config_ok(config_file):
    path = config_file(GOOD)
    proc = run("check-config", "--config", path, env={"FERRYLLM_TEST_KEY": "sk-test"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"config ok: {path}\n"
    assert proc.stderr == ""


def test_check_config_short_flag(config_file):
    proc = run("check-config", "-c", config_file(GOOD), env={"FERRYLLM_TEST_KEY": "k"})
    assert proc.returncode == 0


def test_check_config_lists_every_problem(config_file):
    path = config_file('[server]\nlisten = "abc"\nrequest_timeout_secs = "ten"\n' + GOOD)
    proc = run("check-config", "--config", path)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == f"error: {path}: 3 problem(s)"
    assert lines[1].strip() == 'server.listen: expected HOST:PORT, got "abc"'
    assert lines[2].strip() == 'server.request_timeout_secs: expected a positive number, got "ten"'
    assert lines[3].strip() == ("providers[0].api_key_env: environment variable FERRYLLM_TEST_KEY "
                                "is not set")
    assert proc.stdout == ""


def test_check_config_never_prints_the_key(config_file):
    path = config_file(GOOD.replace('api_key_env = "FERRYLLM_TEST_KEY"',
                                    'api_key_env = "FERRYLLM_TEST_KEY"\napi_key = "sk-literal"'))
    proc = run("check-config", "-c", path, env={"FERRYLLM_TEST_KEY": "sk-from-env"})
    assert proc.returncode == 1
    assert "sk-" not in proc.stderr + proc.stdout


def test_check_config_warns_on_unknown_keys(config_file):
    path = config_file('[server]\nlistne = "127.0.0.1:1"\n' + GOOD)
    proc = run("check-config", "-c", path, env={"FERRYLLM_TEST_KEY": "k"})
    assert proc.returncode == 0
    assert proc.stdout == f"config ok: {path}\n"
    assert proc.stderr == 'warning: server.listne: unknown key (did you mean "listen"?)\n'


def test_check_config_strict_makes_unknown_keys_errors(config_file):
    path = config_file('[server]\nlistne = "127.0.0.1:1"\n' + GOOD)
    proc = run("check-config", "-c", path, "--strict", env={"FERRYLLM_TEST_KEY": "k"})
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"error: {path}: 1 problem(s)",
        '  server.listne: unknown key (did you mean "listen"?)']


def test_check_config_missing_file(tmp_path):
    path = str(tmp_path / "nope.toml")
    proc = run("check-config", "-c", path)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"error: {path}: 1 problem(s)", "  file not found"]


def test_check_config_toml_syntax_error(config_file):
    proc = run("check-config", "-c", config_file("[server\n"))
    assert proc.returncode == 1
    assert "invalid TOML" in proc.stderr and "line 1" in proc.stderr


def test_check_config_needs_a_path():
    proc = run("check-config")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and len(proc.stderr.splitlines()) == 1


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "examples/config").glob("*.toml")))
def test_check_config_examples(name):
    env = {"CODX_API_KEY": "k", "OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k",
           "OPENAI_API_KEY_2": "k2", "OPENAI_API_KEY_EU": "k3"}
    proc = run("check-config", "--strict", "-c", f"examples/config/{name}", env=env)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_serve_without_config_or_demo():
    proc = run("serve")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: serve needs --config")
    assert len(proc.stderr.splitlines()) == 1


def test_serve_with_a_bad_config_does_not_start(config_file):
    proc = run("serve", "-c", config_file('[server]\nlisten = "abc"\n' + GOOD),
               env={"FERRYLLM_TEST_KEY": "k"})
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0].endswith(": 1 problem(s)")


@pytest.mark.parametrize(("args", "needle"), [
    (["serve", "--demo", "--listen", "abc"], "--listen: expected HOST:PORT"),
    (["serve", "--demo", "--listen", "127.0.0.1:99999"], "port must be 1-65535"),
    (["serve", "--demo", "--workers", "0"], "--workers: expected a positive integer"),
    (["serve", "--demo", "-c", "x.toml"], "not allowed with"),
    (["frobnicate"], "invalid choice"),
    ([], "no command given"),
])
def test_usage_errors_are_one_line_exit_2(args, needle):
    proc = run(*args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and needle in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_help_exits_zero():
    proc = run("--help")
    assert proc.returncode == 0 and "check-config" in proc.stdout


def test_serve_passes_listen_and_workers_to_the_server(config_file, monkeypatch):
    """In process, with the server's `run` replaced: the override reaches the config."""
    seen = {}

    def fake_run(config, *, workers):
        seen.update(listen=config.server.listen, workers=workers)
        return 0

    monkeypatch.setitem(sys.modules, "ferryllm.server", types.SimpleNamespace(run=fake_run))
    monkeypatch.setenv("FERRYLLM_TEST_KEY", "k")
    assert cli.main(["serve", "-c", config_file(GOOD), "--listen", "[::1]:4000",
                     "--workers", "3"]) == 0
    assert seen == {"listen": "[::1]:4000", "workers": 3}


def test_serve_demo_passes_listen(monkeypatch):
    seen = {}

    def fake_run_demo(*, listen):
        seen["listen"] = listen
        return 0

    monkeypatch.setitem(sys.modules, "ferryllm.server",
                        types.SimpleNamespace(run_demo=fake_run_demo))
    assert cli.main(["serve", "--demo", "--listen", "127.0.0.1:3999"]) == 0
    assert cli.main(["serve", "--demo"]) == 0
    assert seen == {"listen": None}  # the server's demo default applies


def test_serve_reports_bind_errors_as_one_line(config_file, monkeypatch, capsys):
    def fake_run(config, *, workers):
        raise OSError(errno.EADDRINUSE, "Address already in use")

    monkeypatch.setitem(sys.modules, "ferryllm.server", types.SimpleNamespace(run=fake_run))
    monkeypatch.setenv("FERRYLLM_TEST_KEY", "k")
    assert cli.main(["serve", "-c", config_file(GOOD)]) == 1
    assert capsys.readouterr().err == (
        "error: cannot listen on 0.0.0.0:3000: Address already in use\n")
