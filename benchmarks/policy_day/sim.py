"""The simulator the policy benchmark runs against: the stock profiles with tokens scaled.

    python -m benchmarks.policy_day.sim --port 8001 [--output-scale 5]

Same app, same profiles and paths as `gateway simulate` (`/llama-3.1-8b-h100/v1/...`,
`/gpt-4o-mini/v1/...`, `/claude-haiku/v1/messages`, `/gemini-flash/v1beta/...`), except that
one emitted token stands for `output_scale` real tokens: every profile's time per output token
is multiplied by the scale and the vLLM profile's aggregate decode ceiling divided by it. A
request with `n / scale` replayed output tokens then holds its batch slot as long as the real
`n`-token one, the GPU saturates at the same real tokens a second (5,100 for the H100 profile:
1,020 replayed), and TTFT is unchanged — only the number of SSE chunks the 2-core machine must
carry goes down. What is not scaled: the KV-cache accounting counts the replayed output tokens
(≤ 100 a request here, against prompts of 500–5,000), and requests finish `(scale − 1)` base
TPOTs early (≈ 19 ms on the H100 profile).

Answers: every workload is a task the simulator recognises by its system prompt
(`day_quality`), answered at the stock per-model agreement rates of
`gateway/simulator/quality.py` (the local 8B: classification 96%, extraction fields 88%,
chat 70%; Claude Haiku, the reference, always true).
"""

from __future__ import annotations

import argparse
import dataclasses

from gateway.simulator.profiles import PROFILES, Profile
from gateway.simulator.quality import DEFAULT_QUALITY, Quality, SimTask


def scaled_profiles(output_scale: int) -> dict[str, Profile]:
    """Every stock profile with its per-token time × scale and decode ceiling ÷ scale — pure."""
    if output_scale < 1:
        raise ValueError("output_scale must be at least 1")
    return {
        name: dataclasses.replace(
            p,
            tpot_base_s=p.tpot_base_s * output_scale,
            decode_ceiling_tok_s=p.decode_ceiling_tok_s / output_scale,
            description=f"{p.description} (1 token = {output_scale} real tokens)",
        )
        for name, p in PROFILES.items()
    }


def day_quality() -> Quality:
    """The stock quality table, each workload known by its system prompt's sha256 (as the
    gateway's `tasks:` know it), so every policy's answers are scored the same way."""
    import hashlib

    from benchmarks.policy_day.traffic import WORKLOADS, system_prompt

    tasks = {}
    for name in WORKLOADS:
        digest = hashlib.sha256(system_prompt(name).encode()).hexdigest()
        tasks[name] = dataclasses.replace(
            DEFAULT_QUALITY.tasks.get(name, SimTask(name)), system_prompt_sha256=(digest,)
        )
    return DEFAULT_QUALITY.merged(Quality(tasks))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--output-scale", type=int, default=5)
    args = ap.parse_args()

    import uvicorn

    from gateway.simulator.app import create_app
    from gateway.simulator.server import hide_simulated_drops

    config = uvicorn.Config(
        create_app("instant", profiles=scaled_profiles(args.output_scale), quality=day_quality()),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        proxy_headers=False,
        log_level="warning",
        lifespan="on",
    )
    hide_simulated_drops()
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
