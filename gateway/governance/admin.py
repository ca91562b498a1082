"""Managing teams and keys: what the admin API (`/admin/...`) and the CLI (`gateway keys`,
`gateway teams`) both call. Writes go to the database; `Changes` tells the running replica
(its cache, the shared revocations) so the change applies there at once — other replicas read
it within `auth.refresh_interval_s`, a revocation at once through Redis.

What comes out (`key_view`, `team_view`) is what people may see: a key by its id and display
prefix, never its secret or hash. The secret is returned once, by `create_key`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import GatewayError, InvalidRequest, NotFound
from gateway.governance import store
from gateway.governance.keys import display_prefix, key_hash, new_key_id, new_secret
from gateway.governance.records import ApiKey, Limits, Team


class Conflict(GatewayError):
    status_code = 409
    type = "invalid_request_error"
    code = "conflict"


class Changes(Protocol):
    """The running replica's side of an admin change (the CLI passes a Redis-only one)."""

    def key_changed(self, key: ApiKey) -> None: ...

    def team_changed(self, team: Team) -> None: ...

    def team_deleted(self, name: str) -> None: ...

    async def key_revoked(self, key: ApiKey) -> None: ...


# The ledger keeps money exactly: integer picodollars on SQLite, whose 64-bit integers end at
# about 9.2 million USD. A larger budget would fail in the database, not here.
MAX_BUDGET_USD = Decimal(9_000_000)
MAX_RATE = 2**31 - 1  # the limits' INTEGER columns


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(None, ge=1, le=MAX_RATE)
    tpm: int | None = Field(None, ge=1, le=MAX_RATE)
    budget_usd_day: Decimal | None = Field(None, ge=0, le=MAX_BUDGET_USD)
    budget_usd_month: Decimal | None = Field(None, ge=0, le=MAX_BUDGET_USD)

    def limits(self) -> Limits:
        return Limits(self.rpm, self.tpm, self.budget_usd_day, self.budget_usd_month)


class TeamSpec(_Spec):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")


class TeamPatch(_Spec):
    pass


