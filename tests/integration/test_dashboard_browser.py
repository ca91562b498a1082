"""/dashboard in a real headless Chromium (Debian's, at /usr/bin/chromium; driven by
Playwright, which downloads nothing here) against a real gateway with auth on and a ledger
seeded with known rows, on SQLite and PostgreSQL.

Every chart must have drawn, and every total the page shows must be the `/admin/usage`
report's, rounded as the page rounds; the CSV it downloads must be the report's CSV. A
screenshot of each run is kept under `test-artifacts/dashboard/` (the summary names it).
Without chromium this fails under CI=true (.ci/run installs it) and is skipped elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.ledger.db import create_engine
from gateway.ledger.tables import requests_table
from tests.conftest import GatewayFactory
from tests.governance_support import MASTER, MASTER_HEADERS, gov_config
from tests.support import ARTIFACTS_KEY, ServerThread, ledger_row

CHROMIUM = os.environ.get("GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("GATEWAY_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")
)
SINCE, UNTIL = "2026-11-02", "2026-11-15"
DAYS = 14
CHARTS = ["chart-spend", "chart-share", "chart-savings", "chart-gpu", "chart-latency"]
TEAMS = ["research", "support", "search", None]
# model → (provider, upstream model, $ per 1M input, $ per 1M output, base latency ms)
MODELS = {
    "llama-3.1-8b": ("local-llama", "meta-llama/Llama-3.1-8B-Instruct", "0.05", "0.08", 350),
    "gpt-4o-mini": ("openai", "gpt-4o-mini", "0.15", "0.60", 900),
    "text-embedding-3-small": ("openai", "text-embedding-3-small", "0.02", "0", 60),
}


def seeded_rows() -> list[dict[str, Any]]:
    """Two weeks of traffic (fewer requests at weekends) on a self-hosted model, an API model
    and an embeddings model, four teams (one unattributed), some errors, streamed rows with a
    TTFT; and one row just either side of the period, which no total may include."""
    rng = random.Random(14)
    rows = []
    start = datetime(2026, 11, 2, tzinfo=UTC)
    for day in range(DAYS):
        for i in range(rng.randint(25, 40) if day % 7 < 5 else rng.randint(6, 12)):
            model = rng.choices(list(MODELS), weights=[6, 3, 1])[0]
            provider, upstream, in_price, out_price, base_ms = MODELS[model]
            status = rng.choices([200, 500, 429], weights=[30, 1, 1])[0]
            ok = status == 200
            prompt = rng.randint(100, 4000) if ok else 0
            completion = (
                (rng.randint(20, 800) if model != "text-embedding-3-small" else 0) if ok else 0
            )
            input_cost = Decimal(prompt) * Decimal(in_price) / 1_000_000
            output_cost = Decimal(completion) * Decimal(out_price) / 1_000_000
            stream = ok and model != "text-embedding-3-small" and rng.random() < 0.6
            team = rng.choice(TEAMS)
            rows.append(
                ledger_row(
                    f"{day}-{i}",
                    created_at=start + timedelta(days=day, seconds=rng.randint(0, 86_399)),
                    endpoint="embeddings" if model == "text-embedding-3-small" else "chat",
                    requested_model=model,
                    upstream_model=upstream,
                    provider=provider,
                    stream=stream,
                    status_code=status,
                    error_type=None if ok else "upstream_error",
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    cached_prompt_tokens=(prompt // 2 if rng.random() < 0.3 else 0),
                    input_cost_usd=input_cost,
                    output_cost_usd=output_cost,
                    cost_usd=input_cost + output_cost,
                    ttft_ms=float(base_ms // 4 + rng.randint(0, 200)) if stream else None,
                    latency_ms=float(base_ms + completion * 2 + rng.randint(0, 300)),
                    team=team,
                    api_key_id=None if team is None else f"k-{team}",
                )
            )
    outside = dict(cost_usd=Decimal("5"), input_cost_usd=Decimal("5"), output_cost_usd=Decimal(0))
    rows.append(ledger_row("before", created_at=start - timedelta(seconds=1), **outside))
    rows.append(ledger_row("after", created_at=start + timedelta(days=DAYS), **outside))
    return rows


def seed(url: str, rows: list[dict[str, Any]]) -> None:
    async def run() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(requests_table.insert(), rows)
        finally:
            await engine.dispose()

    asyncio.run(run())


def money(text: str) -> str:
    """The page's rounding (format.js `money`): cents from $100 up, else four places."""
    d = Decimal(text)
    places = Decimal("0.01") if abs(d) >= 100 else Decimal("0.0001")
    return f"${d.quantize(places, ROUND_HALF_UP):,}"


