"""The route table: path → handler, nothing else.

The generation endpoints are served raw by `api/dispatch.py` through their codecs
(`GENERATION`); everything else is a Starlette route.
"""

from starlette.routing import Route

from gateway.api import explain, info
from gateway.codecs.anthropic import MessagesCodec
from gateway.codecs.base import Codec
from gateway.codecs.openai import OpenAICodec

GENERATION: dict[str, Codec] = {
    "/v1/chat/completions": OpenAICodec("chat"),
    "/v1/completions": OpenAICodec("completions"),
    "/v1/embeddings": OpenAICodec("embeddings"),
    "/v1/messages": MessagesCodec(),
}

ROUTES = [
    Route("/v1/route/explain", explain.explain, methods=["POST"]),
    Route("/v1/models", info.models, methods=["GET"]),
    Route("/health", info.health, methods=["GET"]),
    Route("/health/ready", info.ready, methods=["GET"]),
    Route("/metrics", info.metrics, methods=["GET"]),
]
