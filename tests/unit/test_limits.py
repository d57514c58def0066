"""Rate buckets, permits, admission, backoff and the circuit breaker, with an injected clock."""
from types import SimpleNamespace

import pytest

from ferryllm.config import AuthConfig, Config, ProviderConfig, ServerConfig
from ferryllm.errors import RateLimited
from ferryllm.limits import (CLOSED, HALF_OPEN, OPEN, Admission, Backoff, Breakers, CircuitBreaker,
                             KeyedBuckets, KeyedPermits, Permits, TokenBucket, retry_after_seconds)

# ---------------------------------------------------------------- token bucket


def test_bucket_starts_full_and_refuses_when_empty():
    b = TokenBucket(60)  # one token a second, burst 60
    assert all(b.try_take(100.0) is None for _ in range(60))
    wait = b.try_take(100.0)
    assert wait == pytest.approx(1.0)


def test_bucket_refills_at_per_minute_rate():
    b = TokenBucket(30, burst=1)  # one token every 2 s
    assert b.try_take(0.0) is None
    assert b.try_take(0.5) == pytest.approx(1.5)
    assert b.try_take(1.9) == pytest.approx(0.1)
    assert b.try_take(2.0) is None
    assert b.try_take(2.0) == pytest.approx(2.0)


def test_bucket_never_exceeds_capacity():
    b = TokenBucket(60, burst=2)
    assert b.try_take(0.0) is None
    # an hour idle refills only to the burst
    assert b.try_take(3600.0) is None
    assert b.try_take(3600.0) is None
    assert b.try_take(3600.0) is not None


def test_bucket_ignores_a_clock_that_goes_back():
    b = TokenBucket(60, burst=1)
    assert b.try_take(10.0) is None
    assert b.try_take(5.0) is not None
    assert b.try_take(11.0) is None


def test_bucket_refund():
    b = TokenBucket(60, burst=1)
    assert b.try_take(0.0) is None
    b.refund()
    assert b.try_take(0.0) is None


def test_bucket_rejects_nonpositive_rate():
    with pytest.raises(ValueError):
        TokenBucket(0)


@pytest.mark.parametrize("wait,header", [(0.01, 1), (1.0, 1), (1.2, 2), (59.5, 60)])
def test_retry_after_rounds_up_to_whole_seconds_at_least_one(wait, header):
    assert retry_after_seconds(wait) == header


# ---------------------------------------------------------------- keyed buckets


def test_keyed_buckets_are_independent():
    kb = KeyedBuckets(60, burst=1)
    assert kb.try_take("a", 0.0) is None
    assert kb.try_take("a", 0.0) is not None
    assert kb.try_take("b", 0.0) is None


def test_keyed_buckets_evict_idle_full_buckets():
    kb = KeyedBuckets(60, burst=1)
    for i in range(3):
        kb.try_take(f"k{i}", 0.0)
    assert len(kb) == 3
    # much later every bucket is full again: new keys sweep the idle ones away
    kb.try_take("new", 100.0)
    assert "new" in kb and len(kb) == 1


def test_keyed_buckets_keep_busy_buckets_and_bound_the_dict():
    kb = KeyedBuckets(60, burst=1, max_keys=3)
    for i in range(3):
        assert kb.try_take(f"k{i}", 0.0) is None
    kb.try_take("k0", 0.0)  # k0 becomes most recently used
    assert kb.try_take("k3", 0.1) is None  # not full yet: only the LRU (k1) is dropped
    assert len(kb) == 3 and "k1" not in kb and "k0" in kb
    # k0 is still limited: its state was kept
    assert kb.try_take("k0", 0.1) is not None


# ---------------------------------------------------------------- permits


def test_permits_cap_and_release():
    p = Permits(2)
    assert p.try_acquire() and p.try_acquire()
    assert not p.try_acquire()
    assert p.in_use == 2
    p.release()
    assert p.try_acquire()


def test_permits_unlimited():
    p = Permits(None)
    assert all(p.try_acquire() for _ in range(10_000))
    assert Permits(0).try_acquire()


def test_permits_over_release_raises():
    p = Permits(1)
    with pytest.raises(ValueError):
        p.release()


def test_keyed_permits_remove_entries_at_zero():
    kp = KeyedPermits(1)
    assert kp.try_acquire("a")
    assert not kp.try_acquire("a")
    assert kp.try_acquire("b")
    assert kp.in_use("a") == 1 and len(kp) == 2
    kp.release("a")
    kp.release("b")
    assert len(kp) == 0 and kp.in_use("a") == 0
    with pytest.raises(ValueError):
        kp.release("a")


def test_keyed_permits_unlimited_tracks_nothing():
    kp = KeyedPermits(None)
    assert kp.try_acquire("a") and kp.try_acquire("a")
    kp.release("a")
    assert len(kp) == 0


# ---------------------------------------------------------------- admission


