"""vLLM's flags as deploy/gpu/run.sh serves the model, for comparing the deployments with it.

The GPU benchmark (and its calibration, which the router uses) ran vLLM with these flags:
compose.yaml and the Kubernetes StatefulSet must serve the same way, or the calibrated
capacity describes a different server.
"""

from __future__ import annotations

import re
from pathlib import Path

RUN_SH = Path(__file__).resolve().parents[2] / "deploy" / "gpu" / "run.sh"
VALUED = {
    "--model": "MODEL",
    "--quantization": "QUANTIZATION",
    "--max-model-len": "MAX_MODEL_LEN",
    "--gpu-memory-utilization": "GPU_MEMORY_UTILIZATION",
    "--max-num-seqs": "MAX_NUM_SEQS",
}
SWITCHES = ("--enable-prefix-caching", "--enable-prompt-tokens-details")


def run_sh_flags() -> dict[str, str | None]:
    text = RUN_SH.read_text()
    defaults = dict(re.findall(r"^([A-Z_]+)=\$\{\1:-([^}]*)\}", text, re.M))
    flags: dict[str, str | None] = {flag: defaults[var] for flag, var in VALUED.items()}
    for switch in SWITCHES:
        assert switch in text, f"{switch} is no longer in run.sh: update this module"
        flags[switch] = None
    return flags


def parse_flags(args: list[str]) -> dict[str, str | None]:
    """`--a=b`, `--a b` and bare `--switch` into one mapping (positional model: `--model`)."""
    out: dict[str, str | None] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            out["--model"] = arg
        elif "=" in arg:
            k, v = arg.split("=", 1)
            out[k] = v
        elif i + 1 < len(args) and not args[i + 1].startswith("--") and arg not in SWITCHES:
            out[arg] = args[i + 1]
            i += 1
        else:
            out[arg] = None
        i += 1
    return out
