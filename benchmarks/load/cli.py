"""`gateway bench …` (or `python -m benchmarks.load …`): the load benchmark's Typer app, which
`gateway/cli.py` mounts as `bench`. Options in, one call out.

Importing this module costs only Typer: the load generator, rich, matplotlib and the database
are imported inside the commands, so `gateway serve` starts exactly as before.
"""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

bench_app = typer.Typer(
    help="Load benchmarks: latency, throughput and $ per 1M tokens.",
    no_args_is_help=True,
    add_completion=False,
)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="GATEWAY_DATABASE_URL",
        help="Ledger database for bench_runs and calibrations "
        "(default: sqlite+aiosqlite:///./gateway.db).",
    ),
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"gateway bench: {message}", err=True)
    raise typer.Exit(2)


def _command_line(ctx: typer.Context) -> str:
    """The command as typed (sys.argv), or rebuilt from the options given when called otherwise
    (tests, scripts). A key typed on the command line never reaches a file."""
    args = [Path(sys.argv[0]).name, *sys.argv[1:]]
    if Path(sys.argv[0]).resolve() == Path(__file__).with_name("__main__.py").resolve():
        args = ["python", "-m", "benchmarks.load", *sys.argv[1:]]
    elif "bench" not in args:
        args = ["gateway", "bench", "run"]
        for param in ctx.command.params:
            source = ctx.get_parameter_source(param.name or "")
            if source is None or source.name != "COMMANDLINE" or param.name == "api_key":
                continue
            value = ctx.params[param.name or ""]
            flag = param.opts[0]
            if isinstance(value, bool):
                args.append(flag if value else (param.secondary_opts or [flag])[0])
            else:
                for v in value if isinstance(value, list | tuple) else [value]:
                    args += [flag, str(v)]
    for i, a in enumerate(args):
        if a == "--api-key" and i + 1 < len(args):
            args[i + 1] = "***"
        elif a.startswith("--api-key="):
            args[i] = "--api-key=***"
    return shlex.join(args)


@bench_app.command("run")
def run(
    ctx: typer.Context,
    base_url: Annotated[
        str,
        typer.Option(
            envvar="GATEWAY_BENCH_URL",
            help="OpenAI-compatible base URL (a vLLM server or the gateway), with or without /v1.",
        ),
    ],
    model: Annotated[
        str | None, typer.Option(help="Model to request (default: the first in /v1/models).")
    ] = None,
    direct_url: Annotated[
        str | None,
        typer.Option(
            help="The upstream behind the gateway: each point also runs there, and the "
            "difference is the gateway's overhead."
        ),
    ] = None,
    direct_model: Annotated[str | None, typer.Option(help="Model name at --direct-url.")] = None,
    endpoint: Annotated[str, typer.Option(help="chat or completions.")] = "chat",
    stream: Annotated[bool, typer.Option(help="Stream (needed for TTFT, TPOT, ITL).")] = True,
    ignore_eos: Annotated[
        bool,
        typer.Option(
            help="Send vLLM's ignore_eos so replies have exactly the planned length "
            "(turn off for hosted APIs)."
        ),
    ] = True,
    workload: Annotated[
        str, typer.Option(help="fixed, random, sharegpt, classification, extraction or chat.")
    ] = "random",
    num_prompts: Annotated[
        int, typer.Option(min=1, help="Distinct prompts built (sent in turn).")
    ] = 200,
    input_len: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Prompt tokens (random/fixed: 1024; extraction: document; "
            "classification: message).",
        ),
    ] = None,
    output_len: Annotated[
        int | None, typer.Option(min=1, help="Output tokens (default: per workload).")
    ] = None,
    range_ratio: Annotated[
        float, typer.Option(min=0, help="Length spread of the random workload.")
    ] = 0.0,
    dist: Annotated[
        str, typer.Option(help="Length distribution: uniform, normal, lognormal.")
    ] = "uniform",
    prefix_len: Annotated[
        int,
        typer.Option(
            min=0, help="Shared prefix tokens (random/fixed; the classification system prompt)."
        ),
    ] = 0,
    dataset_path: Annotated[
        Path | None, typer.Option(help="ShareGPT JSON file for --workload sharegpt.")
    ] = None,
    tokenizer: Annotated[
        str, typer.Option(help="auto, cl100k_base, o200k_base, chars4, or a tokenizer.json path.")
    ] = "auto",
    concurrency: Annotated[int | None, typer.Option(min=1, help="Max concurrent requests.")] = None,
    request_rate: Annotated[
        float, typer.Option(help="Requests/s (inf: closed loop at --concurrency).")
    ] = math.inf,
    burstiness: Annotated[
        float, typer.Option(help="Gamma shape of arrival gaps (1 = Poisson).")
    ] = 1.0,
    sweep: Annotated[
        str | None, typer.Option(help="Points to run: concurrency=1,2,4,8 or rate=1,2,4.")
    ] = None,
    duration: Annotated[float, typer.Option(help="Measured seconds per point.")] = 30.0,
    num_requests: Annotated[
        int | None, typer.Option(help="Measure this many requests per point instead of a duration.")
    ] = None,
    warmup: Annotated[float, typer.Option(help="Warm-up seconds per point (duration mode).")] = 5.0,
    warmup_requests: Annotated[
        int, typer.Option(help="Warm-up requests per point (request-count mode).")
    ] = 0,
    slo_ttft_ms: Annotated[float | None, typer.Option(help="SLO on TTFT (ms).")] = None,
    slo_tpot_ms: Annotated[float | None, typer.Option(help="SLO on TPOT (ms).")] = None,
    slo_e2el_ms: Annotated[
        float | None, typer.Option(help="SLO on end-to-end latency (ms).")
    ] = None,
    slo_attainment: Annotated[
        float, typer.Option(min=0, max=1, help="Share of requests that must meet the SLO.")
    ] = 0.99,
    gpu_hourly_usd: Annotated[
        float | None, typer.Option(help="$ per GPU-hour of the target (enables the economics).")
    ] = None,
    gpu_count: Annotated[int, typer.Option(min=1, help="GPUs behind the target.")] = 1,
    gpu_name: Annotated[str, typer.Option(help="GPU name for the reports.")] = "H100",
    api: Annotated[
        list[str] | None,
        typer.Option(
            help="API to compare: a litellm price-table key or "
            "NAME=IN/OUT(/CACHE_READ(/CACHE_WRITE)) in $ per 1M; repeatable "
            "(default: claude-3.5-haiku, gpt-4o-mini, gemini-1.5-flash)."
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Folder for the run's files (a sub-folder per run).")
    ] = Path("bench-results"),
    database_url: DbOpt = None,
    save: Annotated[bool, typer.Option(help="Save the run in the database.")] = True,
    timeout: Annotated[float, typer.Option(help="Per-request timeout (s).")] = 600.0,
    seed: Annotated[int, typer.Option(help="Seed for prompts and arrivals.")] = 0,
    label: Annotated[str | None, typer.Option(help="A name for this run.")] = None,
    quiet: Annotated[bool, typer.Option(help="No live progress display.")] = False,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="OPENAI_API_KEY",
            help="Bearer token for the target (never written to the results).",
        ),
    ] = None,
) -> None:
    """Measure a server at one or more loads; write JSON, CSV, Markdown, PNG and a database row."""
    options = {k: v for k, v in locals().items() if k != "ctx"}  # the options, nothing else
    from benchmarks.load.run import BenchError, run_from_options

    try:
        run_from_options(options, _command_line(ctx))
    except BenchError as e:
        _fail(str(e))


