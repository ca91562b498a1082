"""The policy day's fixed parts: the four policies, the gateway config they run, the run's meta,
and which answers are below the quality bar.

Policies (one entry each, rule R3): all-API = the `day-api` route (cost policy over GPT-4o mini,
Claude Haiku 3.5 and Gemini 1.5 Flash: the cheapest eligible per request); all-local = the
`llama-3.1-8b` model pinned; local-first = the `day-local-first` route over all four;
local-first-gated = the `day-quality` route: local-first over the three cheap models, each
serving a task only on shadow evidence that it agrees with Claude Haiku (the quality gate).

Quality. The benchmark's simulator answers every workload as a task of its own
(`sim.py`, `gateway/simulator/quality.py`): each model agrees with the true answer at its
configured rate, Claude Haiku always. `below_bar(model, task)` says whether a model's true
rate is under the gated route's bar for that task — the ground truth the gate must find.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from gateway.config import GatewayConfig, QualityGateConfig, load_config
from gateway.simulator.quality import DEFAULT_QUALITY

CONFIG = Path(__file__).resolve().parents[2] / "config" / "bench" / "policy_day.yaml"
# Measured by `calibrate` under DEFAULT_MIX (README "Routing benchmark"): from 24 concurrent
# requests the simulated H100 streams its 5,100 output tok/s ceiling, 4,854 / 163 = 29.8 req/s.
CAPACITY_RPS = 29.8
LOCAL_FIRST_ROUTE = "day-local-first"
GATED_ROUTE = "day-quality"
# the gateway's model → the simulator profile that answers it (config/bench/policy_day.yaml)
PROFILE_OF = {
    "llama-3.1-8b": "llama-3.1-8b-h100",
    "gpt-4o-mini": "gpt-4o-mini",
    "gemini-flash": "gemini-flash",
    "claude-haiku": "claude-haiku",
}
MODEL_OF_PROVIDER = {
    "local-llama": "llama-3.1-8b",
    "openai": "gpt-4o-mini",
    "gemini": "gemini-flash",
    "anthropic": "claude-haiku",
}
PEAK_GRACE_S = 1.0  # after the last peak request: past the SLO, a missing first token is a miss


@dataclass(frozen=True, slots=True)
class Policy:
    model: str  # what the client sends
    uses_gpu: bool  # the day pays for the GPU


POLICIES: dict[str, Policy] = {
    "all-api": Policy("day-api", uses_gpu=False),
    "all-local": Policy("llama-3.1-8b", uses_gpu=True),
    "local-first": Policy(LOCAL_FIRST_ROUTE, uses_gpu=True),
    "local-first-gated": Policy(GATED_ROUTE, uses_gpu=True),
}


def day_config(path: Path) -> GatewayConfig:
    """The gateway config as the runs use it (the simulator's address is filled in per run)."""
    return load_config(path, environ={"POLICY_DAY_SIM": "http://127.0.0.1:1"})


def slo_ms(config: GatewayConfig) -> float:
    """The local-first route's TTFT SLO: what every policy is held to."""
    route = next(r for r in config.routes if r.name == LOCAL_FIRST_ROUTE)
    return float(route.slo.ttft_p95_ms or 0)


def run_meta() -> dict[str, Any]:
    """The exact command and versions, for every file a run writes (rule R12)."""
    return {
        "command": " ".join(["python", "-m", "benchmarks.policy_day", *sys.argv[1:]]),
        "gateway": version("llm-cost-gateway"),
        "python": platform.python_version(),
        "machine": f"{os.cpu_count()} cpu, {platform.machine()}",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def gate_config(config: GatewayConfig) -> QualityGateConfig:
    route = next(r for r in config.routes if r.name == GATED_ROUTE)
    assert route.quality is not None
    return route.quality


def below_bar(config: GatewayConfig, provider: str | None, task: str) -> bool:
    """Whether the model behind `provider` truly agrees with the reference on `task` less often
    than the gated route's bar (the simulator's rate; the reference itself never is)."""
    model = MODEL_OF_PROVIDER.get(provider or "")
    if model is None:
        return False
    bar, _ = gate_config(config).bar(task)
    return DEFAULT_QUALITY.rate(PROFILE_OF[model], task) < bar
