"""Client authentication: the gateway's own API keys (`[auth]`), compared in constant time.

    auth = ClientAuth(config.auth)
    if auth.enabled:
        key_id = auth.authenticate(request.headers)  # raises AuthenticationError (401)

A client sends `Authorization: Bearer KEY` (scheme case-insensitive) or `x-api-key: KEY`.
`authenticate` returns who the client is: a named client's configured name (`[[auth.clients]]`),
or for a key of `[auth] api_keys_*` its key id — the first 12 hex digits of the key's SHA-256 —
to use as the per-client limiter key and in logs; the key itself is never returned, logged or
put in an error.

Constant time: the presented key and every configured key are reduced to SHA-256 digests (equal
length, so the key's length is not leaked) and the presented digest is compared with EVERY
configured digest by `hmac.compare_digest`, the results OR-ed (the matching position is folded
in arithmetically, without a branch), so neither the match nor its position changes the work
done. Health, readiness and metrics routes need no key (the server
decides which routes call this)."""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

from .errors import AuthenticationError

KEY_ID_HEX = 12
ANONYMOUS = "anonymous"  # what `authenticate` returns when auth is disabled


def _digest(key: str) -> bytes:
    # surrogatepass: any str a header decoder can produce encodes, and distinct strs stay distinct
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def key_id(key: str) -> str:
    """A stable, non-reversible id for a client key (the first 12 hex digits of its SHA-256)."""
    return _digest(key).hex()[:KEY_ID_HEX]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """`name` is lower-case; works with case-insensitive mappings (aiohttp) and plain dicts."""
    value = headers.get(name)
    if value is None and not hasattr(headers, "getall"):  # a plain dict: any spelling
        for k, v in headers.items():
            if k.lower() == name:
                return v
    return value


def presented_keys(headers: Mapping[str, str]) -> list[str]:
    """The keys a request carries: the Bearer token and/or the x-api-key value."""
    keys = []
    authorization = _header(headers, "authorization")
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            keys.append(token)
    api_key = _header(headers, "x-api-key")
    if api_key and api_key.strip():
        keys.append(api_key.strip())
    return keys


class ClientAuth:
    def __init__(self, auth_config: Any) -> None:
        self.enabled: bool = bool(auth_config.enabled)
        keys = [k for k in auth_config.keys if k]
        clients = [c for c in getattr(auth_config, "clients", ()) if c.key]
        self._digests: tuple[bytes, ...] = tuple(_digest(k) for k in
                                                 (*keys, *(c.key for c in clients)))
        # who each digest is: a key id for a plain key, the name for a named client
        self._ids: tuple[str, ...] = (*(key_id(k) for k in keys), *(c.name for c in clients))

    @classmethod
    def from_keys(cls, keys: Iterable[str], enabled: bool = True) -> ClientAuth:
        return cls(SimpleNamespace(enabled=enabled, keys=tuple(keys)))

    def _match(self, digest: bytes) -> int:
        """1 + the position of the matching digest, or 0; the same work whatever matches."""
        found = 0
        for position, configured in enumerate(self._digests, 1):
            found |= position * hmac.compare_digest(digest, configured)
        return found

    def authenticate(self, headers: Mapping[str, str], extra: Iterable[str] = ()) -> str:
        """The client's name or the key id of a valid key, else raises `AuthenticationError` (no key text in it).
        With auth disabled, returns `ANONYMOUS` without looking at the headers. When a request
        carries several keys (both headers, or `extra`: where the entry's protocol puts a key,
        e.g. a query parameter), any may be the valid one."""
        if not self.enabled:
            return ANONYMOUS
        for key in (*presented_keys(headers), *extra):
            found = self._match(_digest(key))
            if found:
                return self._ids[found - 1]
        raise AuthenticationError("missing or invalid API key")
