"""Run the alembic migrations shipped inside the package (`gateway db upgrade`).

alembic is imported only when a migration runs: `gateway serve` checks the schema with one
SELECT against `SCHEMA_HEAD`, which keeps ~20 MiB of alembic out of every serving process.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

# The newest revision in migrations/versions; tests/unit/test_migrations.py keeps it honest.
SCHEMA_HEAD = "0007"

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would mangle a '%' in a password
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Blocking: call it before the server's event loop starts (or from a thread)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def current_revision(url: str) -> str | None:
    """The database's revision (None when it has never been migrated)."""
    from gateway.ledger.db import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            try:
                row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
            except DBAPIError:  # no alembic_version table yet
                return None
            return None if row is None else str(row[0])
    finally:
        await engine.dispose()
