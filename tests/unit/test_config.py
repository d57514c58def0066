"""Config loading and validation: defaults, every problem named by its key, secrets, examples."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ferryllm import protocols

from ferryllm.config import (
    AuthConfig, Config, ConfigError, LoggingConfig, MetricsConfig, PromptCacheConfig,
    ServerConfig, check_listen, load_config, normalise_base_url, parse_config,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "config"
EXAMPLE_ENV = {"CODX_API_KEY": "k1", "OPENAI_API_KEY": "k2", "ANTHROPIC_API_KEY": "k3",
               "OPENAI_API_KEY_2": "k4", "OPENAI_API_KEY_EU": "k5"}

MINIMAL = """
[[providers]]
name = "a"
type = "openai"
base_url = "https://api.example.com"
api_key = "sk-a"

[[routes]]
match = "*"
provider = "a"
"""


def parse(text: str, *, strict: bool = False, environ: dict[str, str] | None = None,
          source: str | None = None) -> Config:
    return parse_config(tomllib.loads(text), strict=strict, environ=environ or {}, source=source)


def problems(text: str, **kw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, **kw)
    return info.value.problems


def one_problem(text: str, **kw) -> str:
    found = problems(text, **kw)
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------- defaults


def test_minimal_config_gets_every_default():
    cfg = parse(MINIMAL)
    assert cfg.server == ServerConfig()
    assert cfg.server.listen == "0.0.0.0:3000"
    assert cfg.server.request_timeout_secs == 120
    assert cfg.server.body_limit_mb == 32
    assert cfg.server.retry_attempts == 0 and cfg.server.retry_backoff_ms == 100
    assert cfg.server.circuit_breaker_cooldown_secs == 30
    assert cfg.server.reasoning_policy == "fill_missing"
    assert cfg.server.shutdown_grace_secs == 10
    assert cfg.server.idle_timeout == 120  # stream_idle_timeout_secs defaults to the request's
    assert cfg.server.max_concurrent_requests == 4096 and cfg.server.rate_limit_per_minute is None
    assert cfg.logging == LoggingConfig(level="info", format="text")
    assert cfg.metrics == MetricsConfig(enabled=True)
    assert cfg.auth == AuthConfig()
    assert cfg.prompt_cache == PromptCacheConfig()
    assert cfg.prompt_cache.strip_system_prefixes == ("x-anthropic-billing-header:",)
    assert cfg.prompt_cache.prompt_cache_key is True
    (p,) = cfg.providers
    assert (p.name, p.type, p.base_url, p.api_key) == ("a", "openai", "https://api.example.com",
                                                       "sk-a")
    assert p.headers == () and p.max_tokens_cap is None and p.timeout_secs is None
    assert not p.max_completion_tokens and not p.reasoning_history and p.max_connections == 1024
    (r,) = cfg.routes
    assert (r.match, r.match_type, r.provider, r.rewrite_model, r.fallback_providers) == (
        "*", "prefix", "a", None, ())
    assert cfg.warnings == ()


def test_every_key_is_read():
    cfg = parse("""
