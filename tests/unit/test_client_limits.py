"""Named clients in the local store: their own rate and concurrency (else the per-key default),
tokens per minute and daily budgets counted from the provider's usage; constant-time auth that
tells clients apart."""
from __future__ import annotations

import pytest

from ferryllm.auth import ClientAuth, key_id
from ferryllm.config import AuthConfig, ClientConfig, ServerConfig
from ferryllm.errors import AuthenticationError, RateLimited
from ferryllm.ir import Usage
from ferryllm.limits import Admission, DailyBudget, TokenMeter, seconds_to_utc_midnight

DAY = 86_400.0
NOON = 20_000 * DAY + DAY / 2  # some UTC noon


def admission(*clients, server=None, **auth):
    return Admission(server or ServerConfig(max_concurrent_requests=None),
                     AuthConfig(enabled=True, keys=("plain",), clients=clients, **auth))


def test_named_client_own_limits_and_defaults():
    adm = admission(ClientConfig("a", "ka", rate_limit_per_minute=2, max_concurrent_requests=1),
                    ClientConfig("b", "kb"), per_key_rate_limit_per_minute=1,
                    per_key_max_concurrent_requests=3)
    a, b = adm.client("a"), adm.client("b")
    assert (a.name, a.rate_per_minute, a.max_concurrent) == ("a", 2, 1)
    assert (b.rate_per_minute, b.max_concurrent) == (1, 3)  # the [auth] per_key_* defaults
    plain = adm.client(key_id("plain"))
    assert plain.name is None and plain.rate_per_minute == 1
    t = adm.admit(a, 0.0)
    with pytest.raises(RateLimited, match="concurrent requests for this API key"):
        adm.admit(a, 0.0)
    t.release()
    adm.admit(a, 0.0).release()
    with pytest.raises(RateLimited, match="2 requests per minute"):
        adm.admit(a, 0.0)
    adm.admit(b, 0.0).release()
    with pytest.raises(RateLimited, match="1 requests per minute"):
        adm.admit(b, 0.0)


def test_tokens_per_minute_counts_the_usage_after_the_fact():
    adm = admission(ClientConfig("a", "ka", tokens_per_minute=600))
    a = adm.client("a")
    adm.admit(a, 0.0).release(Usage(input_tokens=500, output_tokens=200), 0.0, NOON)
    with pytest.raises(RateLimited, match="600 tokens per minute") as e:
        adm.admit(a, 0.0)
    assert e.value.retry_after == 11  # 101 tokens short at 10 tokens a second
    adm.admit(a, 11.0).release()


def test_daily_budget_until_the_next_utc_day():
    adm = admission(ClientConfig("a", "ka", daily_token_budget=100))
    a = adm.client("a")
    usage = Usage(input_tokens=40, output_tokens=40, cache_read_input_tokens=15,
                  cache_creation_input_tokens=5)
    adm.admit(a, 0.0, NOON).release(usage, 0.0, NOON)  # 100: spent
    with pytest.raises(RateLimited, match="daily token budget") as e:
        adm.admit(a, 1.0, NOON + 1)
    assert e.value.retry_after == DAY / 2 - 1
    adm.admit(a, 2.0, NOON + DAY / 2).release()  # a new UTC day


def test_a_cut_stream_still_counts_and_refusals_hold_nothing():
    adm = admission(ClientConfig("a", "ka", daily_token_budget=10, max_concurrent_requests=1))
    a = adm.client("a")
    adm.admit(a, 0.0, NOON).release(Usage(input_tokens=10), 0.0, NOON)
    with pytest.raises(RateLimited):
        adm.admit(a, 0.0, NOON)
    assert adm.key_permits.in_use("a") == 0


def test_meter_and_budget_pieces():
    m = TokenMeter(60)
    assert m.wait(0.0) is None
    m.debit(61, 0.0)
    assert m.wait(0.0) == pytest.approx(2.0)
    b = DailyBudget(5)
    b.spend(5, NOON)
    assert b.wait(NOON) == seconds_to_utc_midnight(NOON) == DAY / 2
    assert b.wait(NOON + DAY) is None


def test_auth_tells_named_clients_from_plain_keys():
    auth = ClientAuth(AuthConfig(enabled=True, keys=("plain",),
                                 clients=(ClientConfig("a", "ka"), ClientConfig("b", "kb"))))
    assert auth.authenticate({"x-api-key": "kb"}) == "b"
    assert auth.authenticate({"authorization": "Bearer ka"}) == "a"
    assert auth.authenticate({"x-api-key": "plain"}) == key_id("plain")
    with pytest.raises(AuthenticationError):
        auth.authenticate({"x-api-key": "k"})
