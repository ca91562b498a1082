"""The counterfactual's prices: `--model NAME` and `--price-file FILE` resolved once, up front.

A price file is YAML or JSON in one of two shapes:

* the gateway's own — USD per 1M tokens, like a model's `price:` in the config, with optional
  long-context tiers that apply to every token of a request whose prompt is above them:

      models:
        gpt-4o-mini: {input_per_mtok: 0.15, output_per_mtok: 0.60, cache_read_per_mtok: 0.075}
        gemini-flash:
          input_per_mtok: 0.075
          output_per_mtok: 0.30
          above: [{prompt_tokens: 128000, input_per_mtok: 0.15, output_per_mtok: 0.60}]

* litellm's `model_prices_and_context_window.json` (any version): entries are found by the
  served model's price key, upstream model or name, `…_above_<N>k_tokens` tiers included.

Models the file does not price keep their recorded cost (the report names them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.config import ConfigError, GatewayConfig, PriceOverride
from gateway.core import Price
from gateway.pricing.table import load_litellm_entries, lookup_keys
from gateway.pricing.tiers import TieredPrice, tiered_from_entry
from gateway.routing.router import model_price

PriceOf = Callable[[str], TieredPrice | None]


class _Tier(PriceOverride):
    prompt_tokens: int = Field(ge=0)  # the tier applies above this many prompt tokens


class _FilePrice(PriceOverride):
    above: tuple[_Tier, ...] = ()


class _PriceFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, _FilePrice]


def _per_mtok(p: PriceOverride) -> Price:
    return Price.per_mtok(
        p.input_per_mtok, p.output_per_mtok, p.cache_read_per_mtok, p.cache_write_per_mtok
    )


def _own_format(data: Mapping[str, Any], source: str) -> dict[str, TieredPrice]:
    try:
        parsed = _PriceFile.model_validate(data)
    except ValidationError as e:
        lines = [f"  {'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
        raise ConfigError(f"{source}: invalid price file\n" + "\n".join(lines)) from None
    out = {}
    for name, p in parsed.models.items():
        tiers = sorted((t.prompt_tokens, _per_mtok(t)) for t in p.above)
        out[name] = TieredPrice(_per_mtok(p), tuple((n, pr) for n, pr in tiers))
    return out


def load_price_file(path: Path, config: GatewayConfig) -> PriceOf:
    """The price of a served model (by its configured name) under `path`, or None."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read price file ({e.strerror})") from None
    try:
        data = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    if "models" in data and isinstance(data["models"], dict):
        own = _own_format(data, str(path))
        return own.get
    models = {m.name: m for m in config.models}

    def from_litellm(name: str) -> TieredPrice | None:
        keys = lookup_keys(models[name]) if name in models else [name]
        for key in keys:
            entry = data.get(key)
            if isinstance(entry, dict) and (p := tiered_from_entry(entry)) is not None:
                return p
        return None

    return from_litellm


def model_tiered_price(
    name: str, config: GatewayConfig, prices: Mapping[str, Price]
) -> TieredPrice:
    """`--model NAME`: a configured model's price (a self-hosted one at its GPU's amortised
    rate), with litellm's long-context tiers when its price comes from that table; else an
    entry of litellm's table by that name."""
    models = {m.name: m for m in config.models}
    model = models.get(name)
    if model is not None:
        base = model_price(model, config, prices)
        if base.source != "table":
            return TieredPrice(base)
        keys = lookup_keys(model)
    else:
        keys = [name, *([name.split("/", 1)[1]] if "/" in name else [])]
    entries = load_litellm_entries(keys)
    for key in keys:
        entry = entries.get(key)
        tiered = tiered_from_entry(entry) if isinstance(entry, dict) else None
        if tiered is not None:
            return tiered
    raise ConfigError(
        f"--model {name!r}: not a configured model (configured: "
        f"{', '.join(sorted(models))}) and not in litellm's price table"
    )
