"""Turn the model name a client sent into a `Decision`: ordered targets plus the reason.

Today a name resolves to exactly one configured model (`pinned`); routes with policies over
several candidates (cost, local-first, latency, ordered) plug in here without the serving layer
changing, because it only ever executes a `Decision`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.errors import ModelNotFound
from gateway.pricing.cost import Price
from gateway.providers.base import Target


@dataclass(frozen=True, slots=True)
class Decision:
    targets: tuple[Target, ...]
    reason: str


class Router:
    def __init__(self, config: GatewayConfig, prices: Mapping[str, Price]) -> None:
        self._decisions: dict[str, Decision] = {}
        for m in config.models:
            provider = config.provider(m.provider)
            target = Target(m.name, m.target_model, provider, prices[m.name], m)
            reason = f"pinned: {m.name} → {provider.name} ({m.target_model})"
            self._decisions[m.name] = Decision((target,), reason)

    @property
    def model_names(self) -> list[str]:
        return list(self._decisions)

    def targets(self) -> list[Target]:
        return [d.targets[0] for d in self._decisions.values()]

    def decide(self, model: str) -> Decision:
        d = self._decisions.get(model)
        if d is None:
            raise ModelNotFound(model, self.model_names)
        return d
