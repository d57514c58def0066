"""The benchmark tools end to end: the mock upstream (both engines) on 127.0.0.1, the load tester
as a subprocess against it and through ferryllm, its JSON read back."""
import asyncio
import os
import sys

import orjson
import pytest

from benchmarks import mock_raw
from benchmarks.mock_upstream import Mock, MockConfig, build_app
from tests.conftest import make_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRESET = {"openai": "mock-openai", "anthropic": "mock-anthropic"}


async def load_test(*args: str, timeout: float = 30) -> tuple[int, dict]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.load_test", *args, "--json", "--quiet",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert not err or b"Traceback" not in err, err.decode()
    return proc.returncode, orjson.loads(out)


@pytest.fixture
async def mock_url(aiohttp_server):
    """`url = await mock_url(engine, **config)`: the mock upstream on 127.0.0.1."""
    servers = []

    async def start(engine: str, **config) -> str:
        if engine == "aiohttp":
            server = await aiohttp_server(build_app(MockConfig(**config)))
            return f"http://127.0.0.1:{server.port}"
        server = await mock_raw.start("127.0.0.1", 0, Mock(MockConfig(**config)))
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def assert_all_ok(doc: dict, n: int = 50) -> dict:
    assert doc["ok"] is True
    for run in doc["runs"]:
        assert run["status_counts"] == {"200": n}, run
        assert run["errors"] == {} and run["failed"] == 0
        assert run["latency_ms"]["count"] == n
    return doc["runs"][-1]


@pytest.mark.parametrize("engine", ["raw", "aiohttp"])
@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
async def test_streams_against_the_mock(mock_url, engine, protocol):
    url = await mock_url(engine)
    code, doc = await load_test("--preset", PRESET[protocol], "--url", url, "--requests", "50",
                                "--concurrency", "8", "--stream")
    assert code == 0
    run = assert_all_ok(doc)
    assert run["ttfc_ms"]["count"] == 50 and run["client_cpu_us_per_request"] > 0


@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
async def test_aiohttp_sse_client_reads_the_same_streams(mock_url, protocol):
    url = await mock_url("raw", tool_calls=1)
    code, doc = await load_test("--preset", PRESET[protocol], "--url", url, "--requests", "50",
                                "--concurrency", "8", "--stream", "--client", "aiohttp-sse-client")
    assert code == 0
    assert assert_all_ok(doc)["ttfc_ms"]["count"] == 50


async def test_json_path_and_open_loop(mock_url):
    url = await mock_url("raw")
    code, doc = await load_test("--preset", "mock-anthropic", "--url", url, "--requests", "50",
                                "--rate", "200", "--validate")
    assert code == 0
    run = assert_all_ok(doc)
    assert run["ttfc_ms"]["count"] == 0 and run["schedule_lag_ms"]["count"] == 50


@pytest.mark.parametrize("client", ["aiohttp", "aiohttp-sse-client"])
async def test_cut_streams_and_error_statuses_fail_the_run(mock_url, client):
    url = await mock_url("raw")
    code, doc = await load_test("--preset", "mock-anthropic", "--url", url, "--requests", "10",
                                "--concurrency", "4", "--stream", "--client", client,
                                "--header", "x-mock-truncate: 1")
    assert code == 1 and doc["runs"][0]["errors"] == {"incomplete_stream": 10}
    code, doc = await load_test("--preset", "mock-openai", "--url", url, "--requests", "10",
                                "--concurrency", "4", "--stream", "--client", client,
                                "--header", "x-mock-status: 503")
    assert code == 1 and doc["runs"][0]["errors"] == {"http_503": 10}


@pytest.mark.parametrize("client", ["aiohttp", "aiohttp-sse-client"])
async def test_compare_through_ferryllm(mock_url, gateway, client):
    """OpenAI-compatible mock → ferryllm → Anthropic client, against the Anthropic mock directly."""
    openai_mock = await mock_url("raw", protocol="openai")
    anthropic_mock = await mock_url("raw", protocol="anthropic")
    base = await gateway(make_config({"mock-openai": ("openai", openai_mock)}))
    code, doc = await load_test("--preset", "mock-anthropic", "--url", base, "--compare", anthropic_mock,
                                "--requests", "50", "--concurrency", "8", "--stream", "--client", client)
    assert code == 0, doc["runs"][-1]["errors"]
    assert_all_ok(doc)
    assert [r["label"] for r in doc["runs"]] == ["direct", "gateway"]
    assert doc["compare"]["requests_per_s_ratio"] > 0


