"""Key pools and the provider-pool balancer, with an injected clock and random source."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from ferryllm.config import KeyConfig
from ferryllm.errors import RateLimited, UpstreamError
from ferryllm.pools import Balancer, KeyPool, ProviderStats, weighted_index


def pool(*keys: KeyConfig) -> KeyPool:
    return KeyPool(SimpleNamespace(name="p", keys=keys))


def keys(*weights: float) -> tuple[KeyConfig, ...]:
    return tuple(KeyConfig(str(i), f"sk-{i}", w) for i, w in enumerate(weights))


def test_weighted_index_splits_the_unit_interval_by_weight():
    assert [weighted_index([3, 1], r) for r in (0.0, 0.5, 0.74, 0.76, 0.999)] == [0, 0, 0, 1, 1]
    assert [weighted_index([1, 1, 2], r) for r in (0.2, 0.3, 0.6)] == [0, 1, 2]


def test_pick_is_a_weighted_choice_among_free_keys():
    p = pool(*keys(3, 1))
    counts = [0, 0]
    for i in range(100):  # an even sweep of the random source: shares follow the weights
        index = p.pick([0.0, 0.0], 0.0, i / 100)
        counts[index] += 1
        p.release(index)
    assert counts == [75, 25]


def test_pick_skips_cooling_and_out_keys():
    p = pool(*keys(1, 1, 1))
    assert p.pick([5.0, 0.0, 0.0], 0.0, 0.0) == 1  # key 0 cooling
    p.take_out(1)
    assert p.pick([5.0, 0.0, 0.0], 0.0, 0.0) == 2
    assert p.pick([0.0, 0.0, 0.0], 0.0, 0.99) == 2


def test_all_cooling_is_a_retryable_429_with_the_shortest_wait():
    p = pool(*keys(1, 1, 1))
    p.take_out(2)  # an out key has no wait to offer
    with pytest.raises(RateLimited) as e:
        p.pick([30.0, 7.5, 0.0], 0.0, 0.0)
    assert e.value.retry_after == 7.5 and e.value.retryable and e.value.pool_exhausted
    assert "provider 'p'" in str(e.value) and "sk-" not in str(e.value)


def test_all_out_is_a_502_naming_the_provider():
    p = pool(*keys(1, 1))
    p.take_out(0)
    p.take_out(1)
    with pytest.raises(UpstreamError) as e:
        p.pick([0.0, 0.0], 0.0, 0.0)
    assert e.value.status == 502 and not e.value.retryable and e.value.pool_exhausted
    assert "provider 'p'" in str(e.value)


def test_key_concurrency_cap_holds_until_release():
    p = pool(KeyConfig("a", "sk-a", max_concurrent_requests=1), KeyConfig("b", "sk-b"))
    assert p.pick([0.0, 0.0], 0.0, 0.0) == 0
    assert p.pick([0.0, 0.0], 0.0, 0.0) == 1  # key a is busy
    p.release(0)
    assert p.pick([0.0, 0.0], 0.0, 0.0) == 0
    with pytest.raises(RateLimited) as e:  # a busy (1 s), b cooling (60 s)
        p.pick([0.0, 60.0], 0.0, 0.0)
    assert e.value.retry_after == 1.0


def test_key_rate_limit_sends_the_next_request_to_another_key():
    p = pool(KeyConfig("a", "sk-a", rate_limit_per_minute=60), KeyConfig("b", "sk-b", 0.001))
    picks = [p.pick([0.0, 0.0], 10.0, 0.0) for _ in range(61)]
    assert picks == [0] * 60 + [1]  # the 61st in the same second: key a has no token
    with pytest.raises(RateLimited) as e:
        p.pick([0.0, 30.0], 10.0, 0.0)
    assert e.value.retry_after == pytest.approx(1.0)  # a's next token


# ---------------------------------------------------------------- balancer


def members(*names: str):
    return tuple(SimpleNamespace(name=n) for n in names)


def route(balance: str, weights=(), names=("a", "b", "c")):
    return SimpleNamespace(balance=balance, weights=weights, pool=names)


def balancer(route_, rands):
    it = iter(rands)
    return Balancer(SimpleNamespace(routes=[route_]), rand=lambda: next(it))


def names(order) -> list[str]:
    return [p.name for p in order]


def test_weighted_order_puts_the_choice_first_then_config_order():
    r = route("weighted", (1, 2, 1))
    b = balancer(r, [0.1, 0.5, 0.9])
    pool_ = members("a", "b", "c")
    assert names(b.order(r, pool_)) == ["a", "b", "c"]
    assert names(b.order(r, pool_)) == ["b", "a", "c"]
    assert names(b.order(r, pool_)) == ["c", "a", "b"]


def test_latency_tries_unmeasured_members_then_the_fastest_and_explores():
    r = route("latency")
    b = balancer(r, [0.5] * 4 + [0.01, 0.7])
    pool_ = members("a", "b", "c")
    b.stats["a"].observe(0.5)
    assert names(b.order(r, pool_)) == ["b", "c", "a"]  # b, c never measured
    b.stats["b"].observe(0.1)
    b.stats["c"].observe(0.3)
    assert names(b.order(r, pool_)) == ["b", "c", "a"]
    for _ in range(20):  # b slows down: the moving average follows
        b.stats["b"].observe(1.0)
    assert names(b.order(r, pool_)) == ["c", "a", "b"]
    b.stats["c"].observe(0.3)
    assert names(b.order(r, pool_)) == ["c", "a", "b"]
    # 0.01 < explore (0.05): a random member (0.7 → index 2) goes first
    assert names(b.order(r, pool_))[0] == "c"


def test_latency_moving_average():
    s = ProviderStats()
    s.observe(1.0)
    assert s.latency == 1.0
    s.observe(2.0)
    assert s.latency == pytest.approx(1.2)


def test_least_busy_goes_first_ties_at_random():
    r = route("least_busy")
    b = balancer(r, [0.9, 0.1, 0.5, 0.9, 0.1, 0.5])
    pool_ = members("a", "b", "c")
    assert names(b.order(r, pool_)) == ["b", "c", "a"]  # all idle: the random tie-break
    b.stats["b"].busy = 2
    b.stats["c"].busy = 1
    assert names(b.order(r, pool_)) == ["a", "c", "b"]


def test_only_pool_members_are_tracked():
    b = Balancer(SimpleNamespace(routes=[route("weighted", names=("x", "y")),
                                         SimpleNamespace(pool=())]))
    assert set(b.stats) == {"x", "y"}
