"""`gateway teams …` and `gateway keys …`: the admin operations from a shell.

They write the configured database directly (the same `Admin` the admin API uses); running
replicas read the changes within `auth.refresh_interval_s`, and a revocation reaches them at
once through Redis when `redis_url` is configured. Only Typer is imported at module level.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from gateway.config import GatewayConfig
    from gateway.governance.admin import Admin
    from gateway.governance.records import ApiKey, Team

teams_app = typer.Typer(
    help="Teams: what keys belong to, with their own limits.", no_args_is_help=True
)
keys_app = typer.Typer(help="Virtual keys (sk-gw-…).", no_args_is_help=True)

T = TypeVar("T")

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", envvar="GATEWAY_CONFIG", help="Path to the YAML config.")
]
DEFAULT_CONFIG = Path("config/demo.yaml")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
RpmOpt = Annotated[int | None, typer.Option("--rpm", min=1, help="Requests per minute.")]
TpmOpt = Annotated[int | None, typer.Option("--tpm", min=1, help="Tokens per minute.")]
DayOpt = Annotated[
    str | None, typer.Option("--budget-usd-day", help="USD per UTC day (hard limit).")
]
MonthOpt = Annotated[
    str | None, typer.Option("--budget-usd-month", help="USD per UTC month (hard limit).")
]


def _fail(message: str) -> None:
    typer.echo(f"gateway: {message}", err=True)
    raise typer.Exit(2)


class _CliChanges:
    """Nothing runs in this process to tell, except Redis about a revocation."""

    def __init__(self, config: GatewayConfig) -> None:
        self._config = config

    def key_changed(self, key: ApiKey) -> None:
        pass

    def team_changed(self, team: Team) -> None:
        pass

    def team_deleted(self, name: str) -> None:
        pass

    async def key_revoked(self, key: ApiKey) -> None:
        from gateway.governance.plan import revoke_op
        from gateway.governance.redis_counters import RedisCounters

        cfg = self._config
        if not cfg.redis_url:
            return
        redis = RedisCounters(
            cfg.redis_url, cfg.governance.redis_key_prefix, cfg.governance.redis_timeout_s
        )
        try:
            await redis.run([revoke_op(key.id)])
        except Exception as e:
            typer.echo(
                f"gateway: Redis unreachable ({type(e).__name__}): replicas refuse the key "
                f"within auth.refresh_interval_s ({cfg.auth.refresh_interval_s:g} s) instead",
                err=True,
            )
        finally:
            await redis.aclose()


def _run(config_path: Path, action: Callable[[Admin], Awaitable[T]]) -> T:
    """Load the config, open the database, run one admin action; user errors exit with 2."""
    from gateway.config import ConfigError, load_config
    from gateway.errors import GatewayError
    from gateway.governance.admin import Admin
    from gateway.governance.keys import hash_secret_from
    from gateway.ledger.db import create_engine
    from gateway.runner import prepare_database

    try:
        config = load_config(config_path)
        if config.auth.master_key is None:
            _fail(f"{config_path}: auth.master_key is not set, so keys would not be checked")
        assert config.auth.master_key is not None
        prepare_database(config)
    except ConfigError as e:
        _fail(str(e))
        raise  # unreachable: _fail exits
    hash_key = hash_secret_from(config.auth.master_key, config.auth.key_hash_secret)

    async def go() -> T:
        engine = create_engine(config.database_url)
        try:
            return await action(Admin(engine, hash_key, _CliChanges(config)))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except GatewayError as e:
        _fail(e.message)
        raise


def _usd(value: str | None, option: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except ArithmeticError:
        _fail(f"{option}: {value!r} is not an amount in USD")
        raise


def _print(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        typer.echo("(none)")
        return

    def cell(v: Any) -> str:
        return "-" if v is None else ",".join(v) if isinstance(v, list) else str(v)

    table = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in table:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


TEAM_COLUMNS = ["name", "rpm", "tpm", "budget_usd_day", "budget_usd_month"]
KEY_COLUMNS = ["id", "prefix", "team", "status", "models", "rpm", "tpm", "budget_usd_day"]


@teams_app.command("create")
def teams_create(
    name: Annotated[str, typer.Argument(help="The team's name.")],
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    budget_usd_day: DayOpt = None,
    budget_usd_month: MonthOpt = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: JsonOpt = False,
) -> None:
    """Create a team."""
    from gateway.governance.admin import TeamSpec, team_view

    spec = TeamSpec(
        name=name,
        rpm=rpm,
        tpm=tpm,
        budget_usd_day=_usd(budget_usd_day, "--budget-usd-day"),
        budget_usd_month=_usd(budget_usd_month, "--budget-usd-month"),
    )
    team = _run(config, lambda admin: admin.create_team(spec))
    _print([team_view(team)], as_json, TEAM_COLUMNS)


@teams_app.command("list")
def teams_list(config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False) -> None:
    """List the teams."""
    from gateway.governance.admin import team_view

    _print([team_view(t) for t in _run(config, lambda a: a.teams())], as_json, TEAM_COLUMNS)


@keys_app.command("create")
def keys_create(
    team: Annotated[str, typer.Option("--team", help="The team the key belongs to.")],
    models: Annotated[
        str | None, typer.Option("--models", help="Comma-separated model or route names.")
    ] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime, e.g. 30d, 12h, 15m.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="What the key is for.")] = None,
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    budget_usd_day: DayOpt = None,
    budget_usd_month: MonthOpt = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: JsonOpt = False,
) -> None:
    """Create a key; its secret is printed once and never stored."""
    from pydantic import ValidationError

    from gateway.governance.admin import KeySpec, key_view

    try:
        spec = KeySpec(
            team=team,
            name=name,
            models=None if models is None else [m.strip() for m in models.split(",") if m],
            expires_in=expires,
            rpm=rpm,
            tpm=tpm,
            budget_usd_day=_usd(budget_usd_day, "--budget-usd-day"),
            budget_usd_month=_usd(budget_usd_month, "--budget-usd-month"),
        )
    except ValidationError as e:
        _fail(e.errors()[0]["msg"])
        raise
    key, secret = _run(config, lambda admin: admin.create_key(spec))
    if as_json:
        typer.echo(json.dumps({**key_view(key), "key": secret}, indent=1))
        return
    typer.echo(f"{secret}\n")
    typer.echo(f"id {key.id} (team {key.team}). The key is shown only this once: store it now.")


@keys_app.command("list")
def keys_list(
    team: Annotated[str | None, typer.Option("--team", help="Only this team's keys.")] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: JsonOpt = False,
) -> None:
    """List keys (by id and prefix: secrets are never stored)."""
    from gateway.governance.admin import key_view

    keys = _run(config, lambda a: a.keys(team))
    _print([key_view(k) for k in keys], as_json, KEY_COLUMNS)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_…).")],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Revoke a key: every replica refuses it within a second."""
    key = _run(config, lambda a: a.revoke_key(key_id))
    typer.echo(f"revoked {key.id} ({key.prefix}, team {key.team})")