@bench_app.command("calibrate")
def calibrate(
    run_id: Annotated[str, typer.Argument(help="A run id from `gateway bench run`.")],
    provider: Annotated[
        str, typer.Option(help="The self-hosted provider the run measured.")
    ] = "local-llama",
    attainment: Annotated[
        float | None, typer.Option(min=0, max=1, help="Override the run's SLO attainment.")
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Write the run's capacity within its SLO as the provider's GPU calibration."""
    from benchmarks.load.run import default_db_url
    from benchmarks.load.store import NothingToCalibrate, RunNotFound
    from benchmarks.load.store import calibrate as do_calibrate

    url = database_url or default_db_url()
    try:
        cal = do_calibrate(url, run_id, provider, attainment)
    except (RunNotFound, NothingToCalibrate) as e:
        _fail(str(e))
    typer.echo(
        f"{provider}: max_concurrency={cal.max_concurrency} "
        f"output_tokens_per_s={cal.output_tokens_per_s:.1f} "
        f"total_tokens_per_s={cal.total_tokens_per_s:.1f} (run {run_id}, SLO {cal.slo})"
    )


@bench_app.command("runs")
def runs(
    database_url: DbOpt = None, limit: Annotated[int, typer.Option(min=1, help="How many.")] = 20
) -> None:
    """List the newest benchmark runs in the database."""
    from benchmarks.load.run import default_db_url
    from benchmarks.load.store import list_runs

    for r in list_runs(database_url or default_db_url(), limit):
        typer.echo(
            f"{r['id']}  {r['created_at']:%Y-%m-%d %H:%M}  {r['workload']:<15} {r['target_url']}"
        )


@bench_app.command("selftest")
def selftest(
    duration: Annotated[float, typer.Option(help="Measured seconds per mode.")] = 10.0,
    concurrency: Annotated[int, typer.Option(min=2, help="Closed-loop clients.")] = 64,
) -> None:
    """How much load this machine's load generator produces against the instant simulator."""
    from benchmarks.load.selftest import selftest as run_selftest

    failed = False
    for r in run_selftest(duration, concurrency):
        figure = r.chunks_per_s if r.mode == "streamed" else r.requests_per_s
        unit = "chunks/s" if r.mode == "streamed" else "req/s"
        typer.echo(
            f"{r.mode:>13}: {figure:,.0f} {unit} (target {r.target:,.0f}: "
            f"{'ok' if r.passed else 'MISSED'}), {r.requests_per_s:,.0f} req/s at "
            f"concurrency {r.concurrency}, {r.failed} failed; client CPU {r.client_cpu:.0%} "
            f"of a core, loop lag p99 {r.client_lag_p99_ms:.1f} ms; simulator CPU "
            f"{r.server_cpu:.0%}" + ("  [load generator saturated]" if r.saturated else "")
        )
        failed |= not r.passed
    if failed:
        raise typer.Exit(1)
