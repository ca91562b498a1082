"""A `gateway bench calibrate` result replaces the configured GPU throughput at start-up."""

import asyncio
from pathlib import Path

from gateway.config import parse_config, with_calibrations
from gateway.ledger.calibration import Calibration, record_calibration
from gateway.ledger.db import create_engine
from gateway.ledger.migrate import upgrade
from gateway.pricing.gpu import amortized_per_token
from gateway.pricing.table import build_price_table
from gateway.routing.router import Router
from gateway.runner import read_calibrations


def test_calibration_overrides_throughput_and_the_amortised_price(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    upgrade(url)
    cfg = parse_config(
        {
            "database_url": url,
            "providers": [
                {
                    "name": "local",
                    "kind": "vllm",
                    "api_base": "http://127.0.0.1:1/v1",
                    "gpu": {
                        "name": "H100",
                        "hourly_usd": 2.49,
                        "throughput_tokens_per_s": 1500,
                        "max_concurrency": 8,
                    },
                }
            ],
            "models": [{"name": "llama", "provider": "local"}],
        },
        source="t",
        environ={},
    )
    assert read_calibrations(cfg) == {}

    async def write() -> None:
        engine = create_engine(url)
        await record_calibration(engine, Calibration("local", "run-1", 16, 1380.0, 4200.0))
        await engine.dispose()

    asyncio.run(write())
    measured = read_calibrations(cfg)
    assert measured == {"local": (4200.0, 16)}
    calibrated = with_calibrations(cfg, measured)
    gpu = calibrated.providers[0].gpu
    assert gpu is not None and (gpu.throughput_tokens_per_s, gpu.max_concurrency) == (4200.0, 16)
    router = Router(calibrated, build_price_table(calibrated))
    assert router.targets()[0].price.input == amortized_per_token(2.49, 1, 4200.0)
