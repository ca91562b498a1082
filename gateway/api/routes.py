"""The route table: path → handler, nothing else.

The generation endpoints are served raw by `api/dispatch.py` through their codecs
(`generation(limits)`, built once per app with the configured body limits; `GENERATION` is the
same table with the defaults, for what only needs a path's envelope); everything else is a
Starlette route.
"""

from starlette.routing import Route

from gateway.api import admin, explain, finance, info, responses
from gateway.api.openapi import document as openapi_document
from gateway.codecs.anthropic import MessagesCodec
from gateway.codecs.base import Codec
from gateway.codecs.openai import OpenAICodec
from gateway.codecs.responses import ResponsesCodec
from gateway.protocol.limits import DEFAULT_LIMITS, BodyLimits


def generation(limits: BodyLimits) -> dict[str, Codec]:
    return {
        "/v1/chat/completions": OpenAICodec("chat", limits),
        "/v1/completions": OpenAICodec("completions", limits),
        "/v1/embeddings": OpenAICodec("embeddings", limits),
        "/v1/messages": MessagesCodec(limits),
        "/v1/responses": ResponsesCodec(limits),
    }


GENERATION: dict[str, Codec] = generation(DEFAULT_LIMITS)

ROUTES = [
    Route("/v1/route/explain", explain.explain, methods=["POST"]),
    Route("/v1/models", info.models, methods=["GET"]),
    Route("/v1/responses/{response_id}", responses.retrieve, methods=["GET"]),
    Route("/v1/responses/{response_id}", responses.remove, methods=["DELETE"]),
    Route("/v1/responses/{response_id}/input_items", responses.input_items, methods=["GET"]),
    Route("/health", info.health, methods=["GET"]),
    Route("/health/ready", info.ready, methods=["GET"]),
    Route("/metrics", info.metrics, methods=["GET"]),
    Route("/openapi.json", openapi_document, methods=["GET"]),
    Route("/admin/usage", finance.usage, methods=["GET"]),
    Route("/admin/gpu", finance.gpu, methods=["GET"]),
    Route("/admin/teams", admin.create_team, methods=["POST"]),
    Route("/admin/teams", admin.list_teams, methods=["GET"]),
    Route("/admin/teams/{name}", admin.get_team, methods=["GET"]),
    Route("/admin/teams/{name}", admin.update_team, methods=["PATCH"]),
    Route("/admin/teams/{name}", admin.delete_team, methods=["DELETE"]),
    Route("/admin/keys", admin.create_key, methods=["POST"]),
    Route("/admin/keys", admin.list_keys, methods=["GET"]),
    Route("/admin/keys/{key_id}", admin.get_key, methods=["GET"]),
    Route("/admin/keys/{key_id}", admin.update_key, methods=["PATCH"]),
    Route("/admin/keys/{key_id}", admin.revoke_key, methods=["DELETE"]),
]
