"""One error hierarchy. Raise anywhere; the entry that received the request renders it once —
as an HTTP error body before the first byte, in-band after. Messages never carry prompt text or
keys. `kind` is the Anthropic `error.type`; the OpenAI entry maps it to its own `type`."""
from __future__ import annotations

from typing import Mapping


class GatewayError(Exception):
    status = 500
    kind = "api_error"
    code: str | None = None
    param: str | None = None
    retryable = False  # a relay may try again (or fall back) when nothing reached the client
    committed = False  # raised after content reached the client: only an in-band error is left
    upstream_status: int | None = None  # the provider's own HTTP status, when it sent one
    pool_exhausted = False  # no key of the provider's pool was free: the provider was not asked

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.retry_after = retry_after
        if param is not None:
            self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(GatewayError):
    status, kind, code = 400, "invalid_request_error", "invalid_request"


class AuthenticationError(GatewayError):
    status, kind, code = 401, "authentication_error", "invalid_api_key"


class PermissionDenied(GatewayError):
    status, kind, code = 403, "permission_error", "permission_denied"


class NotFound(GatewayError):
    status, kind, code = 404, "not_found_error", "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"
    param = "model"


class RequestTooLarge(GatewayError):
    status, kind, code = 413, "request_too_large", "request_too_large"


class RateLimited(GatewayError):
    status, kind, code = 429, "rate_limit_error", "rate_limit_exceeded"


class Overloaded(GatewayError):
    status, kind, code = 529, "overloaded_error", "overloaded"


class ServiceUnavailable(GatewayError):
    """The gateway itself cannot serve now (open circuit, shutting down)."""

    status, kind, code = 503, "overloaded_error", "service_unavailable"


# ---- upstream (provider) failures


class UpstreamError(GatewayError):
    """A provider answered with an error status; `status` is the provider's own."""

    status, kind, code = 502, "api_error", "upstream_error"
    RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 529})

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None, provider: str | None = None,
                 kind: str | None = None) -> None:
        super().__init__(message, status=status, retry_after=retry_after)
        self.provider = provider
        self.retryable = self.status in self.RETRYABLE_STATUSES
        self.kind = kind or kind_for_status(self.status)


class UpstreamConnectError(GatewayError):
    status, kind, code, retryable = 502, "api_error", "upstream_connect_error", True


class UpstreamTimeout(GatewayError):
    status, kind, code, retryable = 504, "api_error", "upstream_timeout", True


class UpstreamProtocolError(GatewayError):
    """The provider sent bytes that do not follow its protocol (malformed chunk, cut stream)."""

    status, kind, code = 502, "api_error", "upstream_protocol_error"


_KIND_BY_STATUS = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 422: "invalid_request_error",
    429: "rate_limit_error", 529: "overloaded_error", 503: "overloaded_error",
}


def kind_for_status(status: int) -> str:
    return _KIND_BY_STATUS.get(status, "invalid_request_error" if 400 <= status < 500 else "api_error")


def parse_retry_after(value: str | None) -> float | None:
    """`retry-after` as seconds (delta-seconds only; an HTTP date is ignored)."""
    if not value:
        return None
    try:
        secs = float(value)
    except ValueError:
        return None
    return secs if secs >= 0 else None


def retry_after_header(headers: Mapping[str, str], name: str = "retry-after") -> float | None:
    """A provider's `retry-after` (or `retry-after-ms`, by `name`) header as a number, whatever
    the spelling of its name (`headers` may be a plain dict)."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return parse_retry_after(value)


def from_upstream(status: int, message: str, *, provider: str,
                  retry_after: float | None = None) -> GatewayError:
    """Map a provider's error status to the client's error, keeping the status (§4): a 429 stays
    a 429 with its retry-after, a 400 a 400 with the provider's message; the provider rejecting the
    gateway's own credentials (401/403) is a 502 that says so."""
    if status in (401, 403):
        err = UpstreamError(
            f"provider '{provider}' rejected the gateway's credentials (HTTP {status}); "
            "check the provider's api_key / api_key_env", status=502, provider=provider)
        err.retryable = False
        return err
    text = message.strip() or f"provider '{provider}' returned HTTP {status}"
    return UpstreamError(text[:2000], status=status, retry_after=retry_after, provider=provider)
