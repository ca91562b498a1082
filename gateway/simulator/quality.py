"""Answer quality: how often each simulated model's answer agrees with a task's true answer.

A request belongs to a task when it names one (the `x-gateway-task` header, or `metadata.task`
in the body) or when the sha256 of its system prompt starts with one of the task's
`system_prompt_sha256` prefixes — the rules `gateway/quality/tasks.py` applies at the gateway,
written again here because the simulator never imports the gateway it stands behind. The system
prompt is the leading `system`/`developer` messages' text joined by "\\n" (a content list gives
its parts' `text` run together); Anthropic's `system` field is the same text.

Every request of a known task has one *true* answer, a function of its task and its last user
message only. A model (a profile name) answers it truly with probability `agreement[profile]
[task]` (1.0 when not listed: an unlisted profile is the reference), drawn from the seed, the
profile, the task and the message — so the same request always gets the same answer from the
same model under the same seed, and two models' agreement is the product of their draws. By kind:

    label        one of `labels`; a miss is another label                  (compare: label)
    json_fields  a JSON object of `fields`; each field true independently  (compare: json_fields)
                 with the rate, a miss is another value
    text         words; each word true independently with the rate, a miss (compare: text)
                 a word from a vocabulary the true answers never use, so
                 token F1 (and ROUGE-L) with the true answer averages the rate

Requests of no known task are answered as before (`plans.py`). The answer keeps the plan's
length when the limit cut it (padded with spaces, which leave a label and a JSON object what
they are; cut when longer), so token counts and timing do not change with quality.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson

from gateway.simulator.plans import ChoicePlan, GenerationPlan
from gateway.simulator.tokens import last_user_text

TaskKind = Literal["label", "json_fields", "text"]
KINDS: tuple[TaskKind, ...] = ("label", "json_fields", "text")
TASK_HEADER = b"x-gateway-task"
DEFAULT_LABELS = ("billing", "refund", "delivery", "account", "technical", "other")
DEFAULT_FIELDS = ("party", "date", "amount", "renewal")
PAD = " "

_TRUE_WORDS = (
    "your order ships today and the refund reaches your account within five working days "
    "please keep the receipt we are sorry for the delay thanks for your patience"
).split()
_MISS_WORDS = (
    "perhaps maybe unclear probably somewhat generally however typically various several "
    "certain possibly apparently roughly likely"
).split()  # disjoint from _TRUE_WORDS: a missed word never matches by chance


@dataclass(frozen=True, slots=True)
class SimTask:
    name: str
    kind: TaskKind = "text"
    labels: tuple[str, ...] = DEFAULT_LABELS
    fields: tuple[str, ...] = DEFAULT_FIELDS
    system_prompt_sha256: tuple[str, ...] = ()  # hex prefixes (12+ characters) recognised


@dataclass(frozen=True, slots=True)
class Quality:
    """Tasks by name and agreement rates by profile name, then task name."""

    tasks: Mapping[str, SimTask] = field(default_factory=dict)
    agreement: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def rate(self, profile: str, task: str) -> float:
        return self.agreement.get(profile, {}).get(task, 1.0)

    def merged(self, other: Quality) -> Quality:
        """This table with `other`'s tasks and rates in place of the same entries."""
        agreement = {p: dict(rates) for p, rates in self.agreement.items()}
        for profile, rates in other.agreement.items():
            agreement.setdefault(profile, {}).update(rates)
        return Quality({**self.tasks, **other.tasks}, agreement)

    def to_json(self) -> dict[str, Any]:
        return {
            "tasks": {
                t.name: {
                    "kind": t.kind,
                    "labels": list(t.labels),
                    "fields": list(t.fields),
                    "system_prompt_sha256": list(t.system_prompt_sha256),
                }
                for t in self.tasks.values()
            },
            "agreement": {p: dict(r) for p, r in self.agreement.items()},
        }


class QualityError(ValueError):
    """A quality table the simulator refuses; the message names the entry."""


