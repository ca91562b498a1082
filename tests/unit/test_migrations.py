import asyncio
from pathlib import Path

from gateway.ledger.migrate import SCHEMA_HEAD, current_revision, head_revision, upgrade


def test_schema_head_constant_matches_the_migration_scripts() -> None:
    assert head_revision() == SCHEMA_HEAD


def test_current_revision_before_and_after_upgrade(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    assert asyncio.run(current_revision(url)) is None
    upgrade(url)
    assert asyncio.run(current_revision(url)) == SCHEMA_HEAD
