"""`gateway bench selftest` runs end to end; deploy/gpu/run.sh only uses options that exist."""

import re
import subprocess
from pathlib import Path

from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from benchmarks.load.cli import bench_app
from gateway.cli import app

ROOT = Path(__file__).parents[2]


def test_selftest_reports_both_modes_and_its_cpu() -> None:
    r = CliRunner().invoke(app, ["bench", "selftest", "--duration", "0.3", "--concurrency", "4"])
    assert r.exit_code in (0, 1), r.output  # 1 = a target missed on a busy machine
    lines = r.output.strip().splitlines()
    assert lines[0].strip().startswith("non-streamed:") and "req/s" in lines[0]
    assert lines[1].strip().startswith("streamed:") and "chunks/s" in lines[1]
    assert all("client CPU" in x and "simulator CPU" in x and ", 0 failed" in x for x in lines)


def test_gpu_script_is_valid_bash_and_uses_real_options() -> None:
    script = ROOT / "deploy" / "gpu" / "run.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    used: set[str] = set()
    for block in re.findall(r'"\$GATEWAY" bench \w+(.*?)(?:\n\n|\n#|\Z)', script.read_text(), re.S):
        used |= set(re.findall(r"(--[a-z][a-z0-9-]+)", block))
    assert "--sweep" in used and "--provider" in used
    group = get_command(bench_app)
    assert isinstance(group, TyperGroup)  # a Typer app with several commands
    known = {
        opt
        for name in ("run", "calibrate", "runs")
        for p in group.commands[name].params
        for opt in p.opts
    }
    assert used <= known, used - known