# The local 8B model against the reference (an unlisted profile, e.g. claude-haiku), by task:
# the example figures; the hosted small models in between. Choices, not measurements.
_LOCAL = {"classification": 0.96, "extraction": 0.88, "chat": 0.70}
DEFAULT_QUALITY = Quality(
    tasks={
        "classification": SimTask("classification", "label"),
        "extraction": SimTask("extraction", "json_fields"),
        "chat": SimTask("chat", "text"),
    },
    agreement={
        "llama-3.1-8b-h100": _LOCAL,
        "llama-3.1-8b-h100-fp16": _LOCAL,
        "gpt-4o-mini": {"classification": 0.99, "extraction": 0.96, "chat": 0.85},
        "gemini-flash": {"classification": 0.98, "extraction": 0.93, "chat": 0.78},
    },
)


def parse_quality(data: object) -> Quality:
    """`{tasks: {name: {kind, labels, fields, system_prompt_sha256}}, agreement: {profile:
    {task: rate}}}` (both optional) → a `Quality`; raises QualityError naming the entry."""
    if not isinstance(data, Mapping):
        raise QualityError("a quality table is an object with `tasks` and `agreement`")
    unknown = set(data) - {"tasks", "agreement"}
    if unknown:
        raise QualityError(f"unknown keys {sorted(unknown)} (known: tasks, agreement)")
    tasks: dict[str, SimTask] = {}
    for name, raw in _mapping(data.get("tasks"), "tasks").items():
        spec = _mapping(raw, f"tasks.{name}")
        kind = spec.get("kind", "text")
        if kind not in KINDS:
            raise QualityError(f"tasks.{name}.kind: {kind!r} is not one of {', '.join(KINDS)}")
        where = f"tasks.{name}.system_prompt_sha256"
        hashes = _strings(spec.get("system_prompt_sha256", ()), where)
        for h in hashes:
            if len(h) < 12 or any(c not in "0123456789abcdef" for c in h):
                raise QualityError(f"tasks.{name}.system_prompt_sha256: {h!r} is not 12+ hex")
        tasks[str(name)] = SimTask(
            str(name),
            kind,
            _strings(spec.get("labels", DEFAULT_LABELS), f"tasks.{name}.labels", minimum=2),
            _strings(spec.get("fields", DEFAULT_FIELDS), f"tasks.{name}.fields", minimum=1),
            hashes,
        )
    agreement: dict[str, dict[str, float]] = {}
    for profile, rates in _mapping(data.get("agreement"), "agreement").items():
        for task, rate in _mapping(rates, f"agreement.{profile}").items():
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise QualityError(f"agreement.{profile}.{task}: {rate!r} is not within 0–1")
            agreement.setdefault(str(profile), {})[str(task)] = float(rate)
    return Quality(tasks, agreement)


def _mapping(value: object, where: str) -> Mapping[str, object]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise QualityError(f"{where}: must be an object")
    return value


def _strings(value: object, where: str, minimum: int = 0) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise QualityError(f"{where}: must be a list of strings")
    if len(set(value)) < minimum:
        raise QualityError(f"{where}: needs at least {minimum} distinct entries")
    return tuple(value)


# --- which task ------------------------------------------------------------------------------


def system_prompt(messages: Sequence[object]) -> str | None:
    """The leading system/developer messages' text, as gateway/quality/tasks.py reads it."""
    parts: list[str] = []
    for m in messages:
        if not isinstance(m, Mapping) or m.get("role") not in ("system", "developer"):
            break
        parts.append(block_text(m.get("content")))
    return "\n".join(parts) if parts else None


def block_text(content: object) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def header_task(scope: Mapping[str, Any]) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == TASK_HEADER:
            return bytes(value).decode("latin-1") or None
    return None


