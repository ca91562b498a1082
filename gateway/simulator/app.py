"""`create_app()`: the simulator's ASGI app, i.e. the route table and the dispatch around it.

One process simulates several independent upstreams. The root (`/v1/...`, `/metrics`,
`/health`) is the default profile's server; `/{profile}/v1/...` (and `/{profile}/metrics`,
`/{profile}/health`) is that profile's server, and `/{profile}@{replica}/...` another server
with the same profile (two vLLM replicas, say). Each has its own batch, queue and metrics; the
root and `/{default profile}` are the same server. `/sim/...` is the control API
(`control.py`). Every error is OpenAI's envelope, except on Gemini's endpoints
(`gemini.py`), which answer in Google's, and Anthropic's (`anthropic.py`), in Anthropic's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from gateway.simulator import anthropic, gemini, handlers, responses
from gateway.simulator.asgi import Request, Scope, now, read_body, respond_error
from gateway.simulator.control import CONTROL_ROUTES
from gateway.simulator.engine import Receive, Send
from gateway.simulator.plans import RequestError
from gateway.simulator.profiles import PROFILES, Profile
from gateway.simulator.quality import DEFAULT_QUALITY, Quality
from gateway.simulator.state import SimState
from gateway.simulator.upstream import Upstream

Handler = Callable[[SimState, Upstream, Request], Awaitable[None]]

# The upstream endpoints, relative to an upstream's prefix (vLLM's and OpenAI's paths).
ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", "/v1/chat/completions"): handlers.chat_completions,
    ("POST", "/v1/completions"): handlers.completions,
    ("POST", "/v1/embeddings"): handlers.embeddings,
    ("POST", anthropic.PATH): anthropic.messages,  # Anthropic's Messages API
    ("POST", responses.PATH): responses.responses,  # OpenAI's Responses API
    ("GET", "/v1/models"): handlers.models,
    ("GET", "/metrics"): handlers.metrics,
    ("GET", "/health"): handlers.health,
}
# Endpoints whose path carries a parameter, matched by prefix: Gemini's
# `/v1beta/models/{model}:generateContent` and `:streamGenerateContent`.
PREFIX_ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", gemini.PATH_PREFIX): gemini.generate,
}
_PATHS = {path for _, path in ROUTES}
_CONTROL_PATHS = {path for _, path in CONTROL_ROUTES}


class SimulatorApp:
    """The raw ASGI callable; `state` is public so tests and the server can inspect it."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        body = await read_body(receive) if method in ("POST", "PUT", "PATCH") else b""
        req = Request(scope, receive, send, body, now())
        if path.startswith("/sim/"):
            control = CONTROL_ROUTES.get((method, path))
            if control is None:
                await _not_routed(send, method, path, path in _CONTROL_PATHS)
                return
            await control(self.state, req)
            return
        upstream, sub = self._split(path)
        if upstream is None:
            known = ", ".join(sorted(self.state.profiles))
            await respond_error(send, 404, f"no simulated upstream at {path!r}; profiles: {known}")
            return
        handler = ROUTES.get((method, sub)) or _prefix_route(method, sub)
        if handler is None:
            await _not_routed(send, method, path, sub in _PATHS)
            return
        try:
            await handler(self.state, upstream, req)
        except RequestError as exc:
            await respond_error(send, 400, exc.message, exc.param)

    def _split(self, path: str) -> tuple[Upstream | None, str]:
        """`/v1/x` → (default, `/v1/x`); `/name/v1/x` → (upstream `name`, `/v1/x`)."""
        if path.startswith(("/v1/", "/v1beta/")) or path in ("/metrics", "/health"):
            return self.state.default, path
        segment, _, rest = path[1:].partition("/")
        return self.state.upstream(segment), "/" + rest


def _prefix_route(method: str, sub: str) -> Handler | None:
    for (m, prefix), handler in PREFIX_ROUTES.items():
        if m == method and sub.startswith(prefix):
            return handler
    return None


async def _not_routed(send: Send, method: str, path: str, path_exists: bool) -> None:
    if path_exists:
        await respond_error(send, 405, f"method {method} is not allowed on {path}")
    else:
        await respond_error(send, 404, f"no route for {method} {path}")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message: Mapping[str, Any] = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(
    default_profile: str = "instant",
    *,
    profiles: Mapping[str, Profile] = PROFILES,
    seed: int = 0,
    quality: Quality = DEFAULT_QUALITY,
) -> SimulatorApp:
    """The simulator as an ASGI app; `default_profile` serves the root paths.

    `profiles` replaces the registry (tests add a profile with a small batch, say); `seed` makes
    rate-based fault draws and which answers agree repeatable; `quality` is the per-model,
    per-task agreement table (`quality.py`). Raises ValueError for an unknown default profile.
    """
    return SimulatorApp(SimState(profiles, default_profile, seed, quality))