_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `15m`, `90s`."""
    m = _DURATION.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a duration like 30d, 12h, 15m or 90s")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


class KeyPatch(_Spec):
    name: str | None = Field(None, max_length=200)
    models: list[str] | None = None  # model or route names; None: any
    expires_at: datetime | None = None
    expires_in: str | None = None  # "30d": from now

    @field_validator("expires_in")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    def expiry(self) -> datetime | None:
        if self.expires_in is not None:
            return datetime.now(UTC) + parse_duration(self.expires_in)
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            return self.expires_at.replace(tzinfo=UTC)
        return self.expires_at


class KeySpec(KeyPatch):
    team: str = Field(min_length=1)


def _usd(v: Decimal | None) -> str | None:
    return None if v is None else format(v, "f")


def _iso(v: datetime | None) -> str | None:
    return None if v is None else v.isoformat()


def limits_view(lim: Limits) -> dict[str, Any]:
    return {
        "rpm": lim.rpm,
        "tpm": lim.tpm,
        "budget_usd_day": _usd(lim.budget_usd_day),
        "budget_usd_month": _usd(lim.budget_usd_month),
    }


def team_view(t: Team) -> dict[str, Any]:
    return {"name": t.name, **limits_view(t.limits), "created_at": _iso(t.created_at)}


def key_view(k: ApiKey) -> dict[str, Any]:
    now = datetime.now(UTC)
    status = "revoked" if k.revoked_at else "expired" if not k.usable_at(now) else "active"
    return {
        "id": k.id,
        "prefix": k.prefix,
        "name": k.name,
        "team": k.team,
        "models": None if k.models is None else sorted(k.models),
        **limits_view(k.limits),
        "expires_at": _iso(k.expires_at),
        "revoked_at": _iso(k.revoked_at),
        "created_at": _iso(k.created_at),
        "status": status,
    }


class Admin:
    def __init__(self, engine: AsyncEngine, hash_key: bytes, changes: Changes) -> None:
        self._engine = engine
        self._hash_key = hash_key
        self._changes = changes

    # --- teams ----------------------------------------------------------------------------

    async def create_team(self, spec: TeamSpec) -> Team:
        now = datetime.now(UTC)
        team = Team(spec.name, spec.limits(), now, now)
        try:
            await store.insert_team(self._engine, team)
        except IntegrityError:
            raise Conflict(f"A team named `{spec.name}` already exists.", param="name") from None
        self._changes.team_changed(team)
        return team

    async def teams(self) -> list[Team]:
        return await store.teams_since(self._engine)

    async def team(self, name: str) -> Team:
        team = await store.get_team(self._engine, name)
        if team is None:
            raise NotFound(f"No team named `{name}`.")
        return team

    async def update_team(self, name: str, patch: TeamPatch) -> Team:
        values: dict[str, Any] = {f: getattr(patch, f) for f in patch.model_fields_set}
        values["updated_at"] = datetime.now(UTC)
        if not await store.update_team(self._engine, name, values):
            raise NotFound(f"No team named `{name}`.")
        team = await self.team(name)
        self._changes.team_changed(team)
        return team

    async def delete_team(self, name: str) -> None:
        await self.team(name)
        if await store.count_keys(self._engine, name):
            raise Conflict(
                f"Team `{name}` still has keys (revoked ones included: the ledger refers to "
                "them); it cannot be deleted."
            )
        await store.delete_team(self._engine, name)
        self._changes.team_deleted(name)

    # --- keys -----------------------------------------------------------------------------

    async def create_key(self, spec: KeySpec) -> tuple[ApiKey, str]:
        """The key and its secret: the only time the secret exists outside the caller."""
        if await store.get_team(self._engine, spec.team) is None:
            raise InvalidRequest(
                f"No team named `{spec.team}`: create it first (POST /admin/teams, or "
                "`gateway teams create`).",
                param="team",
            )
        secret = new_secret()
        now = datetime.now(UTC)
        key = ApiKey(
            id=new_key_id(),
            key_hash=key_hash(secret, self._hash_key),
            prefix=display_prefix(secret),
            name=spec.name,
            team=spec.team,
            models=None if spec.models is None else frozenset(spec.models),
            limits=spec.limits(),
            expires_at=spec.expiry(),
            revoked_at=None,
            created_at=now,
            updated_at=now,
        )
        await store.insert_key(self._engine, key)
        self._changes.key_changed(key)
        return key, secret

    async def keys(self, team: str | None = None) -> list[ApiKey]:
        return await store.keys_since(self._engine, team=team)

    async def key(self, key_id: str) -> ApiKey:
        key = await store.get_key(self._engine, key_id)
        if key is None:
            raise NotFound(f"No key with id `{key_id}`.")
        return key

    async def update_key(self, key_id: str, patch: KeyPatch) -> ApiKey:
        fields = patch.model_fields_set - {"expires_in", "expires_at"}
        values: dict[str, Any] = {f: getattr(patch, f) for f in fields}
        if "models" in values and values["models"] is not None:
            values["models"] = sorted(set(values["models"]))
        if patch.model_fields_set & {"expires_in", "expires_at"}:
            values["expires_at"] = patch.expiry()
        values["updated_at"] = datetime.now(UTC)
        if not await store.update_key(self._engine, key_id, values):
            raise NotFound(f"No key with id `{key_id}`.")
        key = await self.key(key_id)
        self._changes.key_changed(key)
        return key

    async def revoke_key(self, key_id: str) -> ApiKey:
        key = await self.key(key_id)
        if key.revoked_at is None:
            now = datetime.now(UTC)
            await store.update_key(self._engine, key_id, {"revoked_at": now, "updated_at": now})
            key = await self.key(key_id)
        await self._changes.key_revoked(key)
        return key
