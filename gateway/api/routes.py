"""The route table: path → handler, nothing else.

The generation endpoints are served raw by `api/dispatch.py` through their codecs
(`GENERATION`); everything else is a Starlette route.
"""

from starlette.routing import Route

from gateway.api import explain, info, responses
from gateway.codecs.anthropic import MessagesCodec
from gateway.codecs.base import Codec
from gateway.codecs.openai import OpenAICodec
from gateway.codecs.responses import ResponsesCodec

GENERATION: dict[str, Codec] = {
    "/v1/chat/completions": OpenAICodec("chat"),
    "/v1/completions": OpenAICodec("completions"),
    "/v1/embeddings": OpenAICodec("embeddings"),
    "/v1/messages": MessagesCodec(),
    "/v1/responses": ResponsesCodec(),
}

ROUTES = [
    Route("/v1/route/explain", explain.explain, methods=["POST"]),
    Route("/v1/models", info.models, methods=["GET"]),
    Route("/v1/responses/{response_id}", responses.retrieve, methods=["GET"]),
    Route("/v1/responses/{response_id}", responses.remove, methods=["DELETE"]),
    Route("/v1/responses/{response_id}/input_items", responses.input_items, methods=["GET"]),
    Route("/health", info.health, methods=["GET"]),
    Route("/health/ready", info.ready, methods=["GET"]),
    Route("/metrics", info.metrics, methods=["GET"]),
]