def admission(**kw):
    server = ServerConfig(max_concurrent_requests=kw.pop("max_concurrent", None),
                          rate_limit_per_minute=kw.pop("rate", None))
    auth = AuthConfig(enabled=kw.pop("auth", True),
                      per_key_rate_limit_per_minute=kw.pop("key_rate", None),
                      per_key_max_concurrent_requests=kw.pop("key_concurrent", None))
    return Admission(server, auth)


def test_admission_global_concurrency_held_until_release():
    adm = admission(max_concurrent=1)
    t = adm.admit(None, 0.0)
    with pytest.raises(RateLimited) as e:
        adm.admit(None, 0.0)
    assert e.value.status == 429 and e.value.retry_after == 1.0
    t.release()
    t.release()  # idempotent
    assert adm.global_permits.in_use == 0
    adm.admit(None, 0.0)


def test_admission_per_key_concurrency():
    adm = admission(key_concurrent=1)
    adm.admit("k1", 0.0)
    with pytest.raises(RateLimited, match="this API key"):
        adm.admit("k1", 0.0)
    adm.admit("k2", 0.0)
    assert adm.global_permits.in_use == 2  # the refused request gave its global permit back


def test_admission_rate_limit_retry_after_and_permits_returned():
    adm = admission(rate=60, max_concurrent=5)
    for _ in range(60):
        adm.admit(None, 0.0).release()
    with pytest.raises(RateLimited) as e:
        adm.admit(None, 0.0)
    assert e.value.retry_after == 1
    assert "60 requests per minute" in str(e.value)
    assert adm.global_permits.in_use == 0


def test_admission_per_key_rate_refunded_when_global_refuses():
    adm = admission(rate=1, key_rate=2)
    adm.admit("k", 0.0)
    with pytest.raises(RateLimited):
        adm.admit("k", 0.0)  # global refuses; the key's token comes back
    assert adm.key_buckets.bucket("k", 0.0).tokens == pytest.approx(1.0)
    assert len(adm.key_permits) == 0


def test_admission_per_key_limits_only_with_auth():
    adm = admission(auth=False, key_concurrent=1, key_rate=1)
    adm.admit("anonymous", 0.0)
    adm.admit("anonymous", 0.0)


def test_admission_concurrency_refusal_spends_no_rate_token():
    adm = admission(rate=60, max_concurrent=1)
    adm.admit(None, 0.0)
    tokens = adm.global_bucket.tokens
    with pytest.raises(RateLimited):
        adm.admit(None, 0.0)
    assert adm.global_bucket.tokens == tokens


# ---------------------------------------------------------------- backoff


def test_backoff_full_jitter_bounds():
    b = Backoff(100, 10_000)
    assert b.delay(0, 0.0) == 0.0
    assert b.delay(0, 0.5) == pytest.approx(0.05)
    assert b.delay(3, 0.999) == pytest.approx(0.999 * 0.8)
    for attempt in range(20):
        for rand in (0.0, 0.25, 0.5, 0.999):
            d = b.delay(attempt, rand)
            assert 0.0 <= d <= min(10.0, 0.1 * 2 ** attempt)
            assert d == pytest.approx(rand * min(10.0, 0.1 * 2 ** attempt))


def test_backoff_cap_and_huge_attempts():
    b = Backoff(100, 2_000)
    assert b.delay(10, 0.5) == pytest.approx(1.0)
    assert b.delay(10_000, 0.5) == pytest.approx(1.0)


def test_backoff_honours_retry_after_up_to_the_cap():
    b = Backoff(100, 5_000)
    assert b.delay(0, 0.5, retry_after=2.0) == pytest.approx(2.0)
    assert b.delay(0, 0.5, retry_after=60.0) == pytest.approx(5.0)
    # a shorter retry-after than the jittered delay does not shorten it
    assert b.delay(6, 0.9, retry_after=0.1) == pytest.approx(0.9 * 5.0)
    assert b.delay(0, 0.5, retry_after=0.0) == pytest.approx(0.05)


def test_backoff_from_config():
    b = Backoff.from_config(ServerConfig(retry_backoff_ms=200, retry_backoff_max_ms=1000))
    assert b.base == 0.2 and b.cap == 1.0


# ---------------------------------------------------------------- circuit breaker


def opened(n=3, cooldown=30.0, **kw) -> CircuitBreaker:
    cb = CircuitBreaker(n, cooldown, **kw)
    for _ in range(n):
        assert cb.allow(0.0)
        cb.failure(0.0)
    return cb


def test_breaker_opens_after_n_consecutive_failures():
    cb = CircuitBreaker(3, 30.0)
    cb.failure(0.0)
    cb.failure(0.0)
    assert cb.state == CLOSED and cb.allow(0.0)
    cb.success()  # consecutive: a success resets the count
    cb.failure(1.0)
    cb.failure(1.0)
    assert cb.state == CLOSED
    cb.failure(2.0)
    assert cb.state == OPEN and cb.is_open(2.0)


def test_breaker_stays_open_during_cooldown():
    cb = opened(cooldown=30.0)
    assert not cb.allow(1.0)
    assert not cb.allow(29.9)
    assert cb.state == OPEN and cb.is_open(29.9)
    assert not cb.is_open(30.0)  # ready to probe


