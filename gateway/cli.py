"""`gateway` command line: serve, db upgrade, simulate, bench. Commands parse and delegate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from gateway.config import DEFAULT_CONFIG, ConfigError

app = typer.Typer(
    help="LLM cost and latency gateway.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Ledger database commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
# `gateway bench …` lives with the load generator; its module imports only Typer
from benchmarks.load.cli import bench_app  # noqa: E402

app.add_typer(bench_app, name="bench")
from gateway.governance.cli import keys_app, teams_app  # noqa: E402

app.add_typer(teams_app, name="teams")
app.add_typer(keys_app, name="keys")
from gateway.finance import cli as finance_cli  # noqa: E402

app.command("usage")(finance_cli.usage)
app.command("gpu")(finance_cli.gpu)
app.command("whatif")(finance_cli.whatif)

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", envvar="GATEWAY_CONFIG", help="Path to the YAML config.")
]


def _print_version(value: bool) -> None:
    if value:
        from gateway import __version__

        typer.echo(f"gateway {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """LLM cost and latency gateway."""


def _fail(message: str) -> NoReturn:
    typer.echo(f"gateway: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def serve(
    config: ConfigOpt = DEFAULT_CONFIG,
    host: Annotated[
        str, typer.Option(envvar="GATEWAY_HOST", help="Address to bind.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="GATEWAY_PORT", help="Port to bind.")] = 8080,
    workers: Annotated[
        int, typer.Option(envvar="GATEWAY_WORKERS", min=1, help="Worker processes.")
    ] = 1,
) -> None:
    """Run the gateway (and the simulator, when the config has a `simulator:` section)."""
    from gateway.runner import run_gateway

    try:
        run_gateway(config, host=host, port=port, workers=workers)
    except ConfigError as e:
        _fail(str(e))


@db_app.command("upgrade")
def db_upgrade(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="GATEWAY_CONFIG",
            help="Path to the YAML config. Without it, GATEWAY_DATABASE_URL alone is enough "
            "(else config/demo.yaml).",
        ),
    ] = None,
) -> None:
    """Apply pending ledger migrations to the configured database."""
    import os

    from gateway.ledger.db import redact_url
    from gateway.ledger.migrate import upgrade
    from gateway.runner import upgrade_target

    try:
        url = upgrade_target(config, os.environ)
    except ConfigError as e:
        _fail(str(e))
    try:
        upgrade(url)
    except Exception as e:  # a database that cannot be reached is a user-facing condition
        _fail(f"migration failed on {redact_url(url)}: {type(e).__name__}: {e}")
    typer.echo(f"ledger schema is up to date on {redact_url(url)}")


@app.command()
def simulate(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8001,
    profile: Annotated[str, typer.Option(help="Default timing profile.")] = "instant",
    quality: Annotated[
        Path | None,
        typer.Option(
            help="YAML or JSON answer-quality table (tasks, agreement per profile and task), "
            "merged over the built-in one."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of fault draws and answer agreement.")] = 0,
    fd: Annotated[
        int | None,
        typer.Option(hidden=True, help="Serve on this listening socket (from `serve`)."),
    ] = None,
) -> None:
    """Run the upstream simulator (OpenAI/vLLM wire formats, vLLM metrics, fault injection)."""
    import yaml

    from gateway.simulator.profiles import PROFILES
    from gateway.simulator.quality import DEFAULT_QUALITY, QualityError, load_quality
    from gateway.simulator.server import run

    if profile not in PROFILES:
        _fail(f"unknown profile {profile!r}; known: {', '.join(sorted(PROFILES))}")
    table = DEFAULT_QUALITY
    if quality is not None:
        try:
            table = load_quality(str(quality))
        except (OSError, QualityError, yaml.YAMLError) as e:
            _fail(f"{quality}: {e}")
    run(host, port, profile, fd=fd, quality=table, seed=seed)


@app.command()
def quality(
    config: ConfigOpt = DEFAULT_CONFIG,
    since: Annotated[
        str | None,
        typer.Option(help="Only pairs from this date or time on (ISO 8601, UTC if no zone)."),
    ] = None,
    task: Annotated[str | None, typer.Option(help="Only this task.")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="table, csv or json.", show_default=True)
    ] = "table",
) -> None:
    """Quality evidence per task × model: samples, agreement with its 95% interval, cost."""
    from gateway.quality.cli import run_report

    try:
        typer.echo(run_report(config, since, task, fmt))
    except (ConfigError, ValueError) as e:
        _fail(str(e))


def main() -> None:
    app(prog_name="gateway")


if __name__ == "__main__":
    main()
