"""The synthetic day of the policy benchmark: its rate curve, its request mix, its bodies — pure.

A day is 24 simulated hours. Hour `h` is replayed as `hour_s` seconds of Poisson arrivals at
that hour's *real* rate (`DAY_SHAPE[h] × peak_rps` requests a second), so a replay second stands
for a real second at the same request rate and a replayed hour is a sample of the real one.
The schedule is a seeded function of its arguments: every policy replays the same requests.

The mix follows the workloads of the seed review (shared/reference/000_c44a307b6c4bf2d9.txt):

    classification  a 5,000-token system prompt shared by every request, a short ticket
                    (~80 tokens), ~5 output tokens (a label)
    extraction      a ~2,000-token document with short instructions, ~300 JSON tokens out
    chat            ~500 tokens in (short system prompt + the user's turn), ~500 tokens out

Output lengths are fixed with `max_tokens` and vLLM's `ignore_eos`. They are *replayed* at
`1 / output_scale` of their real length (5 → 1, 300 → 60, 500 → 100 at the default scale 5):
the benchmark runs the simulator with every per-token time multiplied by the same scale
(`sim.py`), so one replayed token stands for `output_scale` real ones — a request
holds its batch slot as long as the real one would and the GPU's decode ceiling is the same in
real tokens — while the 2-core machine streams 5× fewer chunks. The accounting multiplies
output tokens (and their cost) back by the scale. A replayed output must also stay ≤ 128 tokens:
the simulated Claude and Gemini answer at most their profile's 128 natural tokens, because
`ignore_eos` has no Anthropic or Gemini counterpart and the gateway does not forward it there.

Token counts follow the simulator's rule (`gateway/simulator/tokens.py`: ⌈characters / 4⌉ per
text, plus 3 per message and 3 to prime the reply), so a text of `4n` characters is `n` tokens.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

# Share of the peak rate, hour by hour (local time 00–23): a business-day curve with a night
# trough at 13% of the peak, a morning ramp and a lunchtime-to-afternoon plateau. A choice,
# not a measurement: peak/mean ≈ 1.9 and peak/trough ≈ 7.7, usual shapes for user-facing
# traffic.
DAY_SHAPE: tuple[float, ...] = (
    0.20, 0.16, 0.14, 0.13, 0.14, 0.18, 0.28, 0.42, 0.60, 0.78, 0.90, 0.97,
    1.00, 0.98, 0.95, 0.92, 0.85, 0.75, 0.62, 0.50, 0.42, 0.35, 0.29, 0.24,
)  # fmt: skip
MAX_REPLAYED_OUTPUT = 128  # the simulated hosted APIs' natural reply length

_WORDS = (
    "order invoice refund account payment delivery ticket customer product billing login "
    "password shipping address contract clause party date amount total due renewal notice "
    "support issue error status update report page section field value record request the a "
    "of and to in is for on with my our your this that it was not can please help thanks"
).split()


@dataclass(frozen=True, slots=True)
class Workload:
    """One kind of request: its token lengths (real ones) and how its body looks."""

    name: str
    system_tokens: int  # the system prompt
    user_tokens: int  # the user's message
    output_tokens: int  # real output tokens (replayed: output_tokens / output_scale)
    shared_system: bool = False  # every request sends the same system prompt (cacheable)
    json: bool = False  # response_format json_object

    @property
    def prompt_tokens(self) -> int:
        """What the simulator counts: two messages of framing plus reply priming."""
        return self.system_tokens + self.user_tokens + 2 * 3 + 3

    def replayed_output(self, output_scale: int) -> int:
        return self.output_tokens // output_scale


WORKLOADS: dict[str, Workload] = {
    "classification": Workload("classification", 5000, 80, 5, shared_system=True),
    "extraction": Workload("extraction", 60, 2000, 300, json=True),
    "chat": Workload("chat", 60, 440, 500),
}
# By requests: high-volume classification/moderation dominates, as in the seed's use cases.
DEFAULT_MIX: dict[str, float] = {"classification": 0.6, "extraction": 0.2, "chat": 0.2}


def check_scale(output_scale: int, workloads: Mapping[str, Workload] = WORKLOADS) -> None:
    """Raise ValueError unless every output divides by the scale into ≤ 128 replayed tokens."""
    if output_scale < 1:
        raise ValueError("output_scale must be at least 1")
    for w in workloads.values():
        if w.output_tokens % output_scale:
            raise ValueError(
                f"{w.name}: {w.output_tokens} output tokens do not divide by "
                f"output_scale {output_scale}"
            )
        if w.replayed_output(output_scale) > MAX_REPLAYED_OUTPUT:
            raise ValueError(
                f"{w.name}: {w.replayed_output(output_scale)} replayed output "
                f"tokens > {MAX_REPLAYED_OUTPUT} (raise output_scale)"
            )


def parse_mix(text: str) -> dict[str, float]:
    """`classification=0.6,extraction=0.2,chat=0.2` → shares normalised to sum to 1."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in WORKLOADS:
            raise ValueError(f"unknown workload {name!r} (known: {', '.join(WORKLOADS)})")
        mix[name] = float(value)
    total = sum(mix.values())
    if total <= 0 or any(v < 0 for v in mix.values()):
        raise ValueError(f"mix shares must be ≥ 0 and not all 0: {text!r}")
    return {k: v / total for k, v in mix.items()}