@pytest.mark.parametrize("preset", ["mock-openai", "anthropic-messages", "openai-chat"])
async def test_every_preset_through_ferryllm(mock_url, gateway, preset):
    openai_mock = await mock_url("raw", protocol="openai")
    base = await gateway(make_config({"mock-openai": ("openai", openai_mock)}))
    code, doc = await load_test("--preset", preset, "--url", base, "--requests", "20",
                                "--concurrency", "4", "--stream", "--validate")
    assert code == 0, doc["runs"][-1]["errors"]
    assert assert_all_ok(doc, 20)["ttfc_ms"]["count"] == 20


@pytest.mark.parametrize("engine", ["raw", "aiohttp"])
@pytest.mark.parametrize("stream", [True, False])
async def test_responses_scenarios(mock_url, gateway, engine, stream):
    """The Responses mock directly and the Responses entry through ferryllm (scenario r1), and an
    Anthropic client through the Responses adapter (scenario r2); the mock's stream follows
    OpenAI's grammar."""
    import aiohttp

    from tests.responses_grammar import check_stream, parse_sse

    openai_mock = await mock_url(engine, protocol="openai")
    responses_mock = await mock_url(engine, protocol="responses", tool_calls=1)
    async with aiohttp.ClientSession() as session:
        async with session.post(responses_mock + "/v1/responses",
                                json={"model": "m", "input": "hi", "stream": True}) as resp:
            final = check_stream(parse_sse(await resp.read()))
    assert [i["type"] for i in final["output"]] == ["message", "function_call"]
    base = await gateway(make_config(
        {"mock-openai": ("openai", openai_mock), "mock-responses": ("openai_responses",
                                                                     responses_mock)},
        [{"match": "via-responses", "match_type": "exact", "provider": "mock-responses"},
         {"match": "*", "provider": "mock-openai"}]))
    flags = ["--requests", "20", "--concurrency", "4", "--validate"] + (
        ["--stream"] if stream else [])
    code, doc = await load_test("--preset", "mock-responses", "--url", base, "--compare",
                                responses_mock, *flags)
    assert code == 0, doc["runs"][-1]["errors"]
    assert_all_ok(doc, 20)
    code, doc = await load_test("--preset", "mock-anthropic", "--model", "via-responses",
                                "--url", base, *flags)
    assert code == 0, doc["runs"][-1]["errors"]
    assert_all_ok(doc, 20)


@pytest.mark.parametrize("stream", [True, False])
async def test_floor_proxy_passes_the_mock_bytes_through(mock_url, aiohttp_server, stream):
    """benchmarks/floor.py: the client gets exactly the bytes the mock sends, as a stream with
    the SSE headers or as one JSON body, and the load tester's checks pass through it."""
    import aiohttp

    from benchmarks import floor

    upstream = await mock_url("raw", protocol="anthropic")
    proxy = await aiohttp_server(floor.build_app(upstream))
    body = orjson.dumps({"model": "m", "max_tokens": 8, "stream": stream,
                         "messages": [{"role": "user", "content": "hi"}]})
    async with aiohttp.ClientSession() as session:
        got = []
        for url in (upstream, f"http://127.0.0.1:{proxy.port}"):
            async with session.post(url + "/v1/messages", data=body) as resp:
                assert resp.status == 200
                got.append((resp.content_type, await resp.read()))
    assert got[0] == got[1]
    assert got[1][0] == ("text/event-stream" if stream else "application/json")
    code, doc = await load_test("--url", f"http://127.0.0.1:{proxy.port}", "--preset",
                                "mock-anthropic", "--requests", "20", "--concurrency", "4",
                                *(["--stream"] if stream else []))
    assert code == 0
    assert_all_ok(doc, 20)
