"""`gateway teams …` and `gateway keys …` through typer's CliRunner, on a SQLite ledger; the
keys they make work on a gateway reading the same database."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from gateway.cli import app
from tests.conftest import GatewayFactory
from tests.governance_support import MASTER, gov_config
from tests.support import ServerThread

runner = CliRunner()


def write_config(tmp_path: Path, master: str | None = MASTER) -> Path:
    cfg = tmp_path / "gw.yaml"
    auth = f"auth: {{master_key: {master}}}\n" if master else ""
    cfg.write_text(
        f"database_url: sqlite+aiosqlite:///{tmp_path / 'ledger.db'}\n{auth}"
        "providers:\n  - name: p\n    kind: openai\n    api_base: http://127.0.0.1:1/v1\n"
        "models:\n  - name: gpt-4o-mini\n    provider: p\n"
    )
    return cfg


def test_teams_and_keys_from_the_command_line(
    tmp_path: Path, sim: ServerThread, gateway_factory: GatewayFactory
) -> None:
    cfg = str(write_config(tmp_path))
    r = runner.invoke(app, ["teams", "create", "research", "--budget-usd-day", "10", "-c", cfg])
    assert r.exit_code == 0, r.output
    assert "research" in runner.invoke(app, ["teams", "list", "-c", cfg]).output
    r = runner.invoke(
        app,
        [
            "keys",
            "create",
            "--team",
            "research",
            "--models",
            "gpt-4o-mini,auto",
            "--expires",
            "30d",
            "--rpm",
            "60",
            "--tpm",
            "1000",
            "--budget-usd-day",
            "2",
            "--json",
            "-c",
            cfg,
        ],
    )
    assert r.exit_code == 0, r.output
    created = json.loads(r.output)
    secret = created["key"]
    assert created["models"] == ["auto", "gpt-4o-mini"] and created["rpm"] == 60
    assert created["budget_usd_day"] == "2" and created["expires_at"]
    listed = runner.invoke(app, ["keys", "list", "-c", cfg]).output
    assert created["id"] in listed and created["prefix"] in listed and secret not in listed
    listed = json.loads(runner.invoke(app, ["keys", "list", "--json", "-c", cfg]).output)
    assert [k["status"] for k in listed] == ["active"]
    # the key works on a gateway over the same database
    gw = gateway_factory(gov_config(sim.url, f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"))
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    auth = {"authorization": f"Bearer {secret}"}
    assert httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=auth).status_code == 200
    r = runner.invoke(app, ["keys", "revoke", created["id"], "-c", cfg])
    assert r.exit_code == 0 and "revoked" in r.output
    assert secret not in r.output


def test_plain_text_create_prints_the_secret_once(tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path))
    runner.invoke(app, ["teams", "create", "ops", "-c", cfg])
    r = runner.invoke(app, ["keys", "create", "--team", "ops", "-c", cfg])
    assert r.exit_code == 0
    secret = r.output.split()[0]
    assert secret.startswith("sk-gw-") and r.output.count(secret) == 1
    assert "shown only this once" in r.output


def test_mistakes_are_clear_errors(tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path))
    r = runner.invoke(app, ["keys", "create", "--team", "nope", "-c", cfg])
    assert r.exit_code == 2 and "No team named `nope`" in r.output
    runner.invoke(app, ["teams", "create", "ops", "-c", cfg])
    r = runner.invoke(app, ["teams", "create", "ops", "-c", cfg])
    assert r.exit_code == 2 and "already exists" in r.output
    r = runner.invoke(app, ["keys", "create", "--team", "ops", "--expires", "soon", "-c", cfg])
    assert r.exit_code == 2 and "not a duration" in r.output
    r = runner.invoke(app, ["keys", "revoke", "key_nope", "-c", cfg])
    assert r.exit_code == 2 and "No key" in r.output
    no_auth = str(write_config(tmp_path / "..", master=None))
    r = runner.invoke(app, ["keys", "list", "-c", no_auth])
    assert r.exit_code == 2 and "auth.master_key is not set" in r.output
    assert "Traceback" not in r.output
