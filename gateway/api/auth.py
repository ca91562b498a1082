"""Authentication at the edge (pure ASGI, installed only when `auth.master_key` is set).

    /health, /health/ready      open (load balancers and orchestrators probe them)
    /metrics                    open, or `Bearer <auth.metrics_token>` when one is configured
    /admin/...                  the master key only (a virtual key gets 403)
    /dashboard, /dashboard/...  the master key only
    everything else             the master key or a usable virtual key

The credential is `Authorization: Bearer <key>`, or Anthropic's `x-api-key: <key>` on
/v1/messages (where the Anthropic SDK sends it). A browser cannot put a bearer header on a
page it navigates to, so the dashboard and the reports it reads (GET only: `BROWSER_READABLE`)
also take HTTP Basic with the master key as the password (any user name); their 401 carries a
Basic challenge, so the browser asks once and then sends the credential itself — the page's
script never holds the key. Basic is never taken on anything that changes state: a browser
sends it on its own, to cross-site form posts too. Every bad credential gets the same 401 body.
The caller's `Principal` goes on in `scope["gateway.principal"]`; a refused generation request
still gets its ledger row. The credential itself is never logged, stored or echoed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.errors import error_body
from gateway.api.http import send_error
from gateway.api.routes import GENERATION
from gateway.config import AuthConfig
from gateway.errors import GatewayError
from gateway.governance.errors import PermissionDenied, unauthenticated
from gateway.governance.records import MASTER
from gateway.serving.outcome import RequestContext
from gateway.state import AppState

OPEN_PATHS = frozenset({"/health", "/health/ready"})
# What the dashboard's page loads and reads; Basic is taken here, for GET and HEAD only.
BROWSER_READABLE = frozenset({"/dashboard", "/admin/usage", "/admin/gpu"})
BASIC_CHALLENGE = {"www-authenticate": 'Basic realm="gateway dashboard", charset="UTF-8"'}
_BEARER = b"bearer "
_BASIC = b"basic "


def credential(headers: list[tuple[bytes, bytes]], path: str) -> bytes | None:
    api_key = None
    for k, v in headers:
        if k == b"authorization":
            if v[:7].lower() == _BEARER:
                return v[7:].strip()
            return b""  # another scheme: malformed, answered like any bad key
        if k == b"x-api-key":
            api_key = v.strip()
    return api_key if path == "/v1/messages" else None


def browser_readable(scope: Scope) -> bool:
    path: str = scope["path"]
    return scope["method"] in ("GET", "HEAD") and (
        path in BROWSER_READABLE or path.startswith("/dashboard/")
    )


def basic_password(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The password of an `Authorization: Basic` header (the user name is ignored)."""
    for k, v in headers:
        if k == b"authorization" and v[:6].lower() == _BASIC:
            try:
                decoded = base64.b64decode(v[6:].strip(), validate=True)
            except (binascii.Error, ValueError):
                return b""
            return decoded.partition(b":")[2]
    return None


def _same(a: bytes | None, b: bytes | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a, b)


class AuthMiddleware:
    def __init__(self, app: ASGIApp, gw: AppState, config: AuthConfig) -> None:
        assert config.master_key is not None and gw.governor is not None
        self.app = app
        self.gw = gw
        self.directory = gw.governor.directory
        self.master = config.master_key.encode()
        self.metrics_token = config.metrics_token.encode() if config.metrics_token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        token = credential(scope["headers"], path)
        if path == "/metrics" and self.metrics_token is None:
            await self.app(scope, receive, send)
            return
        if path == "/metrics":
            if _same(token, self.metrics_token) or _same(token, self.master):
                await self.app(scope, receive, send)
            else:
                await self._refuse(scope, send, unauthenticated(), "invalid")
            return
        if browser_readable(scope) and token == b"":
            token = basic_password(scope["headers"])
        if token is None:
            await self._refuse(scope, send, unauthenticated(), "missing")
            return
        if _same(token, self.master):
            principal = MASTER
        else:
            found = await self.directory.authenticate(token.decode("latin-1"))
            if found is None:
                await self._refuse(scope, send, unauthenticated(), "invalid")
                return
            principal = found
        if path.startswith(("/admin", "/dashboard")) and not principal.is_master:
            forbidden = PermissionDenied("The admin API and the dashboard need the master key.")
            await self._refuse(scope, send, forbidden, "forbidden")
            return
        scope["gateway.principal"] = principal
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, error: GatewayError, reason: str) -> None:
        self.gw.metrics.auth_failures.labels(reason).inc()
        path = scope["path"]
        if error.status_code == 401 and browser_readable(scope):
            error.headers = {**error.headers, **BASIC_CHALLENGE}
        codec = GENERATION.get(path)
        if codec is not None:  # the ledger has a row for every API request, refusals too
            ctx = RequestContext(scope["gateway.request_id"], scope["gateway.started"], time.time())
            self.gw.pipeline.reject(ctx, codec.endpoint, None, error)
        await send_error(send, error.status_code, error_body(path, error), error)
