"""What self-hosted traffic would have cost at the reference API model — pure, exact.

Each self-hosted group's recorded usage (prompt, cached, cache-write and completion tokens)
is priced at `finance.reference_model`'s price with its cache rates (`pricing/cost.py`). The
cost is linear in the token counts, so pricing a group's sums equals summing its rows' prices
(for rows whose cached + written tokens do not exceed their prompt, as the adapters record).
API traffic's reference cost is its actual cost: it went to an API anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from gateway.config import GatewayConfig
from gateway.core import Price, Usage
from gateway.pricing.cost import cost

USD_QUANTUM = Decimal("1e-12")  # the ledger's precision


def reference_price(config: GatewayConfig, prices: Mapping[str, Price]) -> Price | None:
    name = config.finance.reference_model
    return None if name is None else prices.get(name)


def local_providers(config: GatewayConfig) -> frozenset[str]:
    return frozenset(p.name for p in config.providers if p.self_hosted)


def reference_cost(usage: Usage, actual_usd: Decimal, local: bool, price: Price | None) -> Decimal:
    if not local or price is None:
        return actual_usd
    return cost(usage, price).total_usd.quantize(USD_QUANTUM)
