"""Teams, keys and the caller of one request, as the rest of governance reads them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

# The ledger's api_key_id of requests made with the master key.
MASTER_KEY_ID = "master"


@dataclass(frozen=True, slots=True)
class Limits:
    """Requests and tokens per minute, USD per UTC day and month; None: no limit."""

    rpm: int | None = None
    tpm: int | None = None
    budget_usd_day: Decimal | None = None
    budget_usd_month: Decimal | None = None

    @property
    def any(self) -> bool:
        return any(
            x is not None for x in (self.rpm, self.tpm, self.budget_usd_day, self.budget_usd_month)
        )

    @property
    def has_budget(self) -> bool:
        return self.budget_usd_day is not None or self.budget_usd_month is not None


@dataclass(frozen=True, slots=True)
class Team:
    name: str
    limits: Limits
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    key_hash: str
    prefix: str  # e.g. "sk-gw-3f9a…": all that is ever shown of the secret after creation
    name: str | None
    team: str
    models: frozenset[str] | None  # model or route names it may use; None: any
    limits: Limits
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the master key (key None) or a virtual key of a team."""

    key: ApiKey | None

    @property
    def is_master(self) -> bool:
        return self.key is None

    @property
    def key_id(self) -> str:
        return MASTER_KEY_ID if self.key is None else self.key.id

    @property
    def team(self) -> str | None:
        return None if self.key is None else self.key.team


MASTER = Principal(None)
