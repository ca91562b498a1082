"""The gateway's image, built and run for real (Docker engine, `--network host`, loopback only).

The image is built as CI builds it (tests/deploy/image.py: debootstrapped base, wheelhouse,
`--network none`), migrates a fresh PostgreSQL database with `gateway db upgrade`, serves the
demo config with its built-in simulator (ports moved to free ones, the file mounted read-only),
answers the `openai` SDK in JSON and SSE, and on `docker stop` (SIGTERM to PID 1) finishes the
streams in flight and writes every answered request's ledger row before it exits.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.deploy import image
from tests.support import free_port

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
IN_FLIGHT = 12  # streams open when SIGTERM arrives
STREAM_TOKENS = 300  # ≈ 1.4 s at the simulated H100's 4.6 ms a token
STOP_TIMEOUT_S = 45  # the image's documented grace: uvicorn's 30 s drain + the flush


@dataclass
class Container:
    name: str
    port: int
    db_url: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def demo_config_on(sim_port: int) -> str:
    """config/demo.yaml with its simulator moved off 8001 (the host's port space is shared)."""
    text = (ROOT / "config" / "demo.yaml").read_text()
    moved = text.replace("127.0.0.1:8001", f"127.0.0.1:{sim_port}").replace(
        "port: 8001", f"port: {sim_port}"
    )
    assert "8001" not in moved and moved.count(str(sim_port)) >= 5
    return moved


def pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _rows(url: str, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        found = await conn.fetch(
            "SELECT id, status_code, provider, requested_model, stream, prompt_tokens, "
            "completion_tokens, cost_usd, ttft_ms FROM requests WHERE id = ANY($1::text[])",
            ids,
        )
    finally:
        await conn.close()
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for r in found:
        out[r["id"]].append(dict(r))
    return out


async def _count(url: str) -> int:
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM requests"))
    finally:
        await conn.close()


def wait_rows(url: str, ids: list[str], timeout: float = 10) -> dict[str, list[dict[str, Any]]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = asyncio.run(_rows(url, ids))
        if all(rows.values()) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def docker_run_args(tmp_path: Path, port: int, sim_port: int, db_url: str) -> list[str]:
    config = tmp_path / "gateway.yaml"
    config.write_text(demo_config_on(sim_port))
    config.chmod(0o644)  # read by the image's unprivileged user
    return [
        "--network",
        "host",
        "--volume",
        f"{config}:/etc/gateway/gateway.yaml:ro",
        "--env",
        "GATEWAY_CONFIG=/etc/gateway/gateway.yaml",
        "--env",
        f"GATEWAY_DATABASE_URL={db_url}",
        "--env",
        f"GATEWAY_PORT={port}",
    ]


def wait_healthy(name: str, timeout: float = 90) -> None:
    """Docker's own view, from the image's HEALTHCHECK on /health."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = json.loads(image.docker("inspect", "--format", "{{json .State}}", name))
        if not state["Running"]:
            logs = image.logs(name)
            pytest.fail(f"the container exited ({state['ExitCode']}):\n{logs[-3000:]}")
        if state.get("Health", {}).get("Status") == "healthy":
            return
        time.sleep(0.5)
    pytest.fail(f"not healthy within {timeout} s:\n{image.logs(name)}")


@pytest.fixture()
def container(gateway_image: str, fresh_pg_url: str, tmp_path: Path) -> Iterator[Container]:
    port, sim_port = free_port(), free_port()
    args = docker_run_args(tmp_path, port, sim_port, fresh_pg_url)
    migrated = image.docker("run", "--rm", *args, gateway_image, "db", "upgrade", timeout=120)
    assert "ledger schema is up to date" in migrated
    name = f"gw-test-{uuid.uuid4().hex[:10]}"
    image.docker("run", "--detach", "--name", name, *args, gateway_image)
    try:
        wait_healthy(name)
        yield Container(name, port, fresh_pg_url)
    finally:
        image.docker("rm", "--force", "--volumes", name, check=False)


def _inside(name: str, code: str) -> str:
    return image.docker("exec", name, "python3", "-c", code).strip()


def check_image_facts(c: Container) -> None:
    """Non-root, `gateway serve` as PID 1, no compiler anywhere on PATH."""
    uid, pid1 = _inside(
        c.name, "import os; print(os.getuid()); print(open('/proc/1/cmdline').read())"
    ).split("\n", 1)
    assert uid == "10001"
    argv = [a for a in pid1.split("\0") if a]
    assert argv[-1] == "serve" and argv[-2].endswith("/gateway"), argv
    compilers = ("gcc", "cc", "c++", "g++", "clang", "tcc", "make")
    found = _inside(c.name, f"import shutil; print([x for x in {compilers!r} if shutil.which(x)])")
    assert found == "[]", found


def chat_json_and_stream(c: Container) -> tuple[str, str]:
    client = OpenAI(base_url=c.base_url, api_key="unused", max_retries=0)
    msgs: Any = [{"role": "user", "content": "Hello from the container test"}]
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=msgs)
    answer = raw.parse()
    assert answer.choices[0].message.content and answer.usage is not None
    json_id = raw.headers["x-request-id"]
    assert raw.headers["x-gateway-provider"] == "openai"

    raw_stream = client.chat.completions.with_raw_response.create(
        model="llama-3.1-8b",
        messages=msgs,
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=20,
    )
    stream_id = raw_stream.headers["x-request-id"]
    chunks = list(raw_stream.parse())
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices]
    usage = chunks[-1].usage
    assert text and finishes.count("length") == 1 and usage is not None
    assert usage.completion_tokens == 20

    rows = wait_rows(c.db_url, [json_id, stream_id])
    (j,) = rows[json_id]
    (s,) = rows[stream_id]
    assert (j["status_code"], j["provider"], j["stream"]) == (200, "openai", False)
    assert j["prompt_tokens"] == answer.usage.prompt_tokens and j["cost_usd"] > 0
    assert (s["status_code"], s["provider"], s["stream"]) == (200, "local-llama", True)
    assert s["completion_tokens"] == 20 and s["ttft_ms"] is not None
    return json_id, stream_id


async def _one_stream(client: AsyncOpenAI, started: asyncio.Event) -> tuple[str, int, bool]:
    raw = await client.chat.completions.with_raw_response.create(
        model="llama-3.1-8b",
        messages=[{"role": "user", "content": f"in flight {uuid.uuid4().hex}"}],
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=STREAM_TOKENS,
        extra_body={"ignore_eos": True},  # vLLM's: exactly max_tokens tokens
    )
    tokens, finished = 0, False
    async for chunk in raw.parse():
        started.set()
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
        if chunk.choices and chunk.choices[0].finish_reason is not None:
            finished = True
    return raw.headers["x-request-id"], tokens, finished


async def stop_with_streams_in_flight(c: Container) -> tuple[list[tuple[str, int, bool]], float]:
    """Open IN_FLIGHT long streams, `docker stop` once each has its first chunk."""
    client = AsyncOpenAI(base_url=c.base_url, api_key="unused", max_retries=0, timeout=60)
    events = [asyncio.Event() for _ in range(IN_FLIGHT)]
    tasks = [asyncio.create_task(_one_stream(client, e)) for e in events]
    all_started: asyncio.Future[Any] = asyncio.ensure_future(
        asyncio.gather(*(e.wait() for e in events))
    )
    pending: list[asyncio.Future[Any]] = [all_started, *tasks]
    await asyncio.wait(pending, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    ended = [t for t in tasks if t.done()]
    if ended or not all_started.done():
        all_started.cancel()
        for t in tasks:
            t.cancel()
        if ended:
            ended[0].result()  # raises what went wrong
        pytest.fail("the streams did not all start within 30 s")
    started = time.monotonic()
    stop = await asyncio.create_subprocess_exec("docker", "stop", "-t", str(STOP_TIMEOUT_S), c.name)
    results = await asyncio.gather(*tasks)
    assert await stop.wait() == 0
    await client.close()
    return results, time.monotonic() - started


def test_image_serves_the_demo_and_keeps_every_row_through_docker_stop(
    container: Container,
) -> None:
    check_image_facts(container)
    first_ids = chat_json_and_stream(container)

    results, stop_s = asyncio.run(stop_with_streams_in_flight(container))

    state = json.loads(image.docker("inspect", "--format", "{{json .State}}", container.name))
    logs = image.logs(container.name)
    # exit 0 within the grace period: drained and flushed, not SIGKILLed (137)
    assert state["ExitCode"] == 0 and stop_s < STOP_TIMEOUT_S, (state, logs[-2000:])
    assert "Application shutdown complete" in logs
    # every stream that was in flight at SIGTERM was answered to the end
    assert [(n, done) for _, n, done in results] == [(STREAM_TOKENS, True)] * IN_FLIGHT
    answered = [i for i, _, _ in results]
    rows = asyncio.run(_rows(container.db_url, answered))  # no waiting: the process is gone
    assert {i: len(r) for i, r in rows.items()} == {i: 1 for i in answered}
    for (row,) in rows.values():
        assert (row["status_code"], row["stream"]) == (200, True)
        assert row["completion_tokens"] == STREAM_TOKENS
    assert asyncio.run(_count(container.db_url)) == len(first_ids) + IN_FLIGHT