[server]
listen = "127.0.0.1:8080"
request_timeout_secs = 30.5
body_limit_mb = 4
max_concurrent_requests = 10
rate_limit_per_minute = 600
retry_attempts = 2
retry_backoff_ms = 50
retry_backoff_max_ms = 2000
circuit_breaker_failures = 5
circuit_breaker_cooldown_secs = 15
default_reasoning_effort = "medium"
max_reasoning_effort = "high"
reasoning_policy = "cap"
stream_idle_timeout_secs = 20
shutdown_grace_secs = 0
[logging]
level = "DEBUG"
format = "json"
[metrics]
enabled = false
[auth]
enabled = true
api_keys_env = "KEYS"
per_key_rate_limit_per_minute = 60
per_key_max_concurrent_requests = 0
[prompt_cache]
strip_system_prefixes = ["a:", "b:"]
prompt_cache_key = false
[[providers]]
name = "a"
type = "anthropic"
base_url = "https://api.anthropic.com/v1/"
api_key_env = "A_KEY"
headers = { "x-team" = "core" }
max_tokens_cap = 8192
max_completion_tokens = true
reasoning_history = true
timeout_secs = 300
max_connections = 64
[[providers]]
name = "b"
type = "openai"
base_url = "http://localhost:8000"
api_key = "none"
[[routes]]
match = "claude-3"
match_type = "exact"
provider = "a"
rewrite_model = "claude-3-opus"
fallback_providers = ["b"]
""", environ={"KEYS": "k1, k2,,", "A_KEY": " sk-ant \n"})
    s = cfg.server
    assert s.listen == "127.0.0.1:8080" and s.host_port == ("127.0.0.1", 8080)
    assert s.request_timeout_secs == 30.5 and isinstance(s.body_limit_mb, float)
    assert (s.max_concurrent_requests, s.rate_limit_per_minute, s.retry_attempts) == (10, 600, 2)
    assert (s.retry_backoff_ms, s.retry_backoff_max_ms, s.circuit_breaker_failures) == (50, 2000, 5)
    assert (s.default_reasoning_effort, s.max_reasoning_effort) == ("medium", "high")
    assert s.reasoning_policy == "cap" and s.idle_timeout == 20 and s.shutdown_grace_secs == 0
    assert cfg.logging == LoggingConfig(level="debug", format="json")
    assert cfg.metrics.enabled is False
    assert cfg.auth.keys == ("k1", "k2")
    assert cfg.auth.per_key_rate_limit_per_minute == 60
    assert cfg.auth.per_key_max_concurrent_requests is None  # 0 = off
    assert cfg.prompt_cache == PromptCacheConfig(("a:", "b:"), False)
    a, b = cfg.providers
    assert a.base_url == "https://api.anthropic.com" and a.api_key == "sk-ant"
    assert a.headers == (("x-team", "core"),) and a.max_tokens_cap == 8192
    assert a.max_completion_tokens and a.reasoning_history and a.timeout_secs == 300
    assert a.max_connections == 64 and b.api_key == "none"
    assert cfg.routes[0].fallback_providers == ("b",)
    assert cfg.provider("b") is b


def test_secrets_never_in_repr():
    cfg = parse(MINIMAL)
    assert "sk-a" not in repr(cfg)


# ---------------------------------------------------------------- every problem names its key

SERVER_CASES = [
    ('listen = "abc"', 'server.listen: expected HOST:PORT, got "abc"'),
    ('listen = "host:0"', "server.listen: port must be 1-65535, got 0"),
    ('listen = "host:70000"', "server.listen: port must be 1-65535, got 70000"),
    ('listen = ":3000"', "server.listen: expected HOST:PORT"),
    ('listen = "::1:3000"', "server.listen: an IPv6 host needs brackets"),
    ('listen = "[::zz]:3000"', "server.listen: invalid IPv6 address"),
    ("listen = 3000", "server.listen: expected HOST:PORT, got 3000"),
    ('request_timeout_secs = "ten"',
     'server.request_timeout_secs: expected a positive number, got "ten"'),
    ("request_timeout_secs = 0", "server.request_timeout_secs: expected a positive number, got 0"),
    ("request_timeout_secs = -1", "server.request_timeout_secs: expected a positive number"),
    ("request_timeout_secs = inf", "server.request_timeout_secs: expected a positive number"),
    ("body_limit_mb = true", "server.body_limit_mb: expected a positive number, got true"),
    ("max_concurrent_requests = true", "server.max_concurrent_requests: expected an integer"),
    ("max_concurrent_requests = 1.5", "server.max_concurrent_requests: expected an integer"),
    ("rate_limit_per_minute = -5", "server.rate_limit_per_minute: expected an integer >= 0"),
    ("retry_attempts = false", "server.retry_attempts: expected an integer >= 0, got false"),
    ("retry_attempts = -1", "server.retry_attempts: expected an integer >= 0, got -1"),
    ('retry_backoff_ms = "100"', "server.retry_backoff_ms: expected an integer >= 0"),
    ("retry_backoff_ms = 500\nretry_backoff_max_ms = 100",
     "server.retry_backoff_max_ms: must be >= server.retry_backoff_ms"),
    ('circuit_breaker_cooldown_secs = "30s"', "server.circuit_breaker_cooldown_secs: expected a"),
    ('reasoning_policy = "always"',
     'server.reasoning_policy: expected one of preserve, fill_missing, cap, force; got "always"'),
    ('default_reasoning_effort = "extreme"', "server.default_reasoning_effort: expected one of"),
    ("max_reasoning_effort = 3", "server.max_reasoning_effort: expected one of"),
    ("stream_idle_timeout_secs = 0", "server.stream_idle_timeout_secs: expected a positive"),
    ("shutdown_grace_secs = -1", "server.shutdown_grace_secs: expected a number >= 0"),
]


@pytest.mark.parametrize(("line", "expected"), SERVER_CASES)
def test_server_problem_names_its_key(line, expected):
    assert one_problem(f"[server]\n{line}\n{MINIMAL}").startswith(expected)


@pytest.mark.parametrize("listen", ["0.0.0.0:3000", "localhost:1", "[::1]:3000", "[::]:65535",
                                    "gateway.internal:8080"])
def test_valid_listen(listen):
    assert parse(f'[server]\nlisten = "{listen}"\n{MINIMAL}').server.listen == listen
    assert check_listen(listen) is None


SECTION_CASES = [
    ('[logging]\nlevel = "verbose"', "logging.level: expected one of debug, info, warning, error"),
    ('[logging]\nformat = "xml"', 'logging.format: expected one of text, json; got "xml"'),
    ('[metrics]\nenabled = "yes"', 'metrics.enabled: expected true or false, got "yes"'),
    ("[auth]\nenabled = 1", "auth.enabled: expected true or false, got 1"),
    ("[auth]\napi_keys_env = 5", "auth.api_keys_env: expected a string, got 5"),
    ("[auth]\nper_key_rate_limit_per_minute = 1.0", "auth.per_key_rate_limit_per_minute:"),
    ('[prompt_cache]\nstrip_system_prefixes = "x:"',
     "prompt_cache.strip_system_prefixes: expected an array of strings"),
    ('[prompt_cache]\nstrip_system_prefixes = [""]', "prompt_cache.strip_system_prefixes: an"),
    ("[prompt_cache]\nprompt_cache_key = 1", "prompt_cache.prompt_cache_key: expected true"),
    ('server = "x"', 'server: expected a table ([server]), got "x"'),
]


@pytest.mark.parametrize(("text", "expected"), SECTION_CASES)
def test_section_problem_names_its_key(text, expected):
    assert one_problem(f"{text}\n{MINIMAL}").startswith(expected)


def provider(extra: str = "", *, name: str = "a", type_: str = "openai",
             base_url: str = "https://x", key: str = 'api_key = "k"') -> str:
    return (f'[[providers]]\nname = "{name}"\ntype = "{type_}"\nbase_url = "{base_url}"\n'
            f"{key}\n{extra}\n")


TYPES = ", ".join(protocols.provider_types())  # every registered protocol with an adapter
ROUTE_A = '[[routes]]\nmatch = "*"\nprovider = "a"\n'

PROVIDER_CASES = [
    (provider(base_url="ftp://x"), 'providers[0].base_url: must be an http(s) URL, got "ftp://x"'),
    (provider(base_url="x.com"), "providers[0].base_url: must be an http(s) URL"),
    (provider(base_url="https://"), "providers[0].base_url: must be an http(s) URL"),
    (provider(base_url="https://x:99999"), "providers[0].base_url: must be an http(s) URL"),
    (provider(base_url="https://x?a=1"), "providers[0].base_url: must not have a query"),
    (provider(type_="bogus"),
     f'providers[0].type: expected one of {TYPES}'),
    (provider(type_="cohere"),
     f'providers[0].type: expected one of {TYPES}; got "cohere"'),
    (provider(name=""), "providers[0].name: must not be empty"),
    (provider(key=""), "providers[0]: no key source is set; set exactly one of api_key, "
                       "api_key_env, api_key_file"),
    (provider(key='api_key = "k"\napi_key_env = "K"'),
     "providers[0]: api_key and api_key_env are both set"),
    (provider(key='api_key_env = "CODX_API_KEY"'),
     "providers[0].api_key_env: environment variable CODX_API_KEY is not set"),
    (provider(key='api_key = ""'), "providers[0].api_key: must not be empty"),
    (provider(key='api_key = "a\\nb"'), "providers[0].api_key: contains a line break"),
    (provider(key="api_key = 12345"), "providers[0].api_key: expected a string, got an integer"),
    (provider("max_tokens_cap = 0"), "providers[0].max_tokens_cap: expected a positive integer"),
    (provider("max_connections = true"), "providers[0].max_connections: expected a positive"),
    (provider("timeout_secs = 'x'"), "providers[0].timeout_secs: expected a positive number"),
    (provider("max_completion_tokens = 1"), "providers[0].max_completion_tokens: expected true"),
    (provider("reasoning_history = 'yes'"), "providers[0].reasoning_history: expected true"),
    (provider('headers = ["a"]'), "providers[0].headers: expected a table"),
    (provider("headers = { x = 1 }"), "providers[0].headers: 'x': expected a string value"),
    (provider('headers = { "bad name" = "v" }'), "providers[0].headers: 'bad name' is not a"),
    (provider('headers = { x = "a\\r\\nEvil: 1" }'), "providers[0].headers: 'x': value contains"),
    ('[[providers]]\nname = "a"\napi_key = "k"\n', "providers[0].type: required"),
]


@pytest.mark.parametrize(("text", "expected"), PROVIDER_CASES)
def test_provider_problem_names_its_key(text, expected):
    found = problems(text + ROUTE_A)
    assert any(p.startswith(expected) for p in found), found


def test_missing_provider_fields_all_reported():
    found = problems('[[providers]]\napi_key = "k"\n' + ROUTE_A)
    assert "providers[0].name: required" in found
    assert "providers[0].type: required" in found
    assert "providers[0].base_url: required" in found


def test_duplicate_provider_name():
    found = problems(provider() + provider() + ROUTE_A)
    assert found == ['providers[1].name: duplicate provider name "a"']


def test_three_key_sources():
    found = problems(provider(key='api_key = "k"\napi_key_env = "K"\napi_key_file = "f"')
                     + ROUTE_A)
    assert found[0].startswith("providers[0]: api_key and api_key_env and api_key_file are all set")


def route(extra: str, *, match: str = "m", provider_: str = "a") -> str:
    return f'[[routes]]\nmatch = "{match}"\nprovider = "{provider_}"\n{extra}\n'


TWO = provider(name="a") + provider(name="b")

ROUTE_CASES = [
    (route("", provider_="x"), 'routes[0].provider: unknown provider "x" (configured: a, b)'),
    (route('fallback_providers = ["b", "x"]'),
     'routes[0].fallback_providers[1]: unknown provider "x" (configured: a, b)'),
    (route('fallback_providers = ["a"]'),
     'routes[0].fallback_providers[0]: "a" is the route\'s own provider'),
    (route('fallback_providers = ["b", "b"]'),
     'routes[0].fallback_providers[1]: "b" is listed twice'),
    (route('fallback_providers = "b"'), "routes[0].fallback_providers: expected an array"),
    (route('match_type = "regex"'), 'routes[0].match_type: expected one of prefix, exact; got'),
    (route("", match=""), "routes[0].match: must not be empty"),
    (route('rewrite_model = ""'), "routes[0].rewrite_model: must not be empty"),
    ('[[routes]]\nmatch = "m"\n', "routes[0].provider: required"),
    ('[[routes]]\nprovider = "a"\n', "routes[0].match: required"),
]


@pytest.mark.parametrize(("text", "expected"), ROUTE_CASES)
def test_route_problem_names_its_key(text, expected):
    assert expected in problems(TWO + text)[0]


def test_arrays_must_be_arrays_of_tables():
    assert problems("providers = 3\nroutes = [1]\n") == [
        "providers: expected an array of tables ([[providers]]), got an integer",
        "routes[0]: expected a table, got 1"]


def test_at_least_one_provider_and_route():
    assert problems("") == ["providers: at least one [[providers]] entry is required",
                            "routes: at least one [[routes]] entry is required"]
    assert one_problem(provider()) == "routes: at least one [[routes]] entry is required"


def test_route_checked_against_a_broken_provider_without_cascade():
    # provider a has a bad base_url: only that is reported, not "unknown provider a"
    found = problems(provider(base_url="nope") + ROUTE_A)
    assert found == ['providers[0].base_url: must be an http(s) URL, got "nope"']


def test_every_problem_reported_together():
    found = problems("""
