"""Workloads: the prompts a benchmark sends, built to exact token counts with a real tokenizer.

`WORKLOADS` maps a name to a builder (rule R3):
- `fixed` — every prompt `input_len` tokens, every reply `output_len` tokens.
- `random` — vLLM's random dataset: lengths drawn uniformly from
  [floor(L·(1−r)), ceil(L·(1+r))] (`vllm/benchmarks/datasets/random.py`), or from a normal or
  log-normal distribution with spread r; an optional shared prefix of `prefix_len` tokens.
- `sharegpt` — a ShareGPT-format JSON file (`[{"conversations": [{"from": "human", "value":
  …}, {"from": "gpt", "value": …}]}]`): the first human turn is the prompt, the reply's token
  count the output length (unless `output_len` is given), filtered like vLLM's
  `is_valid_sequence` (≥ 4 tokens each, prompt ≤ 1,024, prompt + reply ≤ 2,048).
- presets with the production shapes of the gateway's users: `classification` (a shared system
  prompt of 5,000 tokens, a short user message, 5 output tokens), `extraction` (a ~2,000-token
  document plus shared instructions in, 300 tokens of JSON out), `chat` (a shared system prompt
  and two earlier exchanges before the new question: ~500 tokens in, 500 out).

Texts are deterministic pseudo-English (a seeded word stream), cut to the wanted token count
with the tokenizer (`benchmarks.load.tokenizer`). Each request's own part differs from every
other's, so only the declared shared prefix can hit a prefix cache; `prefix_tokens` records it,
which the economics use to price prompt caching.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from benchmarks.load.tokenizer import Tokenizer

_WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there been one all we their has would when if so no will "
    "can more other about many then them these may first some time could only into its new "
    "two after most also made over years did such where what people must system data model "
    "request token price cost latency service customer order account invoice report policy "
    "product market team quarter revenue growth server memory network storage support ticket "
    "issue release update review contract payment delivery schedule region country city record "
    "field value result number total average error status change document section page table "
    "summary question answer reason example label category priority urgent normal low high"
).split()


@dataclass(frozen=True, slots=True)
class Sample:
    """One request's messages and its token counts under the workload's tokenizer."""

    messages: tuple[tuple[str, str], ...]  # (role, content)
    prompt_tokens: int  # tokens of the message contents (the server adds its chat template)
    output_tokens: int
    prefix_tokens: int = 0  # leading tokens shared with the other samples (cacheable)

    def chat_messages(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    @property
    def prompt(self) -> str:
        """The messages as one text prompt, for /v1/completions."""
        return "\n\n".join(content for _, content in self.messages)


@dataclass(frozen=True)
class WorkloadSpec:
    name: str = "random"
    num_prompts: int = 200
    input_len: int | None = None  # builder default when None
    output_len: int | None = None
    range_ratio: float = 0.0
    dist: str = "uniform"  # uniform | normal | lognormal
    prefix_len: int = 0
    dataset_path: Path | None = None
    seed: int = 0


@dataclass(frozen=True)
class Workload:
    name: str
    samples: tuple[Sample, ...]
    tokenizer: str
    tokenizer_exact: bool
    description: str
    settings: dict[str, object] = field(default_factory=dict)

    def _mean(self, values: Sequence[int]) -> float:
        return sum(values) / len(values) if values else 0.0

    @property
    def mean_prompt_tokens(self) -> float:
        return self._mean([s.prompt_tokens for s in self.samples])

    @property
    def mean_output_tokens(self) -> float:
        return self._mean([s.output_tokens for s in self.samples])

    @property
    def mean_prefix_tokens(self) -> float:
        return self._mean([s.prefix_tokens for s in self.samples])

    @property
    def shared_prefix_fraction(self) -> float:
        """Share of prompt tokens a prompt cache can serve (0 when nothing is shared)."""
        total = sum(s.prompt_tokens for s in self.samples)
        return sum(s.prefix_tokens for s in self.samples) / total if total else 0.0


class TextSource:
    """A seeded stream of pseudo-English, cut to exact token counts."""

    def __init__(self, tokenizer: Tokenizer, rng: random.Random) -> None:
        self.tok, self.rng = tokenizer, rng

    def words(self, n: int) -> str:
        out = []
        for i in range(n):
            w = self.rng.choice(_WORDS)
            out.append(w.capitalize() if i % 12 == 0 else w)
            if i % 12 == 11:
                out[-1] += "."
        return " ".join(out)

    def text(self, tokens: int, lead: str = "") -> str:
        """`lead` followed by pseudo-English, `tokens` tokens in all (lead included)."""
        if tokens <= 0:
            return ""
        n_words = tokens + 16
        while True:
            candidate = lead + self.words(n_words)
            if self.tok.count(candidate) >= tokens:
                return self.tok.take(candidate, tokens)
            n_words *= 2


def _lengths(rng: random.Random, n: int, mean: int, ratio: float, dist: str) -> list[int]:
    if dist == "uniform":
        lo, hi = math.floor(mean * (1 - ratio)), math.ceil(mean * (1 + ratio))
        return [max(1, rng.randint(lo, hi)) for _ in range(n)]
    if dist == "normal":
        return [max(1, round(rng.gauss(mean, ratio * mean))) for _ in range(n)]
    if dist == "lognormal":
        return [max(1, round(mean * math.exp(rng.gauss(0.0, ratio)))) for _ in range(n)]
    raise ValueError(f"unknown length distribution {dist!r}; use uniform, normal or lognormal")


Builder = Callable[[WorkloadSpec, Tokenizer], tuple[list[Sample], str]]


def _random(spec: WorkloadSpec, tok: Tokenizer) -> tuple[list[Sample], str]:
    rng = random.Random(spec.seed)
    src = TextSource(tok, rng)
    in_len, out_len = spec.input_len or 1024, spec.output_len or 128
    ins = _lengths(rng, spec.num_prompts, in_len, spec.range_ratio, spec.dist)
    outs = _lengths(rng, spec.num_prompts, out_len, spec.range_ratio, spec.dist)
    prefix = src.text(spec.prefix_len) if spec.prefix_len else ""
    samples = []
    for i, (n_in, n_out) in enumerate(zip(ins, outs, strict=True)):
        body = src.text(n_in, lead=f"Request {i}: ")
        content = f"{prefix}\n{body}" if prefix else body
        n = tok.count(content) if prefix else n_in  # the join can merge a token or two
        samples.append(Sample((("user", content),), n, n_out, spec.prefix_len))
    what = (
        f"{spec.dist} lengths around {in_len} in / {out_len} out (spread {spec.range_ratio:g})"
        + (f", shared prefix {spec.prefix_len}" if spec.prefix_len else "")
    )
    return samples, what


def _fixed(spec: WorkloadSpec, tok: Tokenizer) -> tuple[list[Sample], str]:
    samples, _ = _random(
        WorkloadSpec(**{**spec.__dict__, "range_ratio": 0.0, "dist": "uniform"}), tok
    )
    return samples, (
        f"fixed {spec.input_len or 1024} in / {spec.output_len or 128} out"
        + (f", shared prefix {spec.prefix_len}" if spec.prefix_len else "")
    )


def _sharegpt(spec: WorkloadSpec, tok: Tokenizer) -> tuple[list[Sample], str]:
    if spec.dataset_path is None:
        raise ValueError("the sharegpt workload needs --dataset-path FILE.json")
    data = orjson.loads(Path(spec.dataset_path).read_bytes())
    rng = random.Random(spec.seed)
    convs = [
        d["conversations"]
        for d in data
        if isinstance(d, dict) and len(d.get("conversations") or []) >= 2
    ]
    rng.shuffle(convs)
    samples: list[Sample] = []
    for conv in convs:
        prompt, reply = str(conv[0].get("value", "")), str(conv[1].get("value", ""))
        n_in = tok.count(prompt)
        n_out = spec.output_len or tok.count(reply)
        # vLLM's is_valid_sequence: min 4 tokens each, prompt ≤ 1024, prompt + output ≤ 2048
        if n_in < 4 or n_out < 4 or n_in > 1024 or n_in + n_out > 2048:
            continue
        samples.append(Sample((("user", prompt),), n_in, n_out))
        if len(samples) == spec.num_prompts:
            break
    if not samples:
        raise ValueError(f"{spec.dataset_path}: no usable ShareGPT conversation")
    return samples, f"ShareGPT file {spec.dataset_path} ({len(samples)} conversations)"


def _classification(spec: WorkloadSpec, tok: Tokenizer) -> tuple[list[Sample], str]:
    rng = random.Random(spec.seed)
    src = TextSource(tok, rng)
    system_len, out_len = spec.prefix_len or 5000, spec.output_len or 5
    system = src.text(system_len, lead="You classify support tickets. Answer with one label. ")
    samples = []
    for i in range(spec.num_prompts):
        n_user = rng.randint(40, 60) if spec.input_len is None else spec.input_len
        user = src.text(n_user, lead=f"Ticket {i}: ")
        samples.append(
            Sample((("system", system), ("user", user)), system_len + n_user, out_len, system_len)
        )
    return samples, (
        f"classification: {system_len}-token shared system prompt, ~50-token "
        f"message, {out_len} tokens out"
    )


def _extraction(spec: WorkloadSpec, tok: Tokenizer) -> tuple[list[Sample], str]:
    rng = random.Random(spec.seed)
    src = TextSource(tok, rng)
    instr_len, doc_len, out_len = 120, spec.input_len or 2000, spec.output_len or 300
    instructions = src.text(instr_len, lead="Extract every party, date and amount as JSON. ")
    samples = []
    for i in range(spec.num_prompts):
        doc = src.text(doc_len, lead=f"Document {i}: ")
        samples.append(
            Sample(
                (("system", instructions), ("user", doc)), instr_len + doc_len, out_len, instr_len
            )
        )
    return samples, f"extraction: {doc_len}-token document in, {out_len} tokens of JSON out"


def _chat(spec: WorkloadSpec, tok: Tokenizer) -> tuple[list[Sample], str]:
    rng = random.Random(spec.seed)
    src = TextSource(tok, rng)
    system_len, out_len = 60, spec.output_len or 500
    system = src.text(system_len, lead="You are a helpful assistant. ")
    samples = []
    for i in range(spec.num_prompts):
        turns: list[tuple[str, str]] = [("system", system)]
        n = system_len
        for turn in range(2):  # two earlier exchanges: the conversation so far
            turns += [
                ("user", src.text(40, lead=f"Chat {i} question {turn}: ")),
                ("assistant", src.text(150)),
            ]
            n += 190
        turns.append(("user", src.text(60, lead=f"Chat {i} follow-up: ")))
        samples.append(Sample(tuple(turns), n + 60, out_len, system_len))
    return samples, f"chat: 3rd turn of a conversation, ~500 tokens in, {out_len} out"


WORKLOADS: dict[str, Builder] = {
    "fixed": _fixed,
    "random": _random,
    "sharegpt": _sharegpt,
    "classification": _classification,
    "extraction": _extraction,
    "chat": _chat,
}


def build_workload(spec: WorkloadSpec, tokenizer: Tokenizer) -> Workload:
    if spec.name not in WORKLOADS:
        raise ValueError(f"unknown workload {spec.name!r}; known: {', '.join(WORKLOADS)}")
    if spec.num_prompts < 1:
        raise ValueError("num_prompts must be at least 1")
    samples, description = WORKLOADS[spec.name](spec, tokenizer)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in spec.__dict__.items()}
    return Workload(
        spec.name, tuple(samples), tokenizer.name, tokenizer.exact, description, settings
    )
