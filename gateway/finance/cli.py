"""`gateway whatif`: parse the question, run it, print the answer. Nothing else lives here."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn

import typer

from gateway.config import DEFAULT_CONFIG, ConfigError

if TYPE_CHECKING:
    from gateway.finance.whatif import Scenario, WhatIfReport

Format = Literal["table", "csv", "json"]


def parse_when(value: str, *, end: bool = False) -> datetime:
    """A date (midnight UTC; as an end, the end of that day) or an ISO date-time (UTC unless it
    names an offset)."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime.combine(day, time(), UTC)
            return start + timedelta(days=1) if end else start
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{value!r} is not a date (YYYY-MM-DD) or date-time") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def whatif(
    since: Annotated[str, typer.Option(help="First day (YYYY-MM-DD, UTC) or date-time.")],
    until: Annotated[
        str | None,
        typer.Option(help="Last day, included (or a date-time, excluded). Default: now."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Price every request as if this model had served it.")
    ] = None,
    price_file: Annotated[
        Path | None,
        typer.Option(help="Another price list (YAML/JSON: the gateway's or litellm's format)."),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(help="A gateway config whose routes, models and GPUs the traffic replays."),
    ] = None,
    gpus: Annotated[
        int | None, typer.Option(help="Replay with the self-hosted pool at this many GPUs.")
    ] = None,
    gpu_provider: Annotated[
        str | None, typer.Option(help="The pool --gpus sizes, when there are several.")
    ] = None,
    output_ratio: Annotated[
        str,
        typer.Option(help="Another model's output tokens per recorded output token."),
    ] = "1",
    group_by: Annotated[
        str,
        typer.Option(
            help="Comma-separated: hour,day,week,month,team,api_key,model,provider,route,endpoint."
        ),
    ] = "model",
    fmt: Annotated[Format, typer.Option("--format", help="table, csv or json.")] = "table",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            envvar="GATEWAY_CONFIG",
            help="The gateway's config (its ledger, models, prices and GPUs).",
        ),
    ] = DEFAULT_CONFIG,
) -> None:
    """Price recorded traffic as if it had gone elsewhere: another model, another price list,
    another routing policy or another number of GPUs."""
    from gateway.finance.whatif import Scenario
    from gateway.finance.whatif_render import RENDERERS

    try:
        ratio = Decimal(output_ratio)
    except InvalidOperation:
        _fail(f"--output-ratio: {output_ratio!r} is not a number")
    try:
        scenario = Scenario(
            since=parse_when(since),
            until=parse_when(until, end=True) if until else datetime.now(UTC),
            group_by=tuple(k.strip() for k in group_by.split(",") if k.strip()),
            model=model,
            price_file=price_file,
            policy=policy,
            gpus=gpus,
            gpu_provider=gpu_provider,
            output_ratio=ratio,
        )
        report = asyncio.run(_run(config, scenario))
    except ConfigError as e:
        _fail(str(e))
    text = RENDERERS[fmt](report)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)
    if fmt == "csv":  # the CSV stays a table; what it assumes goes beside it
        for note in report.notes:
            typer.echo(f"note: {note}", err=True)


async def _run(config_path: Path, scenario: Scenario) -> WhatIfReport:
    from gateway.config import load_config
    from gateway.finance.whatif import whatif
    from gateway.ledger.db import create_engine

    cfg = load_config(config_path)
    engine = create_engine(cfg.database_url)
    try:
        return await whatif(engine, cfg, scenario)
    finally:
        await engine.dispose()


def _fail(message: str) -> NoReturn:
    typer.echo(f"gateway whatif: {message}", err=True)
    raise typer.Exit(2)
