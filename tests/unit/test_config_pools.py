"""`[[providers]] keys` and `[[routes]] pool`: parsed into the config, every problem names its
key, no key value in a problem or a repr; the router keeps display and backend model apart."""
from __future__ import annotations

import pytest

from ferryllm.config import KeyConfig
from ferryllm.router import Router
from tests.unit.test_config import parse, problems, provider

POOL = 'keys = [{ api_key_env = "K1", weight = 3 }, { api_key = "sk-inline", name = "backup", ' \
       'rate_limit_per_minute = 10, max_concurrent_requests = 2 }, { api_key_file = "k.txt" }]'
ENV = {"K1": "sk-from-env"}


def test_key_pool_is_read_with_labels_and_limits(tmp_path):
    (tmp_path / "k.txt").write_text("sk-from-file\n")
    config = parse(provider(key=POOL) + '[[routes]]\nmatch = "*"\nprovider = "a"\n',
                   environ=ENV, source=str(tmp_path / "f.toml"))
    p = config.providers[0]
    assert p.api_key is None
    assert p.keys == (KeyConfig("0", "sk-from-env", 3.0),
                      KeyConfig("backup", "sk-inline", 1.0, 10, 2),
                      KeyConfig("2", "sk-from-file"))
    shown = repr(config)
    assert "sk-from" not in shown and "sk-inline" not in shown


KEY_CASES = [
    ('keys = []', "providers[0].keys: expected a non-empty array of tables"),
    ('keys = "K1"', "providers[0].keys: expected a non-empty array of tables"),
    ('keys = [1]', "providers[0].keys[0]: expected a table"),
    ('keys = [{ weight = 2 }]', "providers[0].keys[0]: no key source is set"),
    ('keys = [{ api_key = "a", api_key_env = "K1" }]',
     "providers[0].keys[0]: api_key and api_key_env are both set"),
    ('keys = [{ api_key_env = "NOPE" }]',
     "providers[0].keys[0].api_key_env: environment variable NOPE is not set"),
    ('keys = [{ api_key = "a", weight = 0 }]',
     "providers[0].keys[0].weight: expected a positive number"),
    ('keys = [{ api_key = "a", rate_limit_per_minute = -1 }]',
     "providers[0].keys[0].rate_limit_per_minute: expected an integer >= 0"),
    ('keys = [{ api_key = "a", max_concurrent_requests = 1.5 }]',
     "providers[0].keys[0].max_concurrent_requests: expected an integer >= 0"),
    ('keys = [{ api_key = "a", name = "x" }, { api_key = "b", name = "x" }]',
     'providers[0].keys[1].name: "x" is already the label of keys[0]'),
    ('keys = [{ api_key = "a" }, { api_key = "b", name = "0" }]',
     'providers[0].keys[1].name: "0" is already the label of keys[0]'),
    ('keys = [{ api_key_file = "/nonexistent/k" }]',
     'providers[0].keys[0].api_key_file: cannot read'),
]


@pytest.mark.parametrize(("keys", "expected"), KEY_CASES)
def test_key_pool_problem_names_its_key(keys, expected):
    found = problems(provider(key=keys) + '[[routes]]\nmatch = "*"\nprovider = "a"\n',
                     environ=ENV)
    assert any(p.startswith(expected) for p in found), found


def test_keys_and_a_single_key_together():
    found = problems(provider(key='api_key = "k"\nkeys = [{ api_key = "a" }]')
                     + '[[routes]]\nmatch = "*"\nprovider = "a"\n')
    assert found == ["providers[0].keys: give either keys or api_key, not both"]


def test_pool_key_values_never_in_problems():
    found = problems(provider(key='keys = [{ api_key = "sk-secret-1", weight = -1 }, '
                                  '{ api_key = "sk-secret-1\\n2" }]')
                     + '[[routes]]\nmatch = "*"\nprovider = "a"\n')
    assert found and not any("sk-secret" in p for p in found)


def test_unknown_key_in_a_pool_entry_is_a_warning_with_suggestion():
    config = parse(provider(key='keys = [{ api_key = "a", wieght = 2 }]')
                   + '[[routes]]\nmatch = "*"\nprovider = "a"\n')
    assert 'providers[0].keys[0].wieght: unknown key (did you mean "weight"?)' in config.warnings


THREE = provider(name="a") + provider(name="b") + provider(name="c")


def test_route_pool_is_read_and_routed():
    config = parse(THREE + '[[routes]]\nmatch = "claude-"\npool = ["a", "b"]\n'
                           'balance = "weighted"\nweights = [3, 1]\nrewrite_model = "gpt-x"\n'
                           'fallback_providers = ["c"]\n')
    rc = config.routes[0]
    assert (rc.pool, rc.balance, rc.weights, rc.provider) == (("a", "b"), "weighted", (3.0, 1.0),
                                                              "a")
    route = Router(config).resolve("claude-sonnet")
    assert (route.display_model, route.backend_model) == ("claude-sonnet", "gpt-x")
    assert [p.name for p in route.pool] == ["a", "b"]
    assert [p.name for p in route.providers] == ["a", "b", "c"]
    latency = parse(THREE + '[[routes]]\nmatch = "*"\npool = ["b", "c"]\nbalance = "latency"\n')
    assert latency.routes[0].balance == "latency" and latency.routes[0].weights == ()


POOL_CASES = [
    ('pool = ["a", "x"]', 'routes[0].pool[1]: unknown provider "x" (configured: a, b, c)'),
    ('pool = ["a", "a"]', 'routes[0].pool[1]: "a" is listed twice'),
    ('pool = []', "routes[0].pool: expected at least one provider name"),
    ('pool = "a"', "routes[0].pool: expected an array of strings"),
    ('pool = ["a"]\nprovider = "b"', "routes[0].pool: give either provider or pool, not both"),
    ('provider = "a"\nbalance = "latency"', 'routes[0].balance: only used with pool'),
    ('provider = "a"\nweights = [1]', 'routes[0].weights: only used with pool'),
    ('pool = ["a", "b"]\nbalance = "fastest"',
     "routes[0].balance: expected one of weighted, latency, least_busy"),
    ('pool = ["a", "b"]\nweights = [1]', "routes[0].weights: 1 weight(s) for a pool of 2"),
    ('pool = ["a", "b"]\nweights = [1, 0]', "routes[0].weights: expected a positive number"),
    ('pool = ["a", "b"]\nbalance = "least_busy"\nweights = [1, 2]',
     'routes[0].weights: only used with balance = "weighted"'),
    ('pool = ["a", "b"]\nfallback_providers = ["b"]',
     'routes[0].fallback_providers[0]: "b" is in the route\'s pool'),
    ('', "routes[0].provider: required (or pool)"),
]


@pytest.mark.parametrize(("extra", "expected"), POOL_CASES)
def test_route_pool_problem_names_its_key(extra, expected):
    found = problems(THREE + f'[[routes]]\nmatch = "m"\n{extra}\n')
    assert any(p.startswith(expected) for p in found), found
