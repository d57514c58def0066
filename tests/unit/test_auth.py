"""Client API keys: Bearer or x-api-key, constant-time comparison, key ids instead of keys."""
import hashlib

import pytest
from multidict import CIMultiDict

from ferryllm.auth import ANONYMOUS, ClientAuth, key_id, presented_keys
from ferryllm.config import AuthConfig
from ferryllm.errors import AuthenticationError

KEYS = ("sk-first-key-123456", "sk-second-key-abcdef")


@pytest.fixture
def auth():
    return ClientAuth(AuthConfig(enabled=True, keys=KEYS))


def test_bearer_key(auth):
    assert auth.authenticate({"Authorization": f"Bearer {KEYS[0]}"}) == key_id(KEYS[0])


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_bearer_scheme_is_case_insensitive(auth, scheme):
    assert auth.authenticate({"authorization": f"{scheme}  {KEYS[1]} "}) == key_id(KEYS[1])


def test_x_api_key(auth):
    assert auth.authenticate(CIMultiDict({"X-Api-Key": KEYS[1]})) == key_id(KEYS[1])


def test_plain_dict_any_header_spelling(auth):
    assert auth.authenticate({"X-API-KEY": KEYS[0]}) == key_id(KEYS[0])


def test_returns_a_key_id_not_the_key(auth):
    kid = auth.authenticate({"x-api-key": KEYS[0]})
    assert kid == hashlib.sha256(KEYS[0].encode()).hexdigest()[:12]
    assert KEYS[0] not in kid and len(kid) == 12
    assert auth.authenticate({"x-api-key": KEYS[1]}) != kid


@pytest.mark.parametrize("headers", [
    {},
    {"authorization": "Bearer "},
    {"authorization": "Bearer"},
    {"x-api-key": "   "},
    {"authorization": f"Basic {KEYS[0]}"},
    {"authorization": f"Bearer {KEYS[0]}x"},
    {"x-api-key": KEYS[0][:-1]},
    {"x-api-key": "sk-\udcff"},
])
def test_missing_or_wrong_key_is_401_without_key_text(auth, headers):
    with pytest.raises(AuthenticationError) as e:
        auth.authenticate(headers)
    assert e.value.status == 401
    assert str(e.value) == "missing or invalid API key"
    for k in KEYS:
        assert k not in str(e.value)


def test_either_header_may_hold_the_valid_key(auth):
    headers = {"authorization": "Bearer wrong", "x-api-key": KEYS[0]}
    assert auth.authenticate(headers) == key_id(KEYS[0])


def test_compares_against_every_configured_key(monkeypatch, auth):
    import hmac

    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr("ferryllm.auth.hmac.compare_digest", spy)
    auth.authenticate({"x-api-key": KEYS[0]})  # matches the first key: still compares both
    assert calls == [(32, 32), (32, 32)]


def test_disabled_auth_is_anonymous():
    auth = ClientAuth(AuthConfig(enabled=False))
    assert not auth.enabled
    assert auth.authenticate({}) == ANONYMOUS


def test_enabled_without_keys_rejects_everything():
    auth = ClientAuth.from_keys([])
    with pytest.raises(AuthenticationError):
        auth.authenticate({"x-api-key": "anything"})


def test_presented_keys():
    assert presented_keys({"Authorization": "Bearer a", "x-api-key": "b"}) == ["a", "b"]
    assert presented_keys({"Authorization": "Token a"}) == []