[server]
listen = "abc"
request_timeout_secs = "ten"
[logging]
format = "xml"
[[providers]]
name = "a"
type = "openai"
base_url = "ftp://x"
api_key_env = "MISSING"
[[routes]]
match = "*"
provider = "x"
""")
    assert [p.split(":")[0] for p in found] == [
        "server.listen", "server.request_timeout_secs", "logging.format", "providers[0].base_url",
        "providers[0].api_key_env", "routes[0].provider"]


def test_config_error_message_joins_problems_with_source():
    with pytest.raises(ConfigError) as info:
        parse("", source="f.toml")
    assert str(info.value).startswith("f.toml: providers: at least one")
    assert info.value.source == "f.toml"


# ---------------------------------------------------------------- unknown keys


def test_unknown_key_is_a_warning_with_suggestion():
    cfg = parse(f'[server]\nlistne = "127.0.0.1:1"\n{MINIMAL}')
    assert cfg.warnings == ('server.listne: unknown key (did you mean "listen"?)',)
    assert cfg.server.listen == "0.0.0.0:3000"


def test_unknown_keys_everywhere():
    cfg = parse(f"""
sever = {{}}
listen = "x"
zzz = 1
[logging]
lvl = "info"
{provider("bse_url = 'x'")}
[[routes]]
match = "*"
provider = "a"
rewrite = "m"
""")
    assert cfg.warnings == (
        'sever: unknown section (did you mean "server"?)',
        'listen: unknown key (did you mean "server.listen"?)',
        "zzz: unknown key",
        'logging.lvl: unknown key (did you mean "level"?)',
        'providers[0].bse_url: unknown key (did you mean "base_url"?)',
        'routes[0].rewrite: unknown key (did you mean "rewrite_model"?)',
    )


def test_strict_makes_unknown_keys_errors():
    found = problems(f'[server]\nlistne = "x"\n{MINIMAL}', strict=True)
    assert found == ['server.listne: unknown key (did you mean "listen"?)']


def test_warnings_travel_with_errors():
    with pytest.raises(ConfigError) as info:
        parse('[[providers]]\nname = "a"\ntype = "openai"\nbase_ur = "https://x"\napi_key = "k"\n'
              + ROUTE_A)
    assert info.value.problems == ["providers[0].base_url: required"]
    assert info.value.warnings == ('providers[0].base_ur: unknown key (did you mean "base_url"?)',)


def test_reference_prompt_cache_keys_are_accepted():
    cfg = parse(f"""
