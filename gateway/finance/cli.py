"""`gateway usage` and `gateway gpu`: the finance reports from a shell.

They read the configured database directly (the same report code `/admin/usage` and
`/admin/gpu` run). Only Typer is imported at module level.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.ext.asyncio import AsyncEngine

    from gateway.config import GatewayConfig
    from gateway.core import Price

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", envvar="GATEWAY_CONFIG", help="Path to the YAML config.")
]
DEFAULT_CONFIG = Path("config/demo.yaml")
SinceOpt = Annotated[
    str, typer.Option("--since", help="First day (YYYY-MM-DD, in --tz) or an ISO datetime.")
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until", help="Last day, inclusive (or an ISO datetime, exclusive); default: now."
    ),
]
TzOpt = Annotated[str, typer.Option("--tz", help="Time zone of the dates and of day groups.")]
GroupByOpt = Annotated[
    str,
    typer.Option(
        "--group-by",
        help="Comma-separated: day, week, month, hour, team, api_key, model, provider, "
        "route, endpoint.",
    ),
]
FormatOpt = Annotated[
    Literal["table", "csv", "json"], typer.Option("--format", help="Output format.")
]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")]
Report = Callable[["AsyncEngine", "GatewayConfig", "Mapping[str, Price]"], Awaitable[Any]]


def _fail(message: str) -> NoReturn:
    typer.echo(f"gateway: {message}", err=True)
    raise typer.Exit(2)


def _run(config_path: Path, report: Report) -> Any:
    """Load the config and prices, open the database, make one report; user errors exit 2."""
    from gateway.config import ConfigError, load_config
    from gateway.errors import GatewayError
    from gateway.ledger.db import create_engine
    from gateway.pricing.table import build_price_table

    try:
        config = load_config(config_path)
        prices = build_price_table(config)
    except ConfigError as e:
        _fail(str(e))

    async def go() -> Any:
        engine = create_engine(config.database_url)
        try:
            return await report(engine, config, prices)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except GatewayError as e:
        _fail(e.message)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


def usage(
    since: SinceOpt,
    until: UntilOpt = None,
    group_by: GroupByOpt = "day",
    fmt: FormatOpt = "table",
    output: OutputOpt = None,
    tz: TzOpt = "UTC",
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Requests, tokens, cost, savings and latency per group over a period, with totals."""
    from gateway.errors import GatewayError
    from gateway.finance.period import parse_group_by, parse_period
    from gateway.finance.render import to_csv, to_table
    from gateway.finance.report import usage_report

    try:
        period = parse_period(since, until, tz)
        groups = parse_group_by(group_by)
    except GatewayError as e:
        _fail(e.message)
    report = _run(config, lambda e, c, p: usage_report(e, c, p, period, groups))
    if fmt == "json":
        text = json.dumps(report, indent=1) + "\n"
    else:
        text = to_csv(report) if fmt == "csv" else to_table(report)
    _emit(text, output)


def gpu(
    since: SinceOpt,
    until: UntilOpt = None,
    tz: TzOpt = "UTC",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """The GPU pools' true cost (idle hours included), effective $/1M and utilisation."""
    from gateway.errors import GatewayError
    from gateway.finance.gpu import gpu_report
    from gateway.finance.period import parse_period

    try:
        period = parse_period(since, until, tz)
    except GatewayError as e:
        _fail(e.message)
    report = _run(config, lambda e, c, p: gpu_report(e, c, p, period))
    if as_json:
        typer.echo(json.dumps(report, indent=1))
        return
    typer.echo(_gpu_text(report), nl=False)


def _gpu_text(report: dict[str, Any]) -> str:
    lines = [f"GPU fleet {report['since']} .. {report['until']} ({report['tz']})"]
    for p in report["providers"]:
        util = p["utilisation"] * 100
        lines.append(
            f"{p['provider']}: {p['gpus']} × ${p['hourly_usd']}/h × "
            f"{p['gpu_hours'] / p['gpus']:g} h = ${p['cost_usd']}; {p['tokens']:,} tokens; "
            f"effective ${p['effective_usd_per_1m'] or '-'}/1M "
            f"(ledger, amortised: ${p['amortised_usd_per_1m'] or '-'}/1M); "
            f"utilisation {util:.1f} %"
        )
        busy = " ".join(f"{h['hour']:02d}:{h['utilisation'] * 100:3.0f}%" for h in p["by_hour"])
        lines.append(f"  by hour of day: {busy}")
    if report["apis"]:
        lines.append("APIs, $ per 1M tokens (input / cached input / output):")
        for a in report["apis"]:
            lines.append(
                f"  {a['model']}: {a['input_usd_per_1m']} / {a['cached_input_usd_per_1m']} / "
                f"{a['output_usd_per_1m']}"
            )
    return "\n".join(lines) + "\n"


def whatif(
    since: SinceOpt,
    until: UntilOpt = None,
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
        str, typer.Option(help="Another model's output tokens per recorded output token.")
    ] = "1",
    group_by: GroupByOpt = "model",
    fmt: FormatOpt = "table",
    output: OutputOpt = None,
    tz: TzOpt = "UTC",
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Price recorded traffic as if it had gone elsewhere: another model, another price list,
    another routing policy or another number of GPUs."""
    from decimal import Decimal, InvalidOperation

    from gateway.config import ConfigError
    from gateway.errors import GatewayError
    from gateway.finance.period import parse_group_by, parse_period
    from gateway.finance.whatif import Scenario, WhatIfReport
    from gateway.finance.whatif import whatif as run_whatif
    from gateway.finance.whatif_render import RENDERERS

    try:
        ratio = Decimal(output_ratio)
        period = parse_period(since, until, tz)
        scenario = Scenario(
            period=period,
            group_by=parse_group_by(group_by),
            model=model,
            price_file=price_file,
            policy=policy,
            gpus=gpus,
            gpu_provider=gpu_provider,
            output_ratio=ratio,
        )
    except InvalidOperation:
        _fail(f"--output-ratio: {output_ratio!r} is not a number")
    except GatewayError as e:
        _fail(e.message)

    async def ask(e: AsyncEngine, c: GatewayConfig, p: Mapping[str, Price]) -> WhatIfReport:
        try:
            return await run_whatif(e, c, scenario)
        except ConfigError as err:
            _fail(str(err))

    report: WhatIfReport = _run(config, ask)
    _emit(RENDERERS[fmt](report), output)
    if fmt == "csv":  # the CSV stays a table; what it assumes goes beside it
        for note in report.notes:
            typer.echo(f"note: {note}", err=True)
