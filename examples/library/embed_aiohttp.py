"""Mount ferryllm inside an existing aiohttp application.

    python examples/library/embed_aiohttp.py

Your application keeps its own routes; ferryllm's gateway is a sub-application under `/llm`
(so Claude Code would use `ANTHROPIC_BASE_URL=http://host:port/llm`). The provider here is
ferryllm's built-in demo provider on loopback, so the script runs without a key or a network:
it starts both, sends one request through the mounted gateway, prints the answer and stops.
"""
import asyncio

import aiohttp
from aiohttp import web

from ferryllm.config import parse_config
from ferryllm.mock import build_mock_app
from ferryllm.server import build_app


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="my own application's route")


async def main() -> None:
    provider = web.AppRunner(build_mock_app(), access_log=None)  # stands in for a real backend
    await provider.setup()
    provider_site = web.TCPSite(provider, "127.0.0.1", 0)
    await provider_site.start()
    provider_port = provider_site._server.sockets[0].getsockname()[1]

    config = parse_config({
        "providers": [{"name": "backend", "type": "openai",
                       "base_url": f"http://127.0.0.1:{provider_port}", "api_key": "demo"}],
        "routes": [{"match": "*", "provider": "backend", "rewrite_model": "demo-model"}],
    })
    app = web.Application()
    app.router.add_get("/", hello)
    app.add_subapp("/llm", build_app(config))  # the gateway, with its start-up and clean-up

    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/") as resp:
                print(resp.status, await resp.text())
            body = {"model": "claude-sonnet-4-5", "max_tokens": 64,
                    "messages": [{"role": "user", "content": "hello"}]}
            async with http.post(f"http://127.0.0.1:{port}/llm/v1/messages", json=body) as resp:
                answer = await resp.json()
                print(resp.status, answer["content"][0]["text"])
                assert resp.status == 200 and answer["model"] == "claude-sonnet-4-5"
    finally:
        await runner.cleanup()
        await provider.cleanup()
    print("ok")


if __name__ == "__main__":
    asyncio.run(main())
