"""Refusals governance makes: who may not do what (403), too fast (429), over budget (429).

Bodies are OpenAI's envelope, with the details a client or an operator needs beside the
message; the Anthropic codec renders the same errors in its own envelope (403 →
`permission_error`, 429 → `rate_limit_error`). Nothing here names a secret: keys appear by id.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import AuthenticationError, GatewayError

# One answer for every bad credential — missing, malformed, unknown, expired, revoked — so a
# caller cannot tell which keys exist.
UNAUTHENTICATED = (
    "Invalid or missing API key. Send a valid key as `Authorization: Bearer <key>` "
    "(or `x-api-key: <key>` on /v1/messages)."
)


def unauthenticated() -> AuthenticationError:
    return AuthenticationError(UNAUTHENTICATED)


class PermissionDenied(GatewayError):
    status_code = 403
    type = "permission_error"
    code = "permission_denied"


class RateLimited(GatewayError):
    """OpenAI's shape: `type` names what ran out ("requests" or "tokens")."""

    status_code = 429
    code = "rate_limit_exceeded"
    retryable = True

    def __init__(self, message: str, kind: str, headers: dict[str, str]) -> None:
        super().__init__(message, headers=headers)
        self.type = kind


class BudgetExceeded(GatewayError):
    status_code = 429
    type = "budget_exceeded"
    code = "budget_exceeded"

    def __init__(self, message: str, budget: dict[str, Any], headers: dict[str, str]) -> None:
        super().__init__(message, headers=headers)
        self.budget = budget

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["error"]["budget"] = self.budget
        return body