def test_breaker_admits_exactly_one_half_open_probe():
    cb = opened(cooldown=30.0)
    assert cb.allow(30.0)
    assert cb.state == HALF_OPEN and cb.probing
    assert not cb.allow(30.0)
    assert not cb.allow(45.0)
    assert not cb.is_open(45.0)


def test_breaker_probe_success_closes():
    cb = opened()
    assert cb.allow(30.0)
    cb.success()
    assert cb.state == CLOSED and cb.failures == 0
    assert cb.allow(30.0) and cb.allow(30.0)


def test_breaker_probe_failure_reopens_with_fresh_cooldown():
    cb = opened(cooldown=30.0)
    assert cb.allow(40.0)
    cb.failure(41.0)
    assert cb.state == OPEN
    assert not cb.allow(70.0)  # cooldown counts from 41, not from 0
    assert cb.allow(71.0) and cb.state == HALF_OPEN


def test_breaker_release_probe_lets_the_next_caller_probe():
    cb = opened()
    assert cb.allow(30.0)
    cb.release_probe()
    assert cb.state == HALF_OPEN
    assert cb.allow(31.0)
    assert not cb.allow(31.0)
    cb.cancel()  # alias
    assert cb.allow(32.0)


def test_breaker_release_probe_is_a_noop_when_not_half_open():
    cb = opened()
    cb.release_probe()
    assert cb.state == OPEN and not cb.allow(1.0)


def test_breaker_lost_probe_times_out():
    cb = opened(cooldown=30.0, probe_timeout_secs=60.0)
    assert cb.allow(30.0)
    assert not cb.allow(89.0)
    assert cb.allow(90.0)
    assert not cb.allow(90.0)


def test_breaker_late_failure_while_open_does_not_extend_cooldown():
    cb = opened(cooldown=30.0)
    cb.failure(20.0)  # a request admitted before the breaker opened
    assert cb.allow(30.0)


def test_breaker_disabled_always_allows():
    for n in (None, 0):
        cb = CircuitBreaker(n, 30.0)
        for _ in range(100):
            cb.failure(0.0)
        assert cb.allow(0.0) and cb.state == CLOSED and not cb.is_open(0.0)
        assert not cb.enabled


def test_breaker_reports_transitions():
    seen = []
    cb = CircuitBreaker(1, 10.0, name="p", on_change=lambda n, s: seen.append((n, s)))
    cb.failure(0.0)
    cb.allow(10.0)
    cb.success()
    cb.success()
    assert seen == [("p", OPEN), ("p", HALF_OPEN), ("p", CLOSED)]


def config(failures=2, providers=("a", "b")):
    return Config(server=ServerConfig(circuit_breaker_failures=failures,
                                      circuit_breaker_cooldown_secs=5.0,
                                      request_timeout_secs=60.0),
                  providers=tuple(ProviderConfig(name=n, type="openai", base_url="http://x")
                                  for n in providers))


def test_breakers_one_per_provider_and_readiness():
    seen = []
    bs = Breakers(config(), on_change=lambda n, s: seen.append((n, s)))
    a, b = bs.get("a"), bs.get("b")
    assert a is not b and a.name == "a" and a.threshold == 2 and a.cooldown == 5.0
    assert a.probe_timeout == 60.0
    assert bs.get("nope") is None
    for _ in range(2):
        a.failure(0.0)
    assert bs.states() == {"a": OPEN, "b": CLOSED}
    assert bs.available(1.0)
    for _ in range(2):
        b.failure(0.0)
    assert not bs.available(1.0)
    assert bs.available(5.0)  # cooled down: a probe may go
    assert seen == [("a", OPEN), ("b", OPEN)]


def test_breakers_disabled_by_config():
    bs = Breakers(config(failures=None))
    assert bs.get("a") is None
    assert bs.available(0.0)
    assert dict(iter(bs)).keys() == {"a", "b"}


def test_admission_accepts_duck_typed_config():
    server = SimpleNamespace(max_concurrent_requests=None, rate_limit_per_minute=None)
    Admission(server).admit("k", 0.0).release()


# ---------------------------------------------------------------- key cooldowns


async def test_local_cooldowns_never_shorten_and_expire_with_the_clock():
    from ferryllm.limits import LocalCooldowns
    store = LocalCooldowns()
    assert await store.remaining("p", ["0", "1"], 100.0) == [0.0, 0.0]
    assert await store.cool("p", "0", 30.0, 100.0) == pytest.approx(30.0)
    assert await store.cool("p", "0", 5.0, 110.0) == pytest.approx(20.0)  # the longer one stays
    assert await store.cool("p", "1", 5.0, 110.0) == pytest.approx(5.0)
    assert await store.remaining("p", ["0", "1"], 112.0) == [pytest.approx(18.0),
                                                            pytest.approx(3.0)]
    assert await store.remaining("other", ["0"], 112.0) == [0.0]  # per provider
    assert await store.remaining("p", ["0", "1"], 131.0) == [0.0, 0.0]
