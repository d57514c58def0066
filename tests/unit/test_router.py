"""Router precedence, rewrite, fallbacks, and the no-match error."""
from __future__ import annotations

import tomllib

import pytest

from ferryllm.config import parse_config
from ferryllm.errors import ModelNotFound, NotFound
from ferryllm.router import CACHE_SIZE, Route, Router

PROVIDERS = "".join(
    f'[[providers]]\nname = "{n}"\ntype = "openai"\nbase_url = "https://{n}.example"\n'
    f'api_key = "k"\n' for n in ("a", "b", "c"))


def router(*routes: str) -> Router:
    doc = PROVIDERS + "".join(f"[[routes]]\n{r}\n" for r in routes)
    return Router(parse_config(tomllib.loads(doc), environ={}))


def test_exact_beats_any_prefix():
    r = router('match = "claude-"\nprovider = "a"',
               'match = "claude-opus"\nprovider = "b"',
               'match = "claude-opus-4"\nmatch_type = "exact"\nprovider = "c"')
    assert r.resolve("claude-opus-4").provider.name == "c"
    assert r.resolve("claude-opus-4-1").provider.name == "b"
    assert r.resolve("claude-sonnet").provider.name == "a"


def test_exact_does_not_match_a_longer_name():
    r = router('match = "gpt-4"\nmatch_type = "exact"\nprovider = "a"',
               'match = "*"\nprovider = "b"')
    assert r.resolve("gpt-4").provider.name == "a"
    assert r.resolve("gpt-4o").provider.name == "b"


def test_longer_prefix_beats_shorter_whatever_the_order():
    r = router('match = "claude-"\nprovider = "a"', 'match = "claude-haiku-"\nprovider = "b"')
    assert r.resolve("claude-haiku-4-5").provider.name == "b"
    assert r.resolve("claude-opus-4").provider.name == "a"


def test_ties_keep_config_order():
    r = router('match = "gpt-"\nprovider = "b"', 'match = "gpt-"\nprovider = "a"',
               'match = "o1"\nmatch_type = "exact"\nprovider = "c"',
               'match = "o1"\nmatch_type = "exact"\nprovider = "a"')
    assert r.resolve("gpt-4o").provider.name == "b"
    assert r.resolve("o1").provider.name == "c"


def test_catch_all_is_lowest():
    r = router('match = "*"\nprovider = "a"', 'match = "g"\nprovider = "b"',
               'match = "x"\nmatch_type = "exact"\nprovider = "c"')
    assert r.resolve("gemini").provider.name == "b"
    assert r.resolve("x").provider.name == "c"
    assert r.resolve("anything").provider.name == "a"
    assert r.resolve("anything").pattern == "*"


def test_rewrite_model_keeps_display_model():
    r = router('match = "claude-"\nprovider = "a"\nrewrite_model = "gpt-4.1"',
               'match = "gpt-"\nprovider = "b"')
    route = r.resolve("claude-sonnet-4")
    assert route == Route("claude-sonnet-4", "gpt-4.1", route.provider, (), "claude-", (),
                          route.config)
    passthrough = r.resolve("gpt-4o")
    assert (passthrough.display_model, passthrough.backend_model) == ("gpt-4o", "gpt-4o")


def test_fallbacks_resolved_in_order():
    r = router('match = "*"\nprovider = "b"\nfallback_providers = ["c", "a"]\nrewrite_model = "m"')
    route = r.resolve("x")
    assert route.provider.name == "b"
    assert [p.name for p in route.fallbacks] == ["c", "a"]
    assert [p.name for p in route.providers] == ["b", "c", "a"]
    assert route.fallbacks[0].base_url == "https://c.example"
    assert route.backend_model == "m"  # the same backend model goes to every fallback


def test_no_match_is_a_clear_404():
    r = router('match = "cc-gpt55"\nmatch_type = "exact"\nprovider = "a"',
               'match = "claude-"\nprovider = "a"')
    with pytest.raises(ModelNotFound) as info:
        r.resolve("gpt-4o")
    err = info.value
    assert isinstance(err, NotFound)
    assert err.status == 404 and err.kind == "not_found_error" and err.param == "model"
    assert str(err) == ("model 'gpt-4o' matches no route; configured patterns: "
                        "cc-gpt55 (exact), claude- (prefix)")


def test_no_match_truncates_the_model_name():
    r = router('match = "claude-"\nprovider = "a"')
    with pytest.raises(ModelNotFound) as info:
        r.resolve("z" * 10_000)
    message = str(info.value)
    assert "z" * 200 + "..." in message and "z" * 201 not in message
    assert len(message) < 300


def test_resolutions_are_cached_and_bounded():
    r = router('match = "*"\nprovider = "a"')
    assert r.resolve("m") is r.resolve("m")
    for i in range(CACHE_SIZE + 10):
        r.resolve(f"model-{i}")
    assert len(r._cache) == CACHE_SIZE
    assert "model-0" not in r._cache and f"model-{CACHE_SIZE + 9}" in r._cache


def test_misses_are_not_cached():
    r = router('match = "a"\nprovider = "a"')
    for _ in range(3):
        with pytest.raises(ModelNotFound):
            r.resolve("b")
    assert r._cache == {}


def test_models_lists_routes_in_config_order():
    r = router('match = "claude-"\nprovider = "a"\nrewrite_model = "gpt-4.1"',
               'match = "o1"\nmatch_type = "exact"\nprovider = "b"',
               'match = "*"\nprovider = "c"')
    assert r.models() == [("claude-", "prefix", "a", "gpt-4.1"), ("o1", "exact", "b", None),
                          ("*", "prefix", "c", None)]
