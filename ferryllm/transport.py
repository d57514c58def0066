"""A client pool per provider: one shared `aiohttp.ClientSession` each (keep-alive, explicit
connector limits sized for hundreds of concurrent streams), and aiohttp errors mapped to
`GatewayError`s so nothing above this module needs to know aiohttp's exception tree."""
from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aiohttp

from .config import ProviderConfig
from .errors import GatewayError, UpstreamConnectError, UpstreamProtocolError, UpstreamTimeout

MAX_ERROR_BODY = 64 * 1024  # an upstream error body is read up to this size


def client_session(max_connections: int) -> aiohttp.ClientSession:
    """A provider's pooled keep-alive session (call inside the running loop)."""
    connector = aiohttp.TCPConnector(
        limit=max_connections, limit_per_host=0, keepalive_timeout=75, ttl_dns_cache=300,
        enable_cleanup_closed=False)
    return aiohttp.ClientSession(
        connector=connector, auto_decompress=True, raise_for_status=False,
        cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)


class Transport:
    def __init__(self, providers: Iterable[ProviderConfig]) -> None:
        self._providers = {p.name: p for p in providers}
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def session(self, provider: ProviderConfig) -> aiohttp.ClientSession:
        session = self._sessions.get(provider.name)
        if session is None:  # created lazily inside the running loop, once per provider
            session = self._sessions[provider.name] = client_session(provider.max_connections)
        return session

    async def post(self, provider: ProviderConfig, url: str, headers: dict[str, str],
                   body: bytes, *, timeout: aiohttp.ClientTimeout,
                   headers_deadline: float | None = None) -> aiohttp.ClientResponse:
        """POST and return once the response headers are in. `headers_deadline` bounds the time to
        headers (streams); `timeout` is aiohttp's (total for JSON, sock_read idle for streams)."""
        session = self.session(provider)
        try:
            if headers_deadline is None:
                return await session.post(url, data=body, headers=headers, timeout=timeout)
            async with asyncio.timeout(headers_deadline):
                return await session.post(url, data=body, headers=headers, timeout=timeout)
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout(f"provider '{provider.name}' did not answer in time") from None
        except aiohttp.ClientConnectorError:
            raise UpstreamConnectError(f"cannot connect to provider '{provider.name}'") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamConnectError(
                f"connection to provider '{provider.name}' failed ({type(exc).__name__})") from None

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()


def stream_error(provider: ProviderConfig, exc: BaseException) -> GatewayError:
    """Map an exception raised while reading a provider's body."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return UpstreamTimeout(f"provider '{provider.name}' went silent (idle timeout)")
    return UpstreamProtocolError(
        f"connection to provider '{provider.name}' was lost ({type(exc).__name__})")


async def read_limited(resp: aiohttp.ClientResponse, limit: int = MAX_ERROR_BODY) -> bytes:
    """Read at most `limit` bytes of a (usually error) body and release the connection."""
    try:
        chunks, size = [], 0
        async for chunk in resp.content.iter_any():
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
        return b"".join(chunks)[:limit]
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
        return b""
    finally:
        resp.release()
