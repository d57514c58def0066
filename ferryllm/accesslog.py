"""One access-log line per request, text or JSON, and the gateway's logging setup.

    setup_logging(config.logging.level, config.logging.format, secrets=config_secrets(config))
    access = AccessLog(config.logging.format)
    access.write(AccessRecord(request_id=..., entry="anthropic", display_model=..., ...))

Text:  `request_id=r1 entry=anthropic display_model="my model" ... status=200 ttft_ms=312.5 ...`
       (values with spaces, quotes, `=` or `\\` are double-quoted with `\\"` / `\\\\` escapes;
       None is `-`).
JSON:  one object per line. Under `setup_logging(format="json")` the record's fields are merged
       into the log object next to ts/level/logger; under any other formatter the message itself
       is the JSON object.

A record has no field for prompt text or keys. Client-supplied strings (model names, request id)
are cut to 128 characters and stripped of control characters (C0, DEL, C1, line/paragraph
separators, bidi overrides), so a model name cannot forge or split log lines. `RedactSecrets` is a
`logging.Filter` that replaces any configured secret in a formatted record with `***` — a second
line of defence for every `ferryllm` log line, installed by `setup_logging`.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterable

import orjson

MAX_FIELD = 128
_CONTROL = dict.fromkeys(
    [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F),
     *range(0x2066, 0x206A), 0x200E, 0x200F, 0xFEFF])
_NEEDS_QUOTES = frozenset(' "=\\')
FIELDS_ATTR = "ferryllm_fields"  # LogRecord attribute carrying a JSON access record's fields


def clean(value: str, limit: int = MAX_FIELD) -> str:
    """Strip control characters, then cut to `limit` characters."""
    if value.isprintable() and len(value) <= limit and value.isascii():
        return value
    return value.translate(_CONTROL)[:limit]


@dataclass(slots=True)
class AccessRecord:
    request_id: str
    entry: str
    display_model: str | None = None
    backend_model: str | None = None
    provider: str | None = None
    stream: bool = False
    status: int = 0
    ttft_ms: float | None = None
    duration_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    retries: int = 0
    fallback: str | None = None  # the provider that served after a fallback
    error_kind: str | None = None


def _fields(record: AccessRecord) -> dict[str, Any]:
    d = asdict(record)
    for k, v in d.items():
        if isinstance(v, str):
            d[k] = clean(v)
        elif isinstance(v, float):
            d[k] = round(v, 1)
    return d


def _text_value(v: Any) -> str:
    if v is None:
        return "-"
    if v is True:
        return "true"
    if v is False:
        return "false"
    s = str(v)
    if not s or not _NEEDS_QUOTES.isdisjoint(s):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


def format_text(record: AccessRecord) -> str:
    return " ".join(f"{k}={_text_value(v)}" for k, v in _fields(record).items())


def format_json(record: AccessRecord) -> str:
    return orjson.dumps(_fields(record)).decode()


class AccessLog:
    def __init__(self, format: str = "text",
                 logger: logging.Logger | None = None) -> None:
        if format not in ("text", "json"):
            raise ValueError(f"unknown access-log format {format!r}")
        self.format = format
        self.logger = logger or logging.getLogger("ferryllm.access")

    def write(self, record: AccessRecord) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        if self.format == "json":
            fields = _fields(record)
            self.logger.info("%s", orjson.dumps(fields).decode(), extra={FIELDS_ATTR: fields})
        else:
            self.logger.info("%s", format_text(record))


# ---------------------------------------------------------------- logging setup


class RedactSecrets(logging.Filter):
    """Replace every configured secret in a record (message, args, exception text, access fields)
    with `***`. Install on handlers: a logger's own filters do not see its children's records."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # longest first, so a secret that contains another is replaced whole
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def _redact(self, text: str) -> str:
        for s in self.secrets:
            if s in text:
                text = text.replace(s, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logged as it is
            msg = str(record.msg)
        redacted = self._redact(msg)
        if redacted is not msg:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        fields = getattr(record, FIELDS_ATTR, None)
        if fields:
            setattr(record, FIELDS_ATTR, {
                k: self._redact(v) if isinstance(v, str) else v for k, v in fields.items()})
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg (and exc); access records' fields are
    merged in instead of a msg."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name}
        fields = getattr(record, FIELDS_ATTR, None)
        if fields is not None:
            obj.update(fields)
        else:
            obj["msg"] = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            obj["exc"] = record.exc_text
        return orjson.dumps(obj, default=str).decode()


_HANDLER_ATTR = "_ferryllm_handler"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def setup_logging(level: str | int = "info", format: str = "text",
                  secrets: Iterable[str] = (), stream: Any = None) -> logging.Handler:
    """Send the `ferryllm` loggers to stderr (or `stream`) at `level`, text or JSON, with
    `RedactSecrets(secrets)` on the handler. Calling it again replaces the previous handler."""
    logger = logging.getLogger("ferryllm")
    for h in list(logger.handlers):
        if getattr(h, _HANDLER_ATTR, False):
            logger.removeHandler(h)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _HANDLER_ATTR, True)
    handler.setFormatter(JsonFormatter() if format == "json" else logging.Formatter(TEXT_FORMAT))
    secrets = list(secrets)
    if secrets:
        handler.addFilter(RedactSecrets(secrets))
    logger.addHandler(handler)
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    return handler


def config_secrets(config: Any) -> list[str]:
    """Every secret a config holds: provider keys, secret-looking provider header values
    (names containing key, auth, token or secret) and client keys."""
    out: list[str] = [k for k in getattr(config.auth, "keys", ()) if k]
    for p in config.providers:
        if p.api_key:
            out.append(p.api_key)
        for name, value in p.headers:
            if value and any(w in name.lower() for w in ("key", "auth", "token", "secret")):
                out.append(value)
                scheme, _, token = value.partition(" ")
                if token and scheme.lower() in ("bearer", "basic", "token"):
                    out.append(token.strip())
    return out