def mean_output_tokens(mix: Mapping[str, float]) -> float:
    """Real output tokens per request under `mix`."""
    return sum(share * WORKLOADS[name].output_tokens for name, share in mix.items())


@dataclass(frozen=True, slots=True)
class Arrival:
    index: int  # position in the day: the same request under every policy
    t: float  # replay seconds from the start of the day
    hour: int
    workload: str


def hour_rates(peak_rps: float, shape: Sequence[float] = DAY_SHAPE) -> list[float]:
    """Real requests a second in each hour."""
    return [peak_rps * s for s in shape]


def schedule(
    peak_rps: float,
    hour_s: float,
    mix: Mapping[str, float],
    *,
    seed: int = 0,
    hours: Sequence[int] | None = None,
    shape: Sequence[float] = DAY_SHAPE,
) -> list[Arrival]:
    """Poisson arrivals, hour after hour, each hour at its rate for `hour_s` replay seconds.

    `hours` replays only those hours (in order, back to back): a shorter smoke run.
    """
    rng = random.Random(seed)
    names, weights = list(mix), [mix[n] for n in mix]
    out: list[Arrival] = []
    for slot, hour in enumerate(range(len(shape)) if hours is None else hours):
        rate = peak_rps * shape[hour]
        start, end = slot * hour_s, (slot + 1) * hour_s
        t = start + (rng.expovariate(rate) if rate > 0 else hour_s)
        while t < end:
            out.append(Arrival(len(out), t, hour, rng.choices(names, weights)[0]))
            t += rng.expovariate(rate)
    return out


def text(tokens: int, seed: int) -> str:
    """Deterministic pseudo-English of exactly `tokens` simulator tokens (4 characters each)."""
    rng = random.Random(seed)
    need = 4 * tokens
    parts: list[str] = []
    size = 0
    while size < need:
        word = rng.choice(_WORDS)
        parts.append(word)
        size += len(word) + 1
    return " ".join(parts)[:need]


_SYSTEM = {
    "classification": "You label customer support tickets. Answer with one label of: billing, "
    "refund, delivery, account, technical, other. Policy and examples follow. ",
    "extraction": "Extract the parties, dates, amounts and renewal terms of this contract as JSON.",
    "chat": "You are a concise, friendly support assistant for an online shop.",
}


@cache
def system_prompt(name: str) -> str:
    """A workload's system prompt: padded to its length, the same text on every request."""
    w = WORKLOADS[name]
    padding = text(w.system_tokens, seed=zlib.crc32(name.encode()))
    return (_SYSTEM[name] + " " + padding)[: 4 * w.system_tokens]


def body(arrival: Arrival, model: str, output_scale: int) -> dict[str, Any]:
    """The streaming chat request for one arrival (its user text is its own)."""
    w = WORKLOADS[arrival.workload]
    system = system_prompt(w.name)
    user = f"#{arrival.index} " + text(w.user_tokens, seed=arrival.index)
    out: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user[: 4 * w.user_tokens]},
        ],
        "max_tokens": w.replayed_output(output_scale),
        "ignore_eos": True,  # vLLM's extension: exactly max_tokens (vllm bench serve does it)
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if w.json:
        out["response_format"] = {"type": "json_object"}
    return out
