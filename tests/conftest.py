"""Shared fixtures: real aiohttp servers on 127.0.0.1 for mock providers and for ferryllm."""
from __future__ import annotations

import pytest

from ferryllm.config import Config, ProviderConfig, RouteConfig, ServerConfig
from ferryllm.server import build_app
from tests.mockprovider import MockProvider
from tests.processes import serve_fixture


def make_config(providers: dict[str, tuple[str, str]], routes: list[dict] | None = None,
                **server) -> Config:
    """providers: name -> (type, base_url). routes default to `*` → the first provider."""
    provs = tuple(ProviderConfig(name=n, type=t, base_url=u, api_key=f"sk-provider-{n}")
                  for n, (t, u) in providers.items())
    if routes is None:
        routes = [{"match": "*", "provider": next(iter(providers))}]
    rts = tuple(RouteConfig(**r) if "fallback_providers" not in r else
                RouteConfig(**{**r, "fallback_providers": tuple(r["fallback_providers"])})
                for r in routes)
    return Config(server=ServerConfig(**server), providers=provs, routes=rts)


@pytest.fixture
async def provider(aiohttp_server):
    """`url = await provider(mock)` serves a MockProvider on 127.0.0.1."""
    async def start(mock: MockProvider) -> str:
        server = await aiohttp_server(mock.app())
        return f"http://127.0.0.1:{server.port}"
    return start


@pytest.fixture
async def gateway(aiohttp_server):
    """`base_url = await gateway(config)` serves ferryllm on 127.0.0.1."""
    async def start(config: Config) -> str:
        server = await aiohttp_server(build_app(config))
        return f"http://127.0.0.1:{server.port}"
    return start


@pytest.fixture
async def sdk():
    """Official SDK clients (`max_retries=0`), closed at teardown:
    `sdk.anthropic(base_url)`, `sdk.openai(base_url)`."""
    import anthropic
    import openai

    clients = []

    class Factory:
        @staticmethod
        def anthropic(base_url: str, api_key: str = "client-key", **kw):
            clients.append(anthropic.AsyncAnthropic(base_url=base_url, api_key=api_key,
                                                    max_retries=0, **kw))
            return clients[-1]

        @staticmethod
        def openai(base_url: str, api_key: str = "client-key", **kw):
            clients.append(openai.AsyncOpenAI(base_url=base_url + "/v1", api_key=api_key,
                                              max_retries=0, **kw))
            return clients[-1]

    yield Factory
    for client in clients:
        await client.close()


@pytest.fixture
async def serve():
    """`served = await serve(*args, env=None)`: `ferryllm serve` as a real process
    (tests/processes.py), killed at teardown if still running."""
    async for start in serve_fixture():
        yield start


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server on a free loopback port (`tests.redisserver`), stopped by PID."""
    from tests.redisserver import RedisServer
    server = RedisServer(str(tmp_path))
    server.start()
    yield server
    server.stop()
