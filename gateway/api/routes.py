"""The route table: path → handler, nothing else.

The generation endpoints are served raw by `api/dispatch.py` through their codecs
(`GENERATION`); everything else is a Starlette route.
"""

from starlette.routing import Route

from gateway.api import admin, explain, info
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