def identify(
    quality: Quality,
    scope: Mapping[str, Any],
    metadata: object,
    system: Callable[[], str | None],
) -> SimTask | None:
    """The request's task: the header's name, `metadata.task`, else its system prompt's hash
    (`system` is called only when some task is matched by hash)."""
    named = header_task(scope)
    if named is None and isinstance(metadata, Mapping) and isinstance(metadata.get("task"), str):
        named = metadata["task"]
    if named:
        return quality.tasks.get(named)
    if not any(t.system_prompt_sha256 for t in quality.tasks.values()):
        return None
    text = system()
    if text is None:
        return None
    digest = hashlib.sha256(text.encode()).hexdigest()
    for task in quality.tasks.values():
        if any(digest.startswith(h) for h in task.system_prompt_sha256):
            return task
    return None


# --- the answer ------------------------------------------------------------------------------


def _rng(*parts: object) -> random.Random:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def answer(
    task: SimTask, profile: str, rate: float, key: str, words: int, seed: int = 0
) -> tuple[str, ...]:
    """The pieces (streamed tokens) of `profile`'s answer to the request `key` of `task`."""
    truth = _rng("truth", task.name, key)
    draw = _rng(seed, profile, task.name, key)
    if task.kind == "label":
        true = truth.choice(task.labels)
        if draw.random() < rate:
            return (true,)
        return (draw.choice([label for label in task.labels if label != true]),)
    if task.kind == "json_fields":
        obj = {}
        for name in task.fields:
            value = truth.randrange(1000)
            if draw.random() >= rate:
                value = (value + 1 + draw.randrange(999)) % 1000
            obj[name] = f"{name}-{value}"
        text = orjson.dumps(obj).decode()
        return tuple(text[i : i + 4] for i in range(0, len(text), 4))
    out = []
    for i in range(max(words, 1)):
        word = truth.choice(_TRUE_WORDS)
        if draw.random() >= rate:
            word = draw.choice(_MISS_WORDS)
        out.append(word if i == 0 else " " + word)
    return tuple(out)


def _fit(pieces: tuple[str, ...], steps: int, cut: bool) -> tuple[str, ...]:
    if not cut:
        return pieces
    return pieces[:steps] + (PAD,) * (steps - len(pieces))


def answered(
    plan: GenerationPlan,
    task: SimTask | None,
    quality: Quality,
    profile: str,
    key: str,
    seed: int = 0,
) -> GenerationPlan:
    """`plan` with its text choices answering `task` (tool calls are left as they are)."""
    if task is None:
        return plan
    rate = quality.rate(profile, task.name)
    choices = []
    for i, c in enumerate(plan.choices):
        if c.tool_name is not None:
            choices.append(c)
            continue
        cut = c.finish_reason == "length"
        pieces = answer(task, profile, rate, key if i == 0 else f"{key}#{i}", len(c.pieces), seed)
        choices.append(ChoicePlan(_fit(pieces, len(c.pieces), cut), c.finish_reason))
    return replace(plan, choices=tuple(choices))


def answered_chat(
    plan: GenerationPlan,
    quality: Quality,
    scope: Mapping[str, Any],
    body: Mapping[str, Any],
    profile: str,
    seed: int = 0,
) -> GenerationPlan:
    """A chat-shaped request's plan (OpenAI chat, Responses, Gemini read as chat) answering its
    task, if it has one."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return plan
    task = identify(quality, scope, body.get("metadata"), lambda: system_prompt(messages))
    return answered(plan, task, quality, profile, last_user_text(messages), seed)


def answered_pieces(
    pieces: tuple[str, ...],
    cut: bool,
    task: SimTask,
    quality: Quality,
    profile: str,
    key: str,
    seed: int = 0,
) -> tuple[str, ...]:
    """One text block's pieces answering `task` (Anthropic's plan keeps blocks, not choices)."""
    rate = quality.rate(profile, task.name)
    return _fit(answer(task, profile, rate, key, len(pieces), seed), len(pieces), cut)


def load_quality(path: str, base: Quality = DEFAULT_QUALITY) -> Quality:
    """A YAML or JSON file's table merged over `base` (`gateway simulate --quality FILE`)."""
    import yaml

    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    return base.merged(parse_quality(data))
