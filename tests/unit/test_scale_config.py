"""`[shared_state]` and `[[auth.clients]]`: parsed, validated (every problem names its key, no
secret in a message), and nothing about Redis imported without the section."""
from __future__ import annotations

import subprocess
import sys

from ferryllm.config import ClientConfig, SharedStateConfig
from tests.unit.test_config import MINIMAL, one_problem, parse, problems

SHARED = '[shared_state]\nurl = "redis://127.0.0.1:6379/0"\n'


def test_shared_state_defaults_and_absent():
    assert parse(MINIMAL).shared_state is None
    s = parse(SHARED + MINIMAL).shared_state
    assert s == SharedStateConfig(url="redis://127.0.0.1:6379/0")
    assert (s.key_prefix, s.timeout_ms, s.on_failure, s.lease_ttl_secs) == ("ferryllm", 50, "local",
                                                                            30)


def test_shared_state_url_from_env_and_its_password_never_shown():
    doc = '[shared_state]\nurl_env = "R"\non_failure = "reject"\ntimeout_ms = 20\n' + MINIMAL
    s = parse(doc, environ={"R": "redis://:hunter2@10.0.0.5:6380/1"}).shared_state
    assert s.url.endswith("6380/1") and s.on_failure == "reject" and s.timeout_ms == 20
    assert "hunter2" not in repr(s)
    bad = one_problem(doc, environ={"R": "http://:hunter2@x"})
    assert bad.startswith("shared_state.url_env: environment variable R:") and "hunter2" not in bad
    assert one_problem(doc) == "shared_state.url_env: environment variable R is not set"


def test_shared_state_problems_name_their_keys():
    assert one_problem("[shared_state]\n" + MINIMAL) == (
        "shared_state: set exactly one of url, url_env")
    found = problems(SHARED + 'on_failure = "ignore"\ntimeout_ms = 0\nlease_ttl_secs = 0.5\n'
                     'key_prefix = "a b"\n' + MINIMAL)
    assert [p.split(":")[0] for p in found] == [
        "shared_state.on_failure", "shared_state.timeout_ms", "shared_state.key_prefix",
        "shared_state.lease_ttl_secs"]


def test_shared_state_unknown_key_is_reported():
    cfg = parse(SHARED + "lease_ttl = 5\n" + MINIMAL)
    assert any(w.startswith("shared_state.lease_ttl: unknown key") for w in cfg.warnings)


CLIENTS = """[auth]
enabled = true
[[auth.clients]]
name = "team-a"
api_key_env = "TEAM_A"
rate_limit_per_minute = 60
tokens_per_minute = 10000
max_concurrent_requests = 4
daily_token_budget = 1000000
[[auth.clients]]
name = "ci"
api_key_file = "ci.key"
"""


def test_named_clients(tmp_path):
    (tmp_path / "ci.key").write_text("ci-secret\n")
    doc = tmp_path / "f.toml"
    doc.write_text(CLIENTS + MINIMAL)
    from ferryllm.config import load_config
    cfg = load_config(doc, environ={"TEAM_A": " team-secret "})
    assert cfg.auth.clients == (
        ClientConfig("team-a", "team-secret", 60, 10000, 4, 1000000), ClientConfig("ci", "ci-secret"))
    assert "secret" not in repr(cfg.auth)
    assert cfg.auth.keys == ()  # named clients alone are enough to enable auth


def test_named_client_problems():
    doc = CLIENTS.replace('api_key_file = "ci.key"', 'api_key_env = "TEAM_A"')
    assert one_problem(doc + MINIMAL, environ={"TEAM_A": "k"}) == (
        "auth.clients[1]: its key is already another client's key")
    bad = CLIENTS.replace('name = "ci"', 'name = "c i"\napi_key_env = "X"')
    found = problems(bad + MINIMAL, environ={"TEAM_A": "k"})
    assert found[0].startswith("auth.clients[1].name: expected 1-64 letters")
    assert found[1] == "auth.clients[1]: set exactly one of api_key_env, api_key_file"
    assert one_problem("[auth]\nenabled = true\n[[auth.clients]]\nname = \"x\"\n"
                       "api_key_env = \"K\"\ndaily_token_budget = -1\n" + MINIMAL,
                       environ={"K": "k"}).startswith("auth.clients[0].daily_token_budget:")


def test_clients_are_not_resolved_with_auth_off():
    cfg = parse(CLIENTS.replace("enabled = true", "enabled = false") + MINIMAL)
    assert cfg.auth.clients == ()


def test_without_the_section_nothing_about_redis_is_imported():
    code = ("import sys\nfrom tests.conftest import make_config\n"
            "from ferryllm.server import build_app\n"
            "build_app(make_config({'a': ('openai', 'http://127.0.0.1:9')}))\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('redis', 'hiredis') "
            "or m == 'ferryllm.shared_state'], 'redis imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
