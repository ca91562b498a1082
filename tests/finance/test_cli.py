"""`gateway usage` and `gateway gpu` through typer's CliRunner on the seeded SQLite ledger
(tests/finance_support.py): each format, --output, and the errors."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gateway.cli import app
from gateway.ledger.migrate import upgrade
from tests.finance_support import finance_config, seed

runner = CliRunner()


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = tmp_path_factory.mktemp("cli")
    url = f"sqlite+aiosqlite:///{d / 'ledger.db'}"
    upgrade(url)
    asyncio.run(seed(url))
    path = d / "gw.yaml"
    path.write_text(yaml.safe_dump(finance_config(url).model_dump(mode="json", exclude_unset=True)))
    return str(path)


def usage(cfg: str, *args: str) -> str:
    r = runner.invoke(
        app, ["usage", "--since", "2026-11-02", "--until", "2026-11-03", "-c", cfg, *args]
    )
    assert r.exit_code == 0, r.output
    return r.output


def test_json_is_the_report(cfg: str) -> None:
    rep = json.loads(usage(cfg, "--group-by", "team", "--format", "json"))
    assert rep["totals"]["cost_usd"] == "0.0065" and rep["totals"]["saving_usd"] == "0.0245"
    assert [r["team"] for r in rep["rows"]] == ["a", "b", "unattributed"]


def test_csv_has_a_line_per_group_and_a_total(cfg: str) -> None:
    lines = list(
        csv.DictReader(io.StringIO(usage(cfg, "--group-by", "day,provider", "--format", "csv")))
    )
    assert [(x["day"], x["provider"], x["local"]) for x in lines] == [
        ("2026-11-02", "api", "no"),
        ("2026-11-02", "local", "yes"),
        ("2026-11-03", "api", "no"),
        ("2026-11-03", "", "no"),
        ("total", "total", "total"),
    ]
    assert lines[-1]["requests"] == "5" and lines[-1]["reference_cost_usd"] == "0.031"
    assert lines[1]["saving_usd"] == "0.0245"


def test_the_table_reads_in_a_terminal(cfg: str) -> None:
    out = usage(cfg, "--group-by", "model")
    head, *rest = out.splitlines()
    assert "reference model ref" in head
    assert rest[0].split()[:3] == ["model", "requests", "errors"]
    total = rest[-1].split()
    assert total[:3] == ["total", "5", "2"] and "0.0065" in total


def test_output_goes_to_a_file(cfg: str, tmp_path: Path) -> None:
    target = tmp_path / "usage.csv"
    r = runner.invoke(
        app,
        ["usage", "--since", "2026-11-02", "--format", "csv", "--output", str(target), "-c", cfg],
    )
    assert r.exit_code == 0, r.output
    assert target.read_text().startswith("day,requests,")


def test_bad_input_exits_2_with_the_reason(cfg: str) -> None:
    r = runner.invoke(app, ["usage", "--since", "2026-11-02", "--group-by", "colour", "-c", cfg])
    assert r.exit_code == 2 and "group_by: unknown group 'colour'" in r.output
    r = runner.invoke(app, ["usage", "--since", "soon", "-c", cfg])
    assert r.exit_code == 2 and "since:" in r.output


def test_gpu_as_text_and_json(cfg: str) -> None:
    args = ["gpu", "--since", "2026-11-02", "--until", "2026-11-03", "-c", cfg]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert (
        "local: 2 × $2.00/h × 48 h = $192.00; 5,500 tokens; effective $34909.090909/1M" in r.output
    )
    rep = json.loads(runner.invoke(app, [*args, "--json"]).output)
    assert rep["providers"][0]["effective_usd_per_1m"] == "34909.090909"
