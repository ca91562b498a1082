"""The route table: path → handler, nothing else."""

from starlette.routing import Route

from gateway.api import generate, info

ROUTES = [
    Route("/v1/chat/completions", generate.chat_completions, methods=["POST"]),
    Route("/v1/completions", generate.completions, methods=["POST"]),
    Route("/v1/embeddings", generate.embeddings, methods=["POST"]),
    Route("/v1/models", info.models, methods=["GET"]),
    Route("/health", info.health, methods=["GET"]),
    Route("/health/ready", info.ready, methods=["GET"]),
    Route("/metrics", info.metrics, methods=["GET"]),
]
