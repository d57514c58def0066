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
from dataclasses import dataclass, fields
from typing import Any, Callable, Iterable

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
    key: str | None = None  # the label (name or position) of the pool key that served
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
    client: str | None = None  # a named client's name, or a plain key's key id; never a key


_NAMES = tuple(f.name for f in fields(AccessRecord))


def _fields(record: AccessRecord) -> dict[str, Any]:
    # not dataclasses.asdict: it deep-copies every value (~10x slower, and these are all scalars)
    d = {}
    for k in _NAMES:
        v = getattr(record, k)
        if isinstance(v, str):
            v = clean(v)
        elif isinstance(v, float):
            v = round(v, 1)
        d[k] = v
    return d


def _text(v: str | None) -> str:
    if v is None:
        return "-"
    v = clean(v)
    if not v or not _NEEDS_QUOTES.isdisjoint(v):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return v


def _ms(v: float | None) -> str:
    # the digits of str(round(v, 1)) below 1e16 ms, with one float-to-decimal conversion, not two
    return "-" if v is None else f"{v:.1f}"


def format_text(r: AccessRecord) -> str:
    """One f-string, field by field (a generic loop over the record costs ~3x as much)."""
    return (f"request_id={_text(r.request_id)} entry={_text(r.entry)} "
            f"display_model={_text(r.display_model)} backend_model={_text(r.backend_model)} "
            f"provider={_text(r.provider)} key={_text(r.key)} stream={'true' if r.stream else 'false'} "
            f"status={r.status} ttft_ms={_ms(r.ttft_ms)} duration_ms={_ms(r.duration_ms)} "
            f"input_tokens={r.input_tokens} output_tokens={r.output_tokens} "
            f"cache_read_tokens={r.cache_read_tokens} cache_write_tokens={r.cache_write_tokens} "
            f"retries={r.retries} fallback={_text(r.fallback)} error_kind={_text(r.error_kind)} "
            f"client={_text(r.client)}")


def format_json(record: AccessRecord) -> str:
    return orjson.dumps(_fields(record)).decode()


class AccessLog:
    def __init__(self, format: str = "text",
                 logger: logging.Logger | None = None) -> None:
        if format not in ("text", "json"):
            raise ValueError(f"unknown access-log format {format!r}")
        self.format = format
        self.logger = logger or logging.getLogger("ferryllm.access")

    def enabled(self) -> bool:
        """Whether `write` would log anything: a caller can skip building the record."""
        return self.logger.isEnabledFor(logging.INFO)

    def write(self, record: AccessRecord) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        fields = None
        if self.format == "json":
            fields = _fields(record)
            line = orjson.dumps(fields).decode()
        else:
            line = format_text(record)
        # what logger.info(line) does, less its walk up the stack for the caller's file and line
        # (findCaller: a third of the cost), which no access line shows; no args: no %-formatting
        rec = logger.makeRecord(logger.name, logging.INFO, __file__, 0, line, None, None, "write")
        if fields is not None:
            setattr(rec, FIELDS_ATTR, fields)
        logger.handle(rec)


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


class _Seconds:
    """`strftime` once a second, not once a line (~7 % of an access line).
    One tuple attribute, so a thread never reads one second's stamp with another's number."""

    def __init__(self, fmt: str, convert: Callable[[float], time.struct_time]) -> None:
        self._fmt, self._convert, self._last = fmt, convert, (-1, "")

    def __call__(self, created: float) -> str:
        second, stamp = self._last
        if int(created) != second:
            stamp = time.strftime(self._fmt, self._convert(created))
            self._last = (int(created), stamp)
        return stamp


class TextFormatter(logging.Formatter):
    """`TEXT_FORMAT`: `2025-01-31 12:00:00,123 INFO ferryllm.access request_id=…`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._seconds = _Seconds(self.default_time_format, self.converter)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt:
            return super().formatTime(record, datefmt)
        return self.default_msec_format % (self._seconds(record.created), record.msecs)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg (and exc); access records' fields are
    merged in instead of a msg."""

    def __init__(self) -> None:
        super().__init__()
        self._seconds = _Seconds("%Y-%m-%dT%H:%M:%S", time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "ts": self._seconds(record.created) + f".{int(record.msecs):03d}Z",
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
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    secrets = list(secrets)
    if secrets:
        handler.addFilter(RedactSecrets(secrets))
    logger.addHandler(handler)
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    return handler


def _url_password(url: str) -> str | None:
    from urllib.parse import urlsplit
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def config_secrets(config: Any) -> list[str]:
    """Every secret a config holds: provider keys, secret-looking provider header values
    (names containing key, auth, token or secret), client keys and the Redis password."""
    out: list[str] = [k for k in getattr(config.auth, "keys", ()) if k]
    out += [c.key for c in getattr(config.auth, "clients", ()) if c.key]
    shared = getattr(config, "shared_state", None)
    if shared is not None and (password := _url_password(shared.url)):
        out.append(password)
    for p in config.providers:
        if p.api_key:
            out.append(p.api_key)
        out.extend(k.api_key for k in getattr(p, "keys", ()))
        for name, value in p.headers:
            if value and any(w in name.lower() for w in ("key", "auth", "token", "secret")):
                out.append(value)
                scheme, _, token = value.partition(" ")
                if token and scheme.lower() in ("bearer", "basic", "token"):
                    out.append(token.strip())
    return out
