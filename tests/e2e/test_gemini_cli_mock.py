"""The real Gemini CLI pointed straight at the Gemini mock (no ferryllm): the mock is faithful
enough for the CLI, and the CLI still sends what `tests/fixtures/gemini_cli/` says it sends.

Each run uses `tests/gemini_cli.py` (temporary HOME and settings, API-key auth,
`GOOGLE_GEMINI_BASE_URL` = the mock, trusted workspace, telemetry and update checks off)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gemini_cli import UNTRUSTED_WARNING, GeminiCLIUnavailable, gemini_command, run_gemini
from tests.mock_gemini import GeminiMock
from tests.record_gemini_cli import (COMMAND, FIXTURES, SCENARIOS, SECOND, PLAIN_ANSWER,
                                     shell_plan)

pytestmark = pytest.mark.gemini_cli


@pytest.fixture(scope="module")
def gemini() -> list[str]:
    try:
        return gemini_command()
    except GeminiCLIUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


async def run(gemini, provider, tmp_path, scenario: str, **kw):
    mock = GeminiMock(plan=shell_plan, api_key="gemini-cli-test-key")
    url = await provider(mock)
    prompt, model, yolo = SCENARIOS[scenario]
    result = await run_gemini(gemini, url, prompt, tmp_path, model=model, yolo=yolo, **kw)
    assert result.code == 0, result.explain()
    assert not mock.rejected, f"the mock rejected the CLI's request: {mock.rejected}"
    assert UNTRUSTED_WARNING not in result.stderr  # the workspace is trusted
    assert not result.refused, f"the CLI tried to leave 127.0.0.1: {result.refused}"
    assert any(n["kind"] == "fetch" for n in result.network)  # the guard watched this run
    return mock, result


def shape(request: dict) -> tuple:
    """What must not drift between CLI releases without re-recording the fixtures."""
    body = request["body"]
    return (request["method"], request["path"].rsplit(":", 1)[-1], request["query"],
            sorted(k.lower() for k in request["headers"] if k.lower() not in
                   ("content-length", "host")),
            sorted(body), sorted(body.get("generationConfig", {})),
            [(c.get("role"), [sorted(p) for p in c["parts"]]) for c in body["contents"][1:]])


def check_fixture(mock: GeminiMock, scenario: str) -> None:
    recorded = json.loads((FIXTURES / f"{scenario}.json").read_text())
    live = [{"method": r.method, "path": r.path, "query": r.query, "headers": r.headers,
             "body": r.json} for r in mock.received]
    assert [shape(r) for r in live] == [shape(r) for r in recorded], \
        f"the CLI no longer sends what {scenario}.json says: re-record the fixtures"


async def test_plain_answer_straight_from_the_mock(gemini, provider, tmp_path):
    mock, result = await run(gemini, provider, tmp_path, "plain")
    assert result.stdout.strip() == PLAIN_ANSWER
    assert "Time to answer" not in result.stdout  # thought summaries are not the answer
    check_fixture(mock, "plain")
    (only,) = mock.received
    assert only.path == "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    assert only.query == {"alt": "sse"}
    assert only.headers["x-goog-api-key"] == "gemini-cli-test-key"
    assert "x-gemini-api-privileged-user-id" not in only.headers  # usage statistics are off


async def test_shell_round_trip_straight_from_the_mock(gemini, provider, tmp_path):
    mock, result = await run(gemini, provider, tmp_path, "shell")
    assert "FERRY-BOAT" in result.stdout, result.explain()
    check_fixture(mock, "shell")
    second = mock.generations[-1].json["contents"]
    call, answer = second[-2], second[-1]
    assert call["parts"][0]["functionCall"]["args"]["command"] == COMMAND
    assert call["parts"][0]["thoughtSignature"] in mock.issued  # replayed where it came from
    (response,) = answer["parts"]
    assert "FERRY-BOAT" in response["functionResponse"]["response"]["output"]
    assert response["functionResponse"]["id"] == call["parts"][0]["functionCall"]["id"]


async def test_parallel_calls_on_a_3x_model_straight_from_the_mock(gemini, provider, tmp_path):
    mock, result = await run(gemini, provider, tmp_path, "parallel", output="json")
    assert "FERRY-BOAT" in result.json["response"] and "gnissorc-dnoces" in result.json["response"]
    check_fixture(mock, "parallel")
    second = mock.generations[-1]
    assert second.model.startswith("gemini-3")  # the signature rules of 3.x models applied
    call, answer = second.json["contents"][-2:]
    assert [p["functionCall"]["args"]["command"] for p in call["parts"]] == [COMMAND, SECOND]
    ids = [p["functionCall"]["id"] for p in call["parts"]]
    assert [p["functionResponse"]["id"] for p in answer["parts"]] == ids


async def test_image_prompt_counts_tokens_first(gemini, provider, tmp_path):
    from tests.record_gemini_cli import FILES
    mock, result = await run(gemini, provider, tmp_path, "image", files=FILES["image"])
    check_fixture(mock, "image")
    count, stream = mock.received
    assert count.method_name == "countTokens" and stream.method_name == "streamGenerateContent"
    assert any("inlineData" in p for p in stream.json["contents"][0]["parts"])


def test_fixtures_hold_no_key():
    for path in Path(FIXTURES).glob("*.json"):
        assert "gemini-cli-test-key" not in path.read_text(), path


async def test_the_guard_sees_what_the_settings_switch_off(gemini, provider, tmp_path):
    """Control for the offline checks: with usage statistics on (the CLI's default), the run
    tries to post to Google's Clearcut logging endpoint; the guard refuses and reports it."""
    mock = GeminiMock(plan=shell_plan)
    url = await provider(mock)
    prompt, model, yolo = SCENARIOS["plain"]
    result = await run_gemini(gemini, url, prompt, tmp_path, model=model,
                              settings={"privacy": {"usageStatisticsEnabled": True}})
    assert result.code == 0, result.explain()
    hosts = {n["target"] for n in result.refused}
    assert any("play.googleapis.com" in h for h in hosts), result.network
    assert mock.received[0].headers.get("x-gemini-api-privileged-user-id")