@pytest.fixture()
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        message = (
            f"no Chromium at {CHROMIUM}: install Debian's `chromium` and `chromium-driver` "
            "(.ci/run does), or point GATEWAY_TEST_CHROMIUM at one"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture()
def browser(chromium: str, gw: ServerThread) -> Iterator[Any]:
    # after the gateway and its seed: Playwright's sync API keeps an event loop running in
    # this thread while it is open, and the fixtures before it call asyncio.run
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True)
        yield b
        b.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    # a PostgreSQL database of its own: the shared one's hourly rollup keeps other tests' rows
    return str(
        request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "fresh_pg_url")
    )


@pytest.fixture()
def gw(sim: ServerThread, db_url: str, gateway_factory: GatewayFactory) -> ServerThread:
    seed(db_url, seeded_rows())
    config = gov_config(sim.url, db_url, finance={"reference_model": "gpt-4o-mini"})
    # a pool that this little traffic keeps visibly busy, so the utilisation chart has bars
    # (set in the config: a calibration row would outlive the test in the shared database)
    providers = tuple(
        p.model_copy(update={"gpu": p.gpu.model_copy(update={"throughput_tokens_per_s": 1.5})})
        if p.gpu is not None
        else p
        for p in config.providers
    )
    return gateway_factory(config.model_copy(update={"providers": providers}))


def report(gw: ServerThread, group_by: str, accept: str = "application/json") -> httpx.Response:
    params = {"since": SINCE, "until": UNTIL, "group_by": group_by, "tz": "UTC"}
    r = httpx.get(
        f"{gw.url}/admin/usage", params=params, headers={**MASTER_HEADERS, "accept": accept}
    )
    assert r.status_code == 200, r.text
    return r


def chart_facts(page: Any) -> dict[str, Any]:
    """Per canvas: its Chart.js chart's dataset labels and values, and how many of the
    drawn pixels are not blank (sampled from the canvas itself)."""
    facts: dict[str, Any] = page.evaluate(
        """(ids) => Object.fromEntries(ids.map((id) => {
            const canvas = document.getElementById(id);
            const chart = Chart.getChart(canvas);
            const ctx = canvas.getContext("2d");
            const img = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            let inked = 0;
            for (let i = 3; i < img.length; i += 4) if (img[i] > 0) inked++;
            return [id, {
                width: canvas.width, height: canvas.height, inked,
                labels: chart ? chart.data.labels : null,
                datasets: chart ? chart.data.datasets.map((d) => ({label: d.label, data: d.data})) : null,
            }];
        }))""",
        CHARTS,
    )
    return facts


def open_dashboard(page: Any, gw: ServerThread, split: str) -> None:
    page.goto(f"{gw.url}/dashboard#preset=custom&since={SINCE}&until={UNTIL}&tz=UTC&split={split}")
    # CSS waits: the page's CSP forbids the eval a wait_for_function would need
    page.wait_for_selector("body:not([data-state=loading])", state="attached", timeout=20_000)
    assert page.evaluate("document.body.dataset.state") == "ready", page.text_content("#status")


