"""Is the ledger's database at the schema this gateway writes? Checked in the background.

`gateway serve` used to refuse to start while PostgreSQL was down. The journal makes that
unnecessary: rows the database cannot take are journaled and replayed when it answers (see
writer.py), so a gateway that starts during a database outage serves and loses nothing. What
it cannot know yet is the schema; this check asks until the database answers, backing off:

- `unverified`: the database has not answered since start (rows are journaled meanwhile);
- `ok`: at `SCHEMA_HEAD`;
- `mismatch`: reachable, at another revision — rows cannot be written (they stay in the
  journal) and /health/ready says not ready, naming `gateway db upgrade`; asked again every
  few seconds, so a migration that finishes later makes the gateway ready.

A database reachable at start with the wrong schema still stops `serve` (runner.py): that is
a deployment mistake, not an outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from gateway.ledger.db import redact_url

log = logging.getLogger("gateway.ledger")

State = Literal["unverified", "ok", "mismatch"]
FIRST_RETRY_S = 0.5
MAX_RETRY_S = 15.0
MISMATCH_RETRY_S = 5.0


class SchemaCheck:
    def __init__(
        self,
        url: str,
        read_revision: Callable[[str], Awaitable[str | None]] | None = None,
        head: str | None = None,
    ) -> None:
        from gateway.ledger.migrate import SCHEMA_HEAD, current_revision

        self._url = url
        self._read = read_revision or current_revision
        self.head = head or SCHEMA_HEAD
        self.state: State = "unverified"
        self.found: str | None = None
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ledger-schema-check")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def problem(self) -> str | None:
        if self.state != "mismatch":
            return None
        return (
            f"ledger schema at {self.found or 'none'}, this gateway writes {self.head}: run "
            "`gateway db upgrade`; rows are kept in the journal until then"
        )

    def describe(self) -> str:
        if self.state == "unverified":
            return f"unverified: database unreachable since start ({self.last_error})"
        return "ok" if self.state == "ok" else f"mismatch: at {self.found}, expected {self.head}"

    async def _run(self) -> None:
        delay = FIRST_RETRY_S
        while True:
            try:
                found = await asyncio.wait_for(self._read(self._url), 10)
            except Exception as e:  # unreachable: the journal holds the rows meanwhile
                if self.last_error is None:
                    log.warning(
                        "ledger database %s unreachable (%s); serving, rows are journaled; "
                        "checking its schema in the background",
                        redact_url(self._url),
                        type(e).__name__,
                    )
                self.last_error = type(e).__name__
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_S)
                continue
            if found == self.head:
                if self.state != "unverified" or self.last_error is not None:
                    log.warning("ledger database reachable; schema %s verified", found)
                self.found, self.state = found, "ok"
                return
            if self.state != "mismatch" or found != self.found:
                self.found, self.state = found, "mismatch"
                log.error("ledger: %s", self.problem)
            # a migration may be under way (a Job running `gateway db upgrade`): ask again
            await asyncio.sleep(MISMATCH_RETRY_S)
