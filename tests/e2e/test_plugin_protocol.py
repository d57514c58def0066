"""A fourth protocol from another distribution (tests/plugin_echo, entry point group
`ferryllm.protocols`) is installed into a folder, and `ferryllm serve` — unchanged — serves it on
both sides: providers of `type = "echo_text"` for every built-in entry, and its own entry
(`POST /echo/complete`) routed to a built-in provider kind. No server, relay or other protocol
file knows it exists."""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import aiohttp
import orjson
import pytest
from aiohttp import web

from tests.mockprovider import MockProvider, Reply

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLUGIN_SRC = ROOT / "tests" / "plugin_echo"


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory) -> pathlib.Path:
    target = tmp_path_factory.mktemp("plugin-site")
    source = tmp_path_factory.mktemp("plugin-src") / "plugin_echo"  # built out of the tree
    shutil.copytree(PLUGIN_SRC, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert list(target.glob("ferry_echo-*.dist-info/entry_points.txt"))
    return target


def echo_provider() -> web.Application:
    """The toy protocol's provider: echoes the prompt, as JSON or as NDJSON lines."""
    async def complete(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        text = "echo: " + body["prompt"]
        if not body["stream"]:
            return web.json_response({"text": text, "input_tokens": 3, "output_tokens": 2})
        resp = web.StreamResponse(headers={"content-type": "application/x-ndjson"})
        await resp.prepare(request)
        for piece in (text[:4], text[4:]):
            await resp.write(orjson.dumps({"text": piece}) + b"\n")
        await resp.write(b'{"done":true,"input_tokens":3,"output_tokens":2}\n')
        await resp.write_eof()
        return resp
    app = web.Application()
    app.router.add_post("/complete", complete)
    return app


def write_config(tmp_path, echo_url: str, openai_url: str) -> str:
    path = tmp_path / "ferryllm.toml"
    path.write_text(f"""
[[providers]]
name = "toy"
type = "echo_text"
base_url = "{echo_url}"
api_key = "unused"

[[providers]]
name = "chat"
type = "openai"
base_url = "{openai_url}"
api_key = "sk-test"

[[routes]]
match = "toy-"
provider = "toy"

[[routes]]
match = "*"
provider = "chat"
""")
    return str(path)


async def test_plugin_protocol_serves_both_sides(serve, sdk, aiohttp_server, provider,
                                                 plugin_dir, tmp_path):
    echo = await aiohttp_server(echo_provider())
    chat = MockProvider(Reply(body={
        "id": "c1", "object": "chat.completion", "created": 0, "model": "gpt-x",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "from chat"}}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}}))
    config = write_config(tmp_path, f"http://127.0.0.1:{echo.port}", await provider(chat))
    env = {"PYTHONPATH": f"{plugin_dir}:{ROOT}"}

    check = subprocess.run([sys.executable, "-m", "ferryllm", "check-config", "--config", config,
                            "--strict"], capture_output=True, text=True, env=env, timeout=60)
    assert check.returncode == 0 and "config ok" in check.stdout, check.stdout + check.stderr

    served = await serve("--config", config, env=env)
    client = sdk.anthropic(served.base)
    msg = await client.messages.create(model="toy-1", max_tokens=16,
                                       messages=[{"role": "user", "content": "hello"}])
    assert msg.content[0].text == "echo: hello" and msg.usage.output_tokens == 2
    async with client.messages.stream(model="toy-1", max_tokens=16,
                                      messages=[{"role": "user", "content": "streamed"}]) as s:
        final = await s.get_final_message()
    assert final.content[0].text == "echo: streamed" and final.stop_reason == "end_turn"

    async with aiohttp.ClientSession() as http:
        async with http.post(served.base + "/echo/complete",
                             json={"model": "gpt-x", "prompt": "hi"}) as resp:
            assert resp.status == 200 and (await resp.json())["text"] == "from chat"
        async with http.post(served.base + "/echo/complete", json={"model": 1}) as resp:
            assert resp.status == 400
            assert await resp.json() == {"error": "model and prompt must be strings"}
        async with http.get(served.base + "/echo/nothing-here") as resp:
            assert resp.status == 404 and "error" in await resp.json()
    assert chat.received[0].json["messages"] == [{"role": "user", "content": "hi"}]
    assert await served.stop() == 0
