"""Fixtures for the deployment tests: the Docker engine and image, fresh PostgreSQL databases.

Tests marked `container` need a Docker engine. In CI (`CI` set, as `.ci/run` runs) a missing
engine is a failure. Elsewhere those tests are deselected, and the run's summary says so in
one line — a developer machine without dockerd still runs everything else.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest

from tests.deploy import image

PG_ADMIN_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
_NOTICE = pytest.StashKey[str]()
_STEPS = pytest.StashKey[list[image.Step]]()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [i for i in items if i.get_closest_marker("container") is not None]
    if not marked or in_ci():
        return  # in CI the `docker_engine` fixture fails loudly instead
    problem = image.engine_problem()
    if problem is None:
        return
    config.hook.pytest_deselected(items=marked)
    items[:] = [i for i in items if i.get_closest_marker("container") is None]
    config.stash[_NOTICE] = (
        f"deselected {len(marked)} container test(s): {problem} "
        "(CI starts dockerd and runs them; see .ci/run)"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    notice = config.stash.get(_NOTICE, None)
    if notice:
        terminalreporter.write_sep("-", "container tests", yellow=True)
        terminalreporter.write_line(notice)
    steps = config.stash.get(_STEPS, None)
    if steps:
        terminalreporter.write_sep("-", "container image")
        for s in steps:
            how = "cached" if s.cached else "built"
            terminalreporter.write_line(f"{s.name}: {how} in {s.seconds:.1f} s")


@pytest.fixture(scope="session")
def docker_engine() -> None:
    problem = image.engine_problem()
    if problem is not None:
        pytest.fail(f"the container tests need a Docker engine: {problem}", pytrace=False)


@pytest.fixture(scope="session")
def gateway_image(docker_engine: None, request: pytest.FixtureRequest) -> str:
    """The image, built as CI builds it (offline, on the debootstrapped base)."""
    base, base_step = image.base_image()
    wheels, wheel_step = image.wheelhouse()
    tag = f"{image.IMAGE_REPO}:test"
    build_step = image.build_image(tag, base, wheels)
    request.config.stash[_STEPS] = [base_step, wheel_step, build_step]
    return tag


def _pg(sql: str, dsn: str = PG_ADMIN_DSN) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture()
def fresh_pg_url() -> Iterator[str]:
    """An empty, never-migrated PostgreSQL database (SQLAlchemy URL), dropped afterwards."""
    name = f"gw_deploy_{uuid.uuid4().hex[:10]}"
    _pg(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
