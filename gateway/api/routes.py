"""The route table: path → handler, nothing else.

The generation endpoints (POST /v1/chat/completions, /v1/completions, /v1/embeddings) are
served raw by `api/dispatch.py`'s `HOT_ROUTES`; these are the Starlette ones.
"""

from starlette.routing import Route

from gateway.api import explain, info, messages

ROUTES = [
    Route("/v1/messages", messages.messages, methods=["POST"]),
    Route("/v1/route/explain", explain.explain, methods=["POST"]),
    Route("/v1/models", info.models, methods=["GET"]),
    Route("/health", info.health, methods=["GET"]),
    Route("/health/ready", info.ready, methods=["GET"]),
    Route("/metrics", info.metrics, methods=["GET"]),
]
