"""Access-log lines (text and JSON), logging setup, and secret redaction."""
import io
import logging
import shlex

import orjson
import pytest

from ferryllm.accesslog import (AccessLog, AccessRecord, JsonFormatter, RedactSecrets, clean,
                                config_secrets, format_text, setup_logging)
from ferryllm.config import AuthConfig, Config, ProviderConfig

SECRET = "sk-provider-secret-0123456789"
CLIENT_KEY = "client-key-abcdef"


def record(**kw) -> AccessRecord:
    base = dict(request_id="req_1", entry="anthropic", display_model="claude-sonnet-4-5",
                backend_model="gpt-4.1", provider="main", stream=True, status=200,
                ttft_ms=312.456, duration_ms=1500.04, input_tokens=10, output_tokens=20,
                cache_read_tokens=5, cache_write_tokens=0, retries=1, fallback=None)
    base.update(kw)
    return AccessRecord(**base)


def capture(fmt: str):
    stream = io.StringIO()
    logger = logging.getLogger(f"test.access.{fmt}")
    logger.handlers.clear()
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return AccessLog(fmt, logger), stream, handler


def test_text_line_parses_as_key_value_pairs():
    log, stream, _ = capture("text")
    log.write(record(display_model="my model \"x\"", error_kind="timeout"))
    line = stream.getvalue()
    assert line.count("\n") == 1
    pairs = dict(tok.split("=", 1) for tok in shlex.split(line))
    assert pairs["request_id"] == "req_1"
    assert pairs["display_model"] == 'my model "x"'
    assert pairs["stream"] == "true" and pairs["status"] == "200"
    assert pairs["ttft_ms"] == "312.5" and pairs["duration_ms"] == "1500.0"
    assert pairs["fallback"] == "-" and pairs["error_kind"] == "timeout"
    assert list(pairs) == ["request_id", "entry", "display_model", "backend_model", "provider", "key",
                           "stream", "status", "ttft_ms", "duration_ms", "input_tokens",
                           "output_tokens", "cache_read_tokens", "cache_write_tokens",
                           "retries", "fallback", "error_kind", "client"]


def test_json_line_is_one_object():
    log, stream, _ = capture("json")
    log.write(record(ttft_ms=None, fallback="backup"))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    obj = orjson.loads(lines[0])
    assert obj["logger"] == "test.access.json" and obj["level"] == "info" and "ts" in obj
    assert obj["request_id"] == "req_1" and obj["stream"] is True and obj["ttft_ms"] is None
    assert obj["fallback"] == "backup" and obj["input_tokens"] == 10 and "msg" not in obj


def test_json_access_line_under_a_plain_formatter_is_json():
    stream = io.StringIO()
    logger = logging.getLogger("test.access.plain")
    logger.handlers.clear()
    logger.propagate = False
    logger.addHandler(logging.StreamHandler(stream))  # not our JsonFormatter
    logger.setLevel(logging.INFO)
    AccessLog("json", logger).write(record())
    obj = orjson.loads(stream.getvalue())
    assert obj["display_model"] == "claude-sonnet-4-5"


def test_client_strings_are_cleaned_and_cut():
    evil = "model\nstatus=200 injected\r\x1b[31m\u2028\u202e" + "x" * 500
    line = format_text(record(display_model=evil, request_id="id\n2"))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "\u2028" not in line and "\u202e" not in line
    value = dict(tok.split("=", 1) for tok in shlex.split(line))["display_model"]
    assert len(value) == 128 and value.startswith("modelstatus=200 injected[31m")
    assert clean("plain") == "plain"


def test_nothing_is_written_below_info():
    log, stream, _ = capture("text")
    assert log.enabled()
    log.logger.setLevel(logging.WARNING)
    assert not log.enabled()
    log.write(record())
    assert stream.getvalue() == ""


def test_unknown_format_rejected():
    with pytest.raises(ValueError):
        AccessLog("xml")


# ---------------------------------------------------------------- redaction and setup


def redacting_logger(name: str, fmt: str = "text"):
    stream = io.StringIO()
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter("%(message)s"))
    handler.addFilter(RedactSecrets([SECRET, CLIENT_KEY, ""]))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_redact_secrets_in_message_args_and_tracebacks():
    logger, stream = redacting_logger("test.redact")
    logger.info("upstream said %s", f"bad key {SECRET}")
    logger.warning(f"header x-api-key: {CLIENT_KEY}")
    try:
        raise RuntimeError(f"auth failed for {SECRET}")
    except RuntimeError:
        logger.exception("boom")
    out = stream.getvalue()
    assert SECRET not in out and CLIENT_KEY not in out
    assert out.count("***") == 3 and "bad key ***" in out and "RuntimeError" in out


def test_redact_secrets_in_json_access_fields():
    logger, stream = redacting_logger("test.redact.json", "json")
    AccessLog("json", logger).write(record(display_model=f"model {SECRET}"))
    out = stream.getvalue()
    assert SECRET not in out
    assert orjson.loads(out)["display_model"] == "model ***"


def test_redact_longest_secret_first():
    f = RedactSecrets(["abc", "abcdef"])
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "key abcdef", None, None)
    f.filter(rec)
    assert rec.getMessage() == "key ***"


def test_setup_logging_text_and_json(monkeypatch):
    logger = logging.getLogger("ferryllm")
    before = (list(logger.handlers), logger.level)
    try:
        stream = io.StringIO()
        setup_logging("debug", "text", secrets=[SECRET], stream=stream)
        logging.getLogger("ferryllm.relay").debug("using %s", SECRET)
        line = stream.getvalue()
        assert " DEBUG ferryllm.relay using ***" in line and SECRET not in line

        stream = io.StringIO()
        handler = setup_logging("INFO", "json", stream=stream)  # replaces the first handler
        assert [h for h in logger.handlers if getattr(h, "_ferryllm_handler", False)] == [handler]
        logging.getLogger("ferryllm.server").info("listening on %s", "127.0.0.1:3000")
        logging.getLogger("ferryllm.server").debug("hidden")
        obj = orjson.loads(stream.getvalue())
        assert obj["level"] == "info" and obj["logger"] == "ferryllm.server"
        assert obj["msg"] == "listening on 127.0.0.1:3000" and obj["ts"].endswith("Z")
    finally:
        for h in list(logger.handlers):
            if h not in before[0]:
                logger.removeHandler(h)
        logger.setLevel(before[1])


def test_config_secrets():
    cfg = Config(
        auth=AuthConfig(enabled=True, keys=(CLIENT_KEY,)),
        providers=(ProviderConfig(name="a", type="openai", base_url="http://x", api_key=SECRET,
                                  headers=(("api-key", "azure-secret"),
                                           ("Authorization", "Bearer tok-123"),
                                           ("x-title", "ferryllm"))),
                   ProviderConfig(name="b", type="anthropic", base_url="http://y")))
    secrets = config_secrets(cfg)
    assert set(secrets) == {CLIENT_KEY, SECRET, "azure-secret", "Bearer tok-123", "tok-123"}
