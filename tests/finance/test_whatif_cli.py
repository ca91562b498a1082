"""`gateway whatif` through typer's CliRunner: the three formats, the period, the errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from tests.finance.whatif_seed import seed, write_config

runner = CliRunner()
PERIOD = ["--since", "2026-11-02", "--until", "2026-11-02"]


@pytest.fixture()
def cfg(db_url: str, tmp_path: Path) -> Path:
    seed(db_url)
    return write_config(tmp_path / "gateway.yaml", db_url)


def whatif(cfg: Path, *args: str) -> tuple[str, str]:
    r = runner.invoke(app, ["whatif", "--config", str(cfg), *PERIOD, *args])
    assert r.exit_code == 0, r.output
    return r.stdout, r.stderr


def test_json_has_exact_groups_totals_and_assumptions(cfg: Path) -> None:
    out, _ = whatif(cfg, "--model", "cheap", "--format", "json")
    doc = json.loads(out)
    assert doc["question"] == "all traffic served by cheap"
    assert doc["since"] == "2026-11-02T00:00:00+00:00"
    assert doc["until"] == "2026-11-03T00:00:00+00:00"  # --until names a day: all of it
    assert [(g["model"], g["actual_usd"], g["whatif_usd"]) for g in doc["groups"]] == [
        ("cheap", "0.0012", "0.0012"),
        ("dear", "0.009675", "0.0029"),
        ("local-m", "0.096", "0.0058"),
    ]
    total = doc["total"]
    assert (total["requests"], total["actual_usd"], total["whatif_usd"]) == (
        4,
        "0.106875",
        "0.0099",
    )
    assert total["delta_usd"] == "-0.096975" and total["delta_pct"] == "-90.74"
    assert any("not replayed" in a for a in doc["assumptions"])


def test_csv_is_a_table_and_its_notes_go_to_stderr(cfg: Path) -> None:
    out, err = whatif(cfg, "--model", "cheap", "--group-by", "team", "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == [
        "team",
        "requests",
        "actual_usd",
        "whatif_requests",
        "whatif_usd",
        "delta_usd",
        "delta_pct",
    ]
    assert rows[1][:5] == ["a", "2", "0.006375", "2", "0.0029"]
    assert rows[-1][:5] == ["total", "4", "0.106875", "4", "0.0099"]
    assert "note: Latency and time to first token are not replayed" in err


def test_table_of_a_gpu_replay(cfg: Path, tmp_path: Path) -> None:
    out, _ = whatif(cfg, "--gpus", "1")
    assert "What if: the self-hosted pool at 1 GPU(s)" in out
    lines = out.splitlines()
    total = next(x for x in lines if x.startswith("total"))
    assert "0.106875" in total and "0.073175" in total
    local = next(x for x in lines if x.startswith("local "))
    assert "3,000" in local and "1/1" in local  # tokens a minute, one full minute of one
    assert "What a replay cannot know, and how it is estimated:" in out
    assert "fluid model" in " ".join(out.split())  # the notes are wrapped
    # --output writes the same text to a file
    target = tmp_path / "whatif.txt"
    again, _ = whatif(cfg, "--gpus", "1", "--output", str(target))
    assert again == "" and target.read_text() == out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "one of --model, --price-file, --policy, --gpus"),
        (["--model", "cheap", "--gpus", "2"], "one of --model"),
        (["--model", "cheap", "--group-by", "colour"], "unknown group 'colour'"),
        (["--model", "cheap", "--output-ratio", "lots"], "--output-ratio"),
        (["--gpus", "2", "--gpu-provider", "elsewhere"], "no self-hosted provider"),
        (["--price-file", "/nonexistent.yaml"], "cannot read price file"),
    ],
)
def test_bad_questions_are_clear_errors(cfg: Path, args: list[str], message: str) -> None:
    r = runner.invoke(app, ["whatif", "--config", str(cfg), *PERIOD, *args])
    assert r.exit_code == 2
    assert message in r.stderr and "Traceback" not in r.output


def test_a_bad_date_is_a_clear_error(cfg: Path) -> None:
    r = runner.invoke(
        app, ["whatif", "--config", str(cfg), "--since", "last tuesday", "--gpus", "1"]
    )
    assert r.exit_code == 2 and "is not a date" in r.stderr