def test_the_dashboard_draws_every_chart_and_shows_the_reports_totals(
    browser: Any, gw: ServerThread, db_url: str, request: pytest.FixtureRequest
) -> None:
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000},
        http_credentials={"username": "finance", "password": MASTER},
        accept_downloads=True,
    )
    page = context.new_page()
    problems: list[str] = []
    origins: set[str] = set()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: origins.add(r.url.split("/dashboard")[0].split("/admin")[0]))
    try:
        open_dashboard(page, gw, "provider")
        by_day = report(gw, "day").json()
        totals = by_day["totals"]
        assert totals["requests"] == len(seeded_rows()) - 2  # not the rows either side

        # every chart drew, with data in it
        facts = chart_facts(page)
        for cid, f in facts.items():
            assert f["width"] > 0 and f["height"] > 0 and f["inked"] > 500, (cid, f)
            values = [v for d in f["datasets"] for v in d["data"] if v]
            assert values, f"{cid} has no data: {f['datasets']}"
        assert facts["chart-spend"]["labels"] == [f"2026-11-{d:02}" for d in range(2, 16)]
        gpu = httpx.get(
            f"{gw.url}/admin/gpu", params={"since": SINCE, "until": UNTIL}, headers=MASTER_HEADERS
        ).json()
        by_hour = {h["hour"]: h["utilisation"] for h in gpu["providers"][0]["by_hour"]}
        drawn_gpu = facts["chart-gpu"]["datasets"][0]["data"]
        assert facts["chart-gpu"]["labels"] == [f"{h:02}:00" for h in sorted(by_hour)]
        assert drawn_gpu == pytest.approx([100 * by_hour[h] for h in sorted(by_hour)])
        assert max(drawn_gpu) > 5  # bars a reader can see

        # the totals shown are the report's, to the digit
        shown = {
            el["metric"]: el
            for el in page.eval_on_selector_all(
                ".kpi",
                "els => els.map(e => ({metric: e.dataset.metric, raw: e.dataset.value,"
                " text: e.querySelector('.value').textContent}))",
            )
        }
        for metric in ("cost_usd", "reference_cost_usd", "saving_usd"):
            assert shown[metric]["raw"] == totals[metric], metric
            assert shown[metric]["text"] == money(totals[metric]), metric
        for metric in ("requests", "errors", "prompt_tokens", "completion_tokens"):
            assert shown[metric]["raw"] == str(totals[metric]), metric
            assert shown[metric]["text"] == f"{totals[metric]:,}", metric
        by_provider = report(gw, "provider").json()
        local = sum(r["requests"] for r in by_provider["rows"] if r["local"])
        assert shown["local_share"]["text"] == f"{100 * local / totals['requests']:.1f}%"
        foot = page.eval_on_selector_all(
            "#breakdown tfoot td", "tds => tds.map(t => t.textContent)"
        )
        assert (
            foot[:2] == ["Total", f"{totals['requests']:,}"] and money(totals["cost_usd"]) in foot
        )

        # each split: the spend chart's series are the report's groups, with their spend
        for split in ("provider", "model", "team"):
            page.select_option("#split", split)
            page.wait_for_selector(f"body[data-state=ready][data-split={split}]", state="attached")
            rows = report(gw, f"day,{split}").json()["rows"]
            expected: dict[str, float] = {}
            for r in rows:
                key = r[split] if r[split] is not None else "unattributed"
                expected[key] = expected.get(key, 0.0) + float(r["cost_usd"])
            spend = chart_facts(page)["chart-spend"]
            drawn = {d["label"]: sum(d["data"]) for d in spend["datasets"]}
            assert drawn.keys() == expected.keys(), split
            for key, value in expected.items():
                assert drawn[key] == pytest.approx(value, abs=1e-9), (split, key)
            table_rows = page.eval_on_selector_all("#breakdown tbody tr", "trs => trs.length")
            assert table_rows == len(report(gw, split).json()["rows"])

        # the CSV download is the report's CSV, byte for byte
        with page.expect_download() as download:
            page.click("#csv")
        saved = Path(download.value.path())
        assert download.value.suggested_filename == f"usage_{SINCE}_{UNTIL}_day-team.csv"
        assert saved.read_bytes() == report(gw, "day,team", accept="text/csv").content

        page.select_option("#split", "provider")
        page.wait_for_selector("body[data-state=ready][data-split=provider]", state="attached")
        shot = screenshot(page, request, db_url)
        assert shot.stat().st_size > 10_000
        assert not problems, problems
        assert origins == {gw.url}, f"the page reached another origin: {origins}"
    finally:
        context.close()


def test_a_period_the_report_refuses_is_shown_as_its_error(browser: Any, gw: ServerThread) -> None:
    context = browser.new_context(http_credentials={"username": "finance", "password": MASTER})
    page = context.new_page()
    try:
        page.goto(f"{gw.url}/dashboard#preset=custom&since={UNTIL}&until={SINCE}&tz=UTC")
        page.wait_for_selector("body[data-state=error]", state="attached", timeout=20_000)
        assert page.text_content("#status") == "until: the period ends before it starts"
        page.goto(f"{gw.url}/dashboard#preset=custom&since={SINCE}&until={UNTIL}&tz=Nowhere/X")
        page.wait_for_selector("body[data-state=error]", state="attached", timeout=20_000)
        assert "unknown time zone" in (page.text_content("#status") or "")
    finally:
        context.close()


def test_under_ci_a_missing_chromium_fails_instead_of_skipping(tmp_path: Path) -> None:
    env = {**os.environ, "CI": "true", "GATEWAY_TEST_CHROMIUM": str(tmp_path / "no-chromium")}
    test = f"{__file__}::test_without_the_master_key_the_page_shows_no_data[sqlite]"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", test, "-q", "-p", "no:randomly", "-p", "no:cacheprovider"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout
    assert "1 error" in run.stdout and "no Chromium at" in run.stdout, run.stdout


def test_without_the_master_key_the_page_shows_no_data(browser: Any, gw: ServerThread) -> None:
    context = browser.new_context(http_credentials={"username": "x", "password": "wrong-key-123"})
    page = context.new_page()
    try:
        response = page.goto(f"{gw.url}/dashboard")
        assert response is not None and response.status == 401
        assert page.locator("canvas").count() == 0
    finally:
        context.close()


def screenshot(page: Any, request: pytest.FixtureRequest, db_url: str) -> Path:
    folder = ARTIFACTS / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"dashboard-{db_url.split(':')[0].split('+')[0]}.png"
    page.screenshot(path=str(path), full_page=True)
    request.config.stash.setdefault(ARTIFACTS_KEY, []).append(str(path))
    print(f"dashboard screenshot: {path}")
    return path
