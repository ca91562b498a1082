"""`python -m benchmarks.policy_day [run|report|calibrate|decide] …`: the command line.

The commands and the method are described in the package docstring (`__init__.py`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from benchmarks.policy_day import measure, report
from benchmarks.policy_day.combine import build_report
from benchmarks.policy_day.day import run_policy
from benchmarks.policy_day.policies import CAPACITY_RPS, CONFIG, POLICIES
from benchmarks.policy_day.traffic import DAY_SHAPE, DEFAULT_MIX, check_scale, parse_mix


def _hours(text: str) -> list[int]:
    out: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    if not out or any(not 0 <= h < len(DAY_SHAPE) for h in out):
        raise argparse.ArgumentTypeError(f"hours must be within 0-23: {text!r}")
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.policy_day",
        description="One synthetic day replayed through the gateway under three routing "
        "policies (all-API, all-local, local-first), and priced.",
    )
    ap.add_argument(
        "command", choices=["run", "report", "calibrate", "decide"], nargs="?", default="run"
    )
    ap.add_argument(
        "--policies", type=lambda s: [p for p in s.split(",") if p], default=list(POLICIES)
    )
    ap.add_argument("--hour-s", type=float, default=5.0, help="replay seconds per hour")
    ap.add_argument(
        "--peak-factor", type=float, default=2.0, help="peak rate as a multiple of --capacity-rps"
    )
    ap.add_argument("--capacity-rps", type=float, default=CAPACITY_RPS)
    ap.add_argument("--mix", type=parse_mix, default=DEFAULT_MIX)
    ap.add_argument("--output-scale", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hours", type=_hours, default=list(range(len(DAY_SHAPE))))
    ap.add_argument("--drain-s", type=float, default=120.0)
    ap.add_argument(
        "--peak-s",
        type=float,
        default=60.0,
        help="then hold the peak rate this long (TTFT only; 0: skip)",
    )
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--out", type=Path, default=Path("bench-results/policy_day"))
    ap.add_argument(
        "--conc",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[8, 16, 24, 32, 40, 48, 64],
        help="calibrate: concurrencies",
    )
    ap.add_argument("--seconds", type=float, default=15.0, help="calibrate: measured window")
    ap.add_argument("--warmup-s", type=float, default=8.0, help="calibrate: warm-up")
    ap.add_argument("--n", type=int, default=3000, help="decide: calls per variant")
    args = ap.parse_args(argv)
    unknown = [p for p in args.policies if p not in POLICIES]
    if unknown:
        ap.error(f"unknown policies {unknown} (known: {', '.join(POLICIES)})")
    try:
        check_scale(args.output_scale)
    except ValueError as e:
        ap.error(str(e))
    return args


def cmd_report(args: argparse.Namespace) -> None:
    result = build_report(args.out)
    paths = report.write(result, args.out)
    print(report.markdown(result))
    print("wrote " + ", ".join(map(str, paths)))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "calibrate":
        measure.calibrate(args)
    elif args.command == "decide":
        measure.decide(args)
    else:
        if args.command == "run":
            for name in args.policies:
                run_policy(name, args)
        cmd_report(args)
