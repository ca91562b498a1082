"""schemathesis against the running gateway: its own /openapi.json drives generated requests
(valid and invalid bodies, headers) at a real server on loopback with the simulator behind
every provider kind, and no answer may be a 5xx or stray from what the document says.

`model` is drawn from the configured models (and one unknown name), so the generated bodies
reach every adapter's translation rather than stopping at the 404. Bounded: a few dozen
examples an operation, well under a minute on this machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from prometheus_client import CollectorRegistry
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.app import create_app
from gateway.config import parse_config
from gateway.ledger.migrate import upgrade
from tests.integration.test_anthropic_chat import claude_config
from tests.integration.test_gemini import gemini_config
from tests.support import ServerThread, gateway_server

MODELS = [
    "gpt-4o-mini",
    "llama-3.1-8b",
    "claude-haiku",
    "gemini-flash",
    "text-embedding-3-small",
    "no-such-model",
]
EXAMPLES = 25  # an operation and mode
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed(simulator: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ledger = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fuzz') / 'ledger.db'}"
    upgrade(ledger)
    raw = claude_config(simulator.url, ledger).model_dump()
    gem = gemini_config(simulator.url, ledger).model_dump()
    raw["providers"] = [*raw["providers"], *(p for p in gem["providers"] if p["kind"] == "gemini")]
    raw["models"] = [*raw["models"], *(m for m in gem["models"] if m["name"] == "gemini-flash")]
    raw["reliability"] = {"max_attempts": 1}
    config = parse_config(raw, source="test", environ={})
    server = gateway_server(create_app(config, CollectorRegistry()))
    try:
        yield server.url
    finally:
        server.stop()


def operations(url: str) -> list[Any]:
    loaded = schemathesis.openapi.from_url(f"{url}/openapi.json")
    found = []
    for result in loaded.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the document itself is broken
        found.append(result.ok())
    return found


# schemathesis' own pytest plugin (`from_fixture` / `parametrize`) fails on pytest 9.2
# (`Function._nodeid`), so each operation's strategy is driven by hypothesis directly.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_gateway_keeps_its_own_contract(fuzzed: str, mode: GenerationMode) -> None:
    failures: list[str] = []
    seen: Counter[tuple[str, int]] = Counter()
    for op in operations(fuzzed):

        @given(case=op.as_strategy(generation_mode=mode), model=st.sampled_from(MODELS))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same examples every run: CI is not a lottery
            database=None,
        )
        def run(case: Any, model: str) -> None:
            if isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
                case.body["model"] = model
            response = case.call_and_validate(checks=CHECKS)
            seen[case.operation.label, response.status_code] += 1

        try:
            run()
        except Unsatisfiable:  # an operation with no inputs has no invalid ones
            assert mode == GenerationMode.NEGATIVE
        except Exception as e:  # collect every operation's failure, then report them all
            failures.append(f"{op.label}: {e}")
    assert not failures, "\n\n".join(failures)
    assert not [k for k in seen if k[1] >= 500]
    if mode == GenerationMode.POSITIVE:  # valid bodies got through to the upstreams
        for path in ("/v1/chat/completions", "/v1/messages", "/v1/embeddings"):
            assert seen[f"POST {path}", 200] > 0, seen
    else:
        assert sum(n for (label, status), n in seen.items() if status == 400) > 50, seen


def test_the_document_describes_every_endpoint(fuzzed: str) -> None:
    doc = httpx.get(f"{fuzzed}/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/responses",
        "/v1/embeddings",
        "/v1/messages",
        "/v1/route/explain",
        "/v1/models",
        "/health",
        "/health/ready",
        "/metrics",
        "/openapi.json",
    }
    chat = doc["components"]["schemas"]["ChatCompletionRequest"]
    assert {"model", "messages"} <= set(chat["required"])
    assert chat["additionalProperties"] is True  # unknown fields are forwarded
    messages = doc["components"]["schemas"]["MessagesRequestModel"]
    assert {"model", "max_tokens", "messages"} <= set(messages["required"])
    role = doc["components"]["schemas"]["MessageParam"]["properties"]["role"]
    assert set(role["enum"]) == {"user", "assistant", "system"}
    assert "gpt-4o-mini" in doc["info"]["description"]