[prompt_cache]
strip_system_line_prefixes = ["x-billing:"]
cache_tools = true
openai_prompt_cache_key = "ferryllm"
{MINIMAL}""", strict=True)
    assert cfg.prompt_cache.strip_system_prefixes == ("x-billing:",)
    assert len(cfg.warnings) == 2
    assert all("compatibility with the Rust ferryllm" in w for w in cfg.warnings)


def test_shadowed_route_and_glob_pattern_warn():
    cfg = parse(provider() + route("", match="claude-*") + route("", match="claude-*"))
    assert cfg.warnings == (
        'routes[0].match: "*" is only special on its own; "claude-*" is matched literally',
        'routes[1]: same match as routes[0] ("claude-*"); this route is never used',
        'routes[1].match: "*" is only special on its own; "claude-*" is matched literally',
    )


# ---------------------------------------------------------------- secrets


def test_api_key_from_env_is_stripped_and_never_echoed():
    cfg = parse(provider(key='api_key_env = "MY_KEY"') + ROUTE_A, environ={"MY_KEY": " s3cr3t\n"})
    assert cfg.providers[0].api_key == "s3cr3t"
    found = problems(provider(key='api_key_env = "MY_KEY"') + ROUTE_A,
                     environ={"MY_KEY": "s3cr\nt3t"})
    assert found == ["providers[0].api_key_env: environment variable MY_KEY contains a line break "
                     "or control character"]
    assert one_problem(provider(key='api_key_env = "MY_KEY"') + ROUTE_A,
                       environ={"MY_KEY": "  "}) == (
        "providers[0].api_key_env: environment variable MY_KEY is empty")


def test_environ_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv("FERRYLLM_TEST_KEY", "from-os")
    cfg = parse_config(tomllib.loads(provider(key='api_key_env = "FERRYLLM_TEST_KEY"') + ROUTE_A))
    assert cfg.providers[0].api_key == "from-os"


def test_api_key_file(tmp_path):
    (tmp_path / "key.txt").write_text("sk-file\n")
    doc = tmp_path / "c.toml"
    doc.write_text(provider(key='api_key_file = "key.txt"') + ROUTE_A)  # relative to the config
    assert load_config(doc, environ={}).providers[0].api_key == "sk-file"
    doc.write_text(provider(key=f'api_key_file = "{tmp_path / "key.txt"}"') + ROUTE_A)
    assert load_config(doc, environ={}).providers[0].api_key == "sk-file"


def test_api_key_file_problems(tmp_path):
    doc = tmp_path / "c.toml"
    doc.write_text(provider(key='api_key_file = "missing.txt"') + ROUTE_A)
    with pytest.raises(ConfigError) as info:
        load_config(doc, environ={})
    (problem,) = info.value.problems
    assert problem.startswith("providers[0].api_key_file: cannot read ")
    assert "missing.txt" in problem and "No such file" in problem
    (tmp_path / "two.txt").write_text("sk-one\nsk-two\n")
    doc.write_text(provider(key='api_key_file = "two.txt"') + ROUTE_A)
    with pytest.raises(ConfigError) as info:
        load_config(doc, environ={})
    assert info.value.problems == ["providers[0].api_key_file: the file must hold one key on one "
                                   "line"]
    assert "sk-one" not in str(info.value)
    (tmp_path / "empty.txt").write_text("\n")
    doc.write_text(provider(key='api_key_file = "empty.txt"') + ROUTE_A)
    with pytest.raises(ConfigError, match="api_key_file: the file is empty"):
        load_config(doc, environ={})


def test_secret_values_never_in_problems():
    found = problems(provider(key='api_key = "sk-secret"\napi_key_env = "K"') + ROUTE_A,
                     environ={"K": "sk-other"})
    assert not any("sk-" in p for p in found)


# ---------------------------------------------------------------- client auth keys


def test_auth_keys_from_env():
    cfg = parse(f'[auth]\nenabled = true\napi_keys_env = "CLIENT_KEYS"\n{MINIMAL}',
                environ={"CLIENT_KEYS": " a ,b,, c ,a"})
    assert cfg.auth.enabled and cfg.auth.keys == ("a", "b", "c")


def test_auth_keys_from_file(tmp_path):
    (tmp_path / "keys").write_text("# team keys\nk1\n\n  k2  \n# old: k0\n")
    doc = tmp_path / "c.toml"
    doc.write_text(f'[auth]\nenabled = true\napi_keys_file = "keys"\n{MINIMAL}')
    assert load_config(doc, environ={}).auth.keys == ("k1", "k2")


def test_auth_keys_from_env_and_file_combined(tmp_path):
    (tmp_path / "keys").write_text("k2\n")
    doc = tmp_path / "c.toml"
    doc.write_text(f'[auth]\nenabled = true\napi_keys_env = "E"\napi_keys_file = "keys"\n{MINIMAL}')
    assert load_config(doc, environ={"E": "k1"}).auth.keys == ("k1", "k2")


def test_auth_enabled_without_keys_names_api_keys_env():
    assert one_problem(f"[auth]\nenabled = true\n{MINIMAL}").startswith(
        "auth.api_keys_env: auth is enabled but no client keys were found")
    assert one_problem(f'[auth]\nenabled = true\napi_keys_env = "E"\n{MINIMAL}') == (
        "auth.api_keys_env: environment variable E is not set")
    assert one_problem(f'[auth]\nenabled = true\napi_keys_env = "E"\n{MINIMAL}',
                       environ={"E": " , "}).startswith("auth.api_keys_env: auth is enabled but")


def test_auth_disabled_does_not_resolve_keys():
    cfg = parse(f'[auth]\nenabled = false\napi_keys_env = "UNSET"\n{MINIMAL}')
    assert cfg.auth.keys == () and cfg.auth.api_keys_env == "UNSET"


# ---------------------------------------------------------------- base_url


@pytest.mark.parametrize("url", ["https://x", "https://x/", "https://x/v1", "https://x/v1/",
                                 " https://x/v1// "])
def test_base_url_normalisation(url):
    assert normalise_base_url(url) == "https://x"
    assert parse(provider(base_url=url.strip()) + ROUTE_A).providers[0].base_url == "https://x"


def test_base_url_keeps_a_path():
    assert normalise_base_url("https://openrouter.ai/api/v1") == "https://openrouter.ai/api"
    assert normalise_base_url("http://127.0.0.1:8081") == "http://127.0.0.1:8081"


def test_base_url_with_credentials_is_not_echoed():
    found = problems(provider(base_url="ftp://user:pw@host") + ROUTE_A)
    assert found == ["providers[0].base_url: must be an http(s) URL"]


# ---------------------------------------------------------------- files


def test_load_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert info.value.problems == ["file not found"]
    assert str(tmp_path / "nope.toml") in str(info.value)


def test_load_directory(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert len(info.value.problems) == 1


def test_load_toml_syntax_error_has_line_and_column(tmp_path):
    doc = tmp_path / "c.toml"
    doc.write_text('[server]\nlisten = "x\n')
    with pytest.raises(ConfigError) as info:
        load_config(doc)
    (problem,) = info.value.problems
    assert problem.startswith("invalid TOML: ") and "line 2" in problem and "column" in problem


def test_load_not_utf8(tmp_path):
    doc = tmp_path / "c.toml"
    doc.write_bytes(b'[server]\nlisten = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(doc)


def test_load_sets_source(tmp_path):
    doc = tmp_path / "c.toml"
    doc.write_text(MINIMAL)
    assert load_config(str(doc)).source == str(doc)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_example_configs_load_strictly(path):
    cfg = load_config(path, strict=True, environ=EXAMPLE_ENV)
    assert cfg.providers and cfg.routes and cfg.warnings == ()


def test_examples_exist():
    names = {p.name for p in EXAMPLES.glob("*.toml")}
    assert {"openai-compatible-claude-code.toml", "anthropic-passthrough.toml",
            "mock-loadtest.toml", "codexapis.toml"} <= names


def test_example_without_its_env_var_names_it():
    with pytest.raises(ConfigError) as info:
        load_config(EXAMPLES / "codexapis.toml", environ={})
    assert info.value.problems == [
        "providers[0].api_key_env: environment variable CODX_API_KEY is not set"]
