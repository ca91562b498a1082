from decimal import Decimal

import pytest

from gateway.config import ConfigError, parse_config
from gateway.pricing.table import build_price_table, load_litellm_table


def _config(models: list[dict[str, object]]) -> object:
    return parse_config(
        {
            "providers": [{"name": "p", "kind": "openai", "api_base": "http://127.0.0.1:1/v1"}],
            "models": models,
        },
        source="t.yaml",
        environ={},
    )


def test_prices_come_from_litellms_table() -> None:
    table = load_litellm_table()
    entry = table["gpt-4o-mini"]
    prices = build_price_table(_config([{"name": "gpt-4o-mini", "provider": "p"}]))  # type: ignore[arg-type]
    p = prices["gpt-4o-mini"]
    assert p.source == "table"
    assert p.input == Decimal(str(entry["input_cost_per_token"]))
    assert p.output == Decimal(str(entry["output_cost_per_token"]))
    assert p.cache_read == Decimal(str(entry["cache_read_input_token_cost"]))


def test_upstream_model_and_price_key_are_looked_up() -> None:
    prices = build_price_table(
        _config(
            [  # type: ignore[arg-type]
                {"name": "mini", "provider": "p", "upstream_model": "gpt-4o-mini"},
                {"name": "emb", "provider": "p", "price_key": "text-embedding-3-small"},
            ]
        )
    )
    assert prices["mini"].input == Decimal("1.5E-7")
    assert prices["emb"].input == Decimal("2E-8")


def test_override_wins_for_retired_models() -> None:
    prices = build_price_table(
        _config(
            [  # type: ignore[arg-type]
                {
                    "name": "claude-3-5-haiku-20241022",
                    "provider": "p",
                    "price": {
                        "input_per_mtok": 0.8,
                        "output_per_mtok": 4.0,
                        "cache_read_per_mtok": 0.08,
                        "cache_write_per_mtok": 1.0,
                    },
                }
            ]
        )
    )
    p = prices["claude-3-5-haiku-20241022"]
    assert (p.input, p.output, p.cache_read, p.cache_write, p.source) == (
        Decimal("8E-7"),
        Decimal("0.000004"),
        Decimal("8E-8"),
        Decimal("0.000001"),
        "config",
    )


def test_a_model_with_no_price_is_a_startup_error_not_zero() -> None:
    with pytest.raises(ConfigError, match="no-such-model.*no price"):
        build_price_table(_config([{"name": "no-such-model", "provider": "p"}]))  # type: ignore[arg-type]


def test_partial_lookup_matches_the_full_table() -> None:
    from gateway.pricing.table import load_litellm_entries

    full = load_litellm_table()
    keys = ["gpt-4o-mini", "claude-haiku-4-5", "text-embedding-3-small", "not-a-model"]
    assert load_litellm_entries(keys) == {k: full[k] for k in keys if k in full}


def test_partial_lookup_falls_back_when_the_layout_changes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gateway.pricing.table import load_litellm_entries

    p = tmp_path / "t.json"
    p.write_text('{"m": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}}')
    assert load_litellm_entries(["m"], p) == {
        "m": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}
    }
