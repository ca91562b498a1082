"""GET /openapi.json: the API as the gateway checks it, generated from the wire models.

Request bodies are the JSON Schemas of the pydantic models in `protocol/` that validate them —
the fields the gateway reads or that upstreams would choke on, every other field allowed
(`additionalProperties`) and forwarded — so the document cannot drift from the checks. Rules
that span fields (`stream_options` only with `stream`, Anthropic's alternating turns) and the
shape limits (`limits:` in the config; the numbers are in the descriptions) are said in words.
Answers are described at the same level: the error envelope of each API exactly, successful
bodies as objects (they are the upstream's or the API's documented shapes).
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import Response

from gateway.protocol.anthropic import MessagesRequestModel
from gateway.protocol.limits import BodyLimits
from gateway.protocol.openai import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from gateway.protocol.responses import ResponseCreate
from gateway.state import AppState

REF = "#/components/schemas/{model}"

OPENAI_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
ANTHROPIC_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}
_OBJECT = {"type": "object"}
# one server-sent event (what a text/event-stream schema describes, event by event): OpenAI's
# `data:` lines carry a chunk or [DONE], Anthropic's a named event's JSON
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(envelope: str) -> dict[str, Any]:
    ref = {"$ref": REF.format(model=envelope)}
    return {
        "4XX": _json(
            ref,
            "Refused: a bad body, an unknown model, a limit (400, 404, 405, "
            "413, 431), or an upstream's own 4xx/429 passed on",
        ),
        "5XX": _json(ref, "An upstream failed (502, 503, 504, 529) or the gateway did (500)"),
    }


def _generation(
    model: type[BaseModel], summary: str, envelope: str, streams: bool, headers: list[str]
) -> dict[str, Any]:
    ok: dict[str, Any] = {"application/json": {"schema": _OBJECT}}
    if streams:
        ok["text/event-stream"] = {"schema": SSE_EVENT}
    return {
        "post": {
            "summary": summary,
            "parameters": [_HEADERS[h] for h in headers],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}
                },
            },
            "responses": {
                "200": {"description": "The answer (SSE when `stream` is true)", "content": ok},
                **_errors(envelope),
            },
        }
    }


_HEADERS: dict[str, dict[str, Any]] = {
    "x-gateway-min-tier": {
        "name": "x-gateway-min-tier",
        "in": "header",
        "required": False,
        "description": "Routes skip models below this quality tier.",
        "schema": {"type": "integer"},
    },
    "x-gateway-task": {
        "name": "x-gateway-task",
        "in": "header",
        "required": False,
        "description": "The task this request's quality evidence counts under (README: "
        "quality evidence).",
        "schema": {"type": "string", "maxLength": 100},
    },
    "anthropic-beta": {
        "name": "anthropic-beta",
        "in": "header",
        "required": False,
        "description": "Forwarded to an Anthropic model.",
        "schema": {"type": "string"},
    },
}


def _get(summary: str, content: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
    return {
        "get": {
            "summary": summary,
            "responses": {"200": {"description": summary, "content": content}, **(extra or {})},
        }
    }


def build_document(model_names: list[str], limits: BodyLimits) -> dict[str, Any]:
    """The OpenAPI 3.1 document of this gateway (its configured model names included)."""
    models: list[type[BaseModel]] = [
        ChatCompletionRequest,
        CompletionRequest,
        EmbeddingRequest,
        MessagesRequestModel,
        ResponseCreate,
    ]
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["OpenAIError"] = OPENAI_ERROR
    schemas["AnthropicError"] = ANTHROPIC_ERROR
    oa_head = ["x-gateway-min-tier", "x-gateway-task"]
    paths: dict[str, Any] = {
        "/v1/chat/completions": _generation(
            ChatCompletionRequest, "OpenAI chat completions", "OpenAIError", True, oa_head
        ),
        "/v1/completions": _generation(
            CompletionRequest, "OpenAI text completions", "OpenAIError", True, oa_head
        ),
        "/v1/embeddings": _generation(
            EmbeddingRequest, "OpenAI embeddings", "OpenAIError", False, oa_head
        ),
        "/v1/messages": _generation(
            MessagesRequestModel,
            "Anthropic Messages",
            "AnthropicError",
            True,
            [*oa_head, "anthropic-beta"],
        ),
        "/v1/responses": _generation(
            ResponseCreate, "OpenAI Responses", "OpenAIError", True, oa_head
        ),
        "/v1/route/explain": _generation(
            ChatCompletionRequest,
            "The routing decision for a chat body, without calling any upstream",
            "OpenAIError",
            False,
            oa_head,
        ),
        "/v1/models": _get("The configured models and routes", {"application/json": _JSON_OBJ}),
        "/health": _get("Liveness", {"application/json": _JSON_OBJ}),
        "/health/ready": _get(
            "Readiness: the database answers",
            {"application/json": _JSON_OBJ},
            {"503": _json(_OBJECT, "Not ready (the database does not answer)")},
        ),
        "/metrics": _get("Prometheus metrics", {"text/plain": {"schema": {"type": "string"}}}),
        "/openapi.json": _get("This document", {"application/json": _JSON_OBJ}),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LLM cost & latency gateway",
            "version": "1",
            "description": (
                "OpenAI- and Anthropic-compatible endpoints in front of the configured "
                f"models ({', '.join(model_names)}). Limits: JSON nesting "
                f"{limits.max_json_depth} levels, {limits.max_messages} messages, "
                f"{limits.max_content_parts} content parts a message (400 beyond); header "
                "and body sizes as configured (431, 413)."
            ),
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


_JSON_OBJ = {"schema": _OBJECT}


async def document(request: Request) -> Response:
    gw: AppState = request.state.gw
    doc = build_document(gw.router.model_names, gw.config.limits)
    return Response(orjson.dumps(doc), media_type="application/json")
