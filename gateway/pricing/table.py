"""The price table: litellm's maintained model price JSON plus explicit config overrides.

litellm ships `model_prices_and_context_window_backup.json` inside its package. We read that file
as data (locating the package with importlib's finder, which does not execute it) because
importing litellm costs seconds of start-up and hundreds of MiB. Prices are resolved once at
start-up into an immutable mapping; a configured model with no price anywhere is a start-up
error — never a silent zero.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from gateway.config import ConfigError, GatewayConfig, ModelConfig
from gateway.core import Price

TABLE_FILE = "model_prices_and_context_window_backup.json"


def litellm_table_path() -> Path:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("litellm's price table is not installed (pip install litellm)")
    return Path(next(iter(spec.submodule_search_locations))) / TABLE_FILE


def load_litellm_table(path: Path | None = None) -> dict[str, Any]:
    data = orjson.loads((path or litellm_table_path()).read_bytes())
    data.pop("sample_spec", None)
    return data  # type: ignore[no-any-return]


def load_litellm_entries(keys: Iterable[str], path: Path | None = None) -> dict[str, Any]:
    """Only the entries named by `keys`, without materialising the whole 4,900-entry table.

    Parsing all of it costs ~15 MiB at start-up, which every worker then carries as peak RSS
    (the performance budget is 120 MiB a worker). The file is pretty-printed with each model
    at the top level as `\n    "name": {`: find that, decode just the value. Should the
    layout ever change so that no key is found this way, fall back to the full parse.
    """
    text = (path or litellm_table_path()).read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    wanted = list(dict.fromkeys(keys))
    found: dict[str, Any] = {}
    for key in wanted:
        needle = "\n    " + json.dumps(key) + ": "
        at = text.find(needle)
        if at >= 0:
            found[key], _ = decoder.raw_decode(text, at + len(needle))
    if found or not wanted:
        return found
    full = orjson.loads(text)
    return {k: full[k] for k in wanted if k in full}


def _dec(x: Any) -> Decimal | None:
    return None if x is None else Decimal(str(x))


def price_from_entry(entry: Mapping[str, Any]) -> Price | None:
    if "input_cost_per_token" not in entry and "output_cost_per_token" not in entry:
        return None
    return Price(
        input=_dec(entry.get("input_cost_per_token")) or Decimal(0),
        output=_dec(entry.get("output_cost_per_token")) or Decimal(0),
        cache_read=_dec(entry.get("cache_read_input_token_cost")),
        cache_write=_dec(entry.get("cache_creation_input_token_cost")),
        source="table",
    )


def lookup_keys(model: ModelConfig) -> list[str]:
    keys = [model.price_key] if model.price_key else []
    keys += [model.target_model, model.name]
    # vLLM-style names ("meta-llama/Llama-3.1-8B-Instruct") and provider-prefixed ones
    keys += [k.split("/", 1)[1] for k in keys if k and "/" in k]
    return [k for k in dict.fromkeys(keys) if k]


def resolve_price(model: ModelConfig, table: Mapping[str, Any]) -> Price:
    if model.price is not None:
        p = model.price
        return Price.per_mtok(
            p.input_per_mtok,
            p.output_per_mtok,
            p.cache_read_per_mtok,
            p.cache_write_per_mtok,
            source="config",
        )
    for key in lookup_keys(model):
        entry = table.get(key)
        if isinstance(entry, dict) and (price := price_from_entry(entry)) is not None:
            return price
    tried = ", ".join(repr(k) for k in lookup_keys(model))
    raise ConfigError(
        f"model {model.name!r}: no price in litellm's table (looked up {tried}) and no "
        f"`price:` override in the config. Add `price: {{input_per_mtok: …, output_per_mtok: …}}`"
        f" to this model, or `price_key:` naming its entry in the table."
    )


def build_price_table(
    config: GatewayConfig, table: Mapping[str, Any] | None = None
) -> Mapping[str, Price]:
    """Model name → Price for every configured model that needs one from config or the table.

    A self-hosted model (its provider has `gpu:`) without `price:` is priced by its GPU's
    amortised cost instead (see routing.router.model_price), so it is not looked up here.
    """
    models = [
        m for m in config.models if m.price is not None or config.provider(m.provider).gpu is None
    ]
    if table is None and any(m.price is None for m in models):
        table = load_litellm_entries(k for m in models if m.price is None for k in lookup_keys(m))
    return MappingProxyType({m.name: resolve_price(m, table or {}) for m in models})
