"""The gateway's error hierarchy and the one place that renders it.

    GatewayError                      status, OpenAI `type`, `param`, `code`, `retryable`
    ├── InvalidRequest        400     malformed JSON, wrong field types, missing fields
    ├── AuthenticationError   401
    ├── ModelNotFound         404     names the model and lists the ones that exist
    ├── RequestTooLarge       413     body over `max_request_body_mb`
    ├── HeadersTooLarge       431     more header bytes or fields than `limits` allows
    ├── GatewayShutdown       503     the gateway is shutting down (drain): retry elsewhere
    ├── UnsupportedEndpoint   400     e.g. embeddings on a provider that has none
    └── UpstreamError                 anything that went wrong past our edge
        ├── UpstreamHTTPError         the provider answered with an error status
        ├── UpstreamConnectionError 502
        ├── UpstreamTimeout       504
        └── UpstreamProtocolError 502 the provider answered something we cannot read

Messages never carry provider keys or client secrets: an upstream's error body is reduced to
its `message` and `type` before it reaches a client (see `UpstreamHTTPError.from_body`).
A value the client sent is quoted in a message only through `clip` or `echo`, which cut it: a 1 MB
model name must not come back as a 1 MB error.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Iterable
from typing import Any

import orjson

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})

ECHO_CHARS = 100  # the most of a client's value an error message quotes

_ECHO = reprlib.Repr()
_ECHO.maxstring = _ECHO.maxother = _ECHO.maxlong = ECHO_CHARS
_ECHO.maxlevel = 2  # a deep value stops being walked at once, not only printed short


def clip(text: str) -> str:
    """A client's string quoted in an error: whole up to `ECHO_CHARS`, else clipped, saying
    how long it was."""
    if len(text) <= ECHO_CHARS:
        return text
    return f"{text[: ECHO_CHARS - 1]}… ({len(text):,} characters)"


def echo(value: object) -> str:
    """A client's value quoted in an error as its repr (`'text'`, `{'a': 1}`), clipped like
    `clip`; the work is bounded whatever the value's size (reprlib stops at its limits)."""
    if isinstance(value, str):
        return repr(clip(value))
    return _ECHO.repr(value)


class GatewayError(Exception):
    status_code = 500
    type = "api_error"
    code: str | None = None
    retryable = False
    # set by the routing executor on the error it finally raises
    attempts = 1
    target: Any = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body(self) -> bytes:
        return orjson.dumps(self.to_dict())

    def sse_event(self) -> bytes:
        """In a stream whose headers are already sent, an error is one SSE event then [DONE]."""
        return b"data: " + self.body() + b"\n\ndata: [DONE]\n\n"

    @property
    def error_type(self) -> str:
        """The closed-set name recorded in the ledger and in metric labels."""
        return self.code or self.type


class InvalidRequest(GatewayError):
    status_code = 400
    type = "invalid_request_error"


class AuthenticationError(GatewayError):
    status_code = 401
    type = "authentication_error"
    code = "invalid_api_key"


class ModelNotFound(GatewayError):
    status_code = 404
    type = "invalid_request_error"
    code = "model_not_found"

    def __init__(self, model: str, available: list[str]) -> None:
        listed = ", ".join(sorted(available)) or "none"
        super().__init__(
            f"The model `{clip(model)}` does not exist on this gateway. "
            f"Available models: {listed}.",
            param="model",
        )


class RequestTooLarge(GatewayError):
    status_code = 413
    type = "invalid_request_error"
    code = "request_too_large"


class HeadersTooLarge(GatewayError):
    status_code = 431
    type = "invalid_request_error"
    code = "request_header_fields_too_large"


class GatewayShutdown(GatewayError):
    """A request the gateway will not finish because it is shutting down: one that arrived
    after it stopped taking work, or one still running at the end of the drain timeout."""

    status_code = 503
    type = "server_error"
    code = "gateway_shutdown"
    retryable = True

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "The gateway is shutting down and did not finish this request; retry it "
            "(another replica will answer).",
            headers={"connection": "close"},
        )


class NotFound(GatewayError):
    status_code = 404
    type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowed(GatewayError):
    status_code = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class UnsupportedEndpoint(GatewayError):
    status_code = 400
    type = "invalid_request_error"
    code = "unsupported_endpoint"


class UpstreamError(GatewayError):
    status_code = 502
    type = "upstream_error"
    retryable = True


class UpstreamConnectionError(UpstreamError):
    status_code = 502
    code = "upstream_connection_error"


class UpstreamTimeout(UpstreamError):
    status_code = 504
    code = "upstream_timeout"


class UpstreamProtocolError(UpstreamError):
    status_code = 502
    code = "upstream_protocol_error"
    retryable = False


_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


# An upstream's error `type` and `code` are identifiers; anything else (a sentence, an echoed
# key) is not kept: they reach the client's error body, the ledger and a metric label.
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")

# The error types a metric label may carry: ours and the providers' documented ones (OpenAI,
# Anthropic, Gemini as mapped in providers/gemini_response.py). Anything else counts as "other".
METRIC_ERROR_TYPES = frozenset(
    {
        "api_error",
        "authentication_error",
        "billing_error",
        "client_disconnected",
        "insufficient_quota",
        "invalid_request_error",
        "not_found_error",
        "overloaded_error",
        "permission_error",
        "rate_limit_error",
        "request_too_large",
        "server_error",
        "service_unavailable_error",
        "timeout_error",
        "upstream_connection_error",
        "upstream_error",
        "upstream_protocol_error",
        "upstream_timeout",
        "all_attempts_failed",
    }
)


def _identifier(value: str | None) -> str | None:
    return value if value is not None and _IDENTIFIER.fullmatch(value) else None


class Scrubber:
    """Replaces every configured secret (provider keys, the master key) in text that came from
    an upstream, before it reaches a client, a log line or the ledger."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        # short values would match ordinary words; real keys are long
        self._secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def error(self, error: GatewayError) -> GatewayError:
        """The same error with its message scrubbed (in place: it is about to be raised)."""
        error.message = self(error.message)
        if error.param is not None:
            error.param = self(error.param)
        return error


class UpstreamHTTPError(UpstreamError):
    """The provider answered with an error status; its status is kept (a 429 stays a 429)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        provider: str,
        type_: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            f"{provider}: {message}", param=param, code=_identifier(code), headers=headers
        )
        self.status_code = status if 400 <= status < 600 else 502
        self.type = _identifier(type_) or _TYPE_BY_STATUS.get(status, "upstream_error")
        self.retryable = status in RETRYABLE_STATUSES
        self.provider = provider

    @property
    def error_type(self) -> str:
        return self.type

    @classmethod
    def from_body(
        cls, status: int, body: bytes, *, provider: str, retry_after: str | None = None
    ) -> UpstreamHTTPError:
        """Keep only the provider's message/type/param/code: never echo the raw body."""
        message, type_, param, code = f"upstream answered HTTP {status}", None, None, None
        try:
            err = orjson.loads(body).get("error")
        except (orjson.JSONDecodeError, AttributeError):
            err = None
        if isinstance(err, dict):
            message = str(err.get("message") or message)
            type_ = err.get("type") if isinstance(err.get("type"), str) else None
            param = err.get("param") if isinstance(err.get("param"), str) else None
            code = err.get("code") if isinstance(err.get("code"), str) else None
        elif isinstance(err, str):
            message = err
        headers = {"retry-after": retry_after} if retry_after else None
        return cls(
            status, message, provider=provider, type_=type_, param=param, code=code, headers=headers
        )
