"""From a request body to what the simulated model will produce: validation and plans (pure).

A plan fixes everything about a request's answer before any time passes: prompt tokens, the
tokens of each choice (text words, or the argument pieces of one tool call), finish reasons.
The app then spends the profile's time on it and `wire.py` renders it as OpenAI JSON or SSE.

Output length (documented behaviour of the simulator):
- the limit is `max_completion_tokens`, else `max_tokens` (legacy completions default to 16, as
  OpenAI's API reference says for `/v1/completions`);
- `ignore_eos: true` (vLLM's sampling extension, used by `vllm bench serve`) emits exactly the
  limit; `min_tokens` (vLLM) raises the natural length;
- otherwise the profile's `default_output_tokens`, cut by the limit; a cut means
  `finish_reason: "length"`, else `"stop"`.
Tool calls: with `tools` offered, `tool_choice` "required" or naming a function answers with
one tool call (`finish_reason: "tool_calls"`); so does `auto` (or no `tool_choice`) when the
last message is a user message containing the word "weather"; its arguments are valid against
the function's `parameters` (`schema_values.py`). `response_format` json_object makes the
content a JSON object; json_schema an object valid against the schema (a JSON text cut by the
token limit is cut, with `finish_reason: "length"`, as a model's would be).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.simulator import tokens
from gateway.simulator.profiles import Profile
from gateway.simulator.schema_values import example_json

MAX_N = 128  # OpenAI's documented upper bound for `n`
DEFAULT_EMBEDDING_DIMENSIONS = 1536  # text-embedding-3-small
LEGACY_DEFAULT_MAX_TOKENS = 16


class RequestError(ValueError):
    """A request the simulator refuses with a 400, naming the parameter (OpenAI's `param`)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True)
class ChoicePlan:
    pieces: tuple[str, ...]  # content tokens, or the argument deltas of `tool_name`'s call
    finish_reason: str  # "stop" | "length" | "tool_calls"
    tool_name: str | None = None

    @property
    def steps(self) -> int:
        """Decode steps (= completion tokens): a tool call's name takes one step."""
        return len(self.pieces) + (1 if self.tool_name is not None else 0)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass(frozen=True)
class GenerationPlan:
    model: str
    prompt_tokens: int
    choices: tuple[ChoicePlan, ...]
    stream: bool = False
    include_usage: bool = False
    cached_tokens: int = 0
    prefix_tokens: int = 0  # tokens of all messages but the last (what a prompt cache matches)
    prefix_key: int | None = None  # set when the prefix is long enough to be cached

    @property
    def completion_tokens(self) -> int:
        return sum(choice.steps for choice in self.choices)

    @property
    def steps(self) -> int:
        return max((choice.steps for choice in self.choices), default=0)

    @property
    def engine_finish(self) -> str:
        """vLLM's finished_reason label: a tool call is a "stop" to the engine."""
        return "length" if any(c.finish_reason == "length" for c in self.choices) else "stop"

    @property
    def kv_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class EmbeddingPlan:
    model: str
    seeds: tuple[int, ...]
    prompt_tokens: int
    dimensions: int
    base64: bool = False


def _opt_int(
    body: Mapping[str, object], name: str, minimum: int, maximum: int | None = None
) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise RequestError(f"'{name}' must be an integer, got {value!r}", name)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise RequestError(f"'{name}' must be {bound}, got {value}", name)
    return value


def _require_model(body: Mapping[str, object]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("'model' is required and must be a non-empty string", "model")
    return model


def output_length(
    body: Mapping[str, object], profile: Profile, default_limit: int | None = None
) -> tuple[int, bool]:
    """(tokens to emit, whether the limit cut them: finish_reason "length")."""
    limit = _opt_int(body, "max_completion_tokens", 1)
    if limit is None:
        limit = _opt_int(body, "max_tokens", 1)
    if limit is None:
        limit = default_limit
    natural = max(profile.default_output_tokens, _opt_int(body, "min_tokens", 0) or 0)
    if limit is not None and (natural >= limit or body.get("ignore_eos") is True):
        return limit, True
    return natural, False


def _stream_flags(body: Mapping[str, object]) -> tuple[bool, bool]:
    stream = body.get("stream") is True
    options = body.get("stream_options")
    include_usage = stream and isinstance(options, Mapping) and options.get("include_usage") is True
    return stream, include_usage


def _tool_to_call(
    body: Mapping[str, object], messages: Sequence[object]
) -> Mapping[str, object] | None:
    """The function definition the simulated model calls, or None for a text answer."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        return None
    functions: list[Mapping[str, object]] = [
        t["function"]
        for t in tools
        if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)
    ]
    if not functions:
        raise RequestError("'tools' must be a list of {type: function, function: {...}}", "tools")
    choice = body.get("tool_choice")
    if choice == "none":
        return None
    if isinstance(choice, Mapping):
        wanted = choice.get("function")
        name = wanted.get("name") if isinstance(wanted, Mapping) else None
        for function in functions:
            if function.get("name") == name:
                return function
        raise RequestError(
            f"tool_choice names function {name!r}, which is not in 'tools'", "tool_choice"
        )
    if choice == "required":
        return functions[0]
    last = messages[-1] if messages else None
    if (
        isinstance(last, Mapping)
        and last.get("role") == "user"
        and "weather" in tokens.last_user_text(messages).lower()
    ):
        for function in functions:
            if "weather" in str(function.get("name", "")).lower():
                return function
        return functions[0]
    return None


def plan_chat(body: Mapping[str, object], profile: Profile) -> GenerationPlan:
    model = _require_model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' is required and must be a non-empty list", "messages")
    if not all(isinstance(m, Mapping) for m in messages):
        raise RequestError("every entry of 'messages' must be an object", "messages")
    n = _opt_int(body, "n", 1, MAX_N) or 1
    stream, include_usage = _stream_flags(body)
    prompt_tokens = tokens.count_chat_tokens(messages, body.get("tools"))
    prefix_tokens = (
        prompt_tokens - tokens.count_message_tokens(messages[-1]) - tokens.REPLY_PRIMING_TOKENS
    )
    prefix_key = None
    if profile.cache_min_tokens > 0 and prefix_tokens >= profile.cache_min_tokens:
        prefix_key = tokens.prefix_key(messages)
    seed = tokens.seed_of(tokens.last_user_text(messages))
    function = _tool_to_call(body, messages)
    limit, cut = output_length(body, profile)
    choices: list[ChoicePlan] = []
    explicit = _explicit_limit(body)
    schema = _json_schema(body)
    for index in range(n):
        if function is not None or schema is not None:
            # a whole JSON text, cut only by a limit the client set (as a model's would be)
            name = None if function is None else str(function.get("name", "tool"))
            text = tokens.tool_arguments(function) if function else example_json(schema)
            pieces = tokens.split_pieces(text)
            room = None if explicit is None else explicit - (1 if name is not None else 0)
            truncated = room is not None and len(pieces) > room
            if truncated and room is not None:
                pieces = pieces[: max(room, 0)]
            done = "stop" if name is None else "tool_calls"
            choices.append(ChoicePlan(pieces, "length" if truncated else done, name))
            continue
        if _wants_json(body):
            pieces = tokens.json_reply_tokens(seed + 31 * index, limit)
        else:
            pieces = tokens.reply_tokens(seed + 31 * index, limit)
        choices.append(ChoicePlan(pieces, "length" if cut else "stop"))
    return GenerationPlan(
        model=model,
        prompt_tokens=prompt_tokens,
        choices=tuple(choices),
        stream=stream,
        include_usage=include_usage,
        prefix_tokens=max(prefix_tokens, 0),
        prefix_key=prefix_key,
    )


def _explicit_limit(body: Mapping[str, object]) -> int | None:
    """The output limit the client set, if any."""
    limit = _opt_int(body, "max_completion_tokens", 1)
    return limit if limit is not None else _opt_int(body, "max_tokens", 1)


def _json_schema(body: Mapping[str, object]) -> Mapping[str, object] | None:
    """The schema of `response_format: json_schema`, when the request has one."""
    fmt = body.get("response_format")
    spec = fmt.get("json_schema") if isinstance(fmt, Mapping) else None
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    return schema if isinstance(schema, Mapping) else None


def _wants_json(body: Mapping[str, object]) -> bool:
    fmt = body.get("response_format")
    return isinstance(fmt, Mapping) and fmt.get("type") in ("json_object", "json_schema")


def _prompts(prompt: object) -> list[tuple[str, int]]:
    """Legacy `prompt` (string, strings, token ids, or lists of token ids) → (seed text, tokens)."""
    if isinstance(prompt, str):
        return [(prompt, tokens.text_tokens(prompt))]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt):
            return [(p, tokens.text_tokens(p)) for p in prompt]
        if all(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
            return [(str(prompt[:64]), len(prompt))]
        if all(isinstance(p, list) and p and all(isinstance(t, int) for t in p) for p in prompt):
            return [(str(p[:64]), len(p)) for p in prompt]
    raise RequestError(
        "'prompt' must be a string, a list of strings or a list of token ids", "prompt"
    )


def plan_completion(body: Mapping[str, object], profile: Profile) -> GenerationPlan:
    """A legacy `/v1/completions` request: one set of `n` choices per prompt, in prompt order."""
    model = _require_model(body)
    prompts = _prompts(body.get("prompt"))
    n = _opt_int(body, "n", 1, MAX_N) or 1
    stream, include_usage = _stream_flags(body)
    limit, cut = output_length(body, profile, LEGACY_DEFAULT_MAX_TOKENS)
    choices = [
        ChoicePlan(
            tokens.reply_tokens(tokens.seed_of(text) + 31 * i, limit), "length" if cut else "stop"
        )
        for text, _ in prompts
        for i in range(n)
    ]
    return GenerationPlan(
        model=model,
        prompt_tokens=sum(count for _, count in prompts),
        choices=tuple(choices),
        stream=stream,
        include_usage=include_usage,
    )


def plan_embeddings(body: Mapping[str, object]) -> EmbeddingPlan:
    model = _require_model(body)
    raw = body.get("input")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise RequestError("'input' is required: a string, a list of strings or token ids", "input")
    if all(isinstance(t, int) and not isinstance(t, bool) for t in raw):
        raw = [raw]  # one input given as token ids
    seeds: list[int] = []
    total = 0
    for item in raw:
        if isinstance(item, str):
            seeds.append(tokens.zlib_seed(item))
            total += tokens.text_tokens(item)
        elif isinstance(item, list) and all(isinstance(t, int) for t in item):
            seeds.append(tokens.zlib_seed(str(item)))
            total += len(item)
        else:
            raise RequestError("'input' entries must be strings or lists of token ids", "input")
    dimensions = _opt_int(body, "dimensions", 1, 8192) or DEFAULT_EMBEDDING_DIMENSIONS
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise RequestError("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    return EmbeddingPlan(model, tuple(seeds), total, dimensions, base64=encoding == "base64")
