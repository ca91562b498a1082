"""After a request: its ledger row first, then the consumers that learn from it.

The pipeline hands each request's `Outcome` to `record` — a non-blocking put on the ledger
writer's queue, the only thing on the request's path. In the writer's task, `finalize` prices
the outcome (`metering.price`, pure), builds the row (`metering.ledger_row`), then gives the
outcome to each consumer: metrics, router learning, budget settlement, the access log, the
shadow calls of quality evidence. A
consumer that fails is logged and counted (`gateway_after_request_errors_total{consumer}`); the
row is returned, and written, regardless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from gateway.metrics import GatewayMetrics
from gateway.quality.shadow import Shadow
from gateway.routing.router import Router
from gateway.serving.metering import Priced, Row, ledger_row, price
from gateway.serving.outcome import Outcome

log = logging.getLogger("gateway.after")

Consumer = Callable[[Outcome, Priced], None]


class AfterRequest:
    def __init__(self, consumers: Mapping[str, Consumer], on_error: Callable[[str], None]) -> None:
        self._consumers = dict(consumers)
        self._on_error = on_error

    def finalize(self, outcome: Outcome) -> Row:
        priced = price(outcome)
        row = ledger_row(outcome, priced)
        for name, consume in self._consumers.items():
            try:
                consume(outcome, priced)
            except Exception:
                log.exception("after-request consumer %s failed on %s", name, outcome.request_id)
                self._on_error(name)
        return row


def metrics_consumer(metrics: GatewayMetrics) -> Consumer:
    def consume(o: Outcome, p: Priced) -> None:
        if o.target is None:
            metrics.client_error(o.status_code)
            return
        metrics.observe(
            model=o.target.model,
            provider=o.target.provider.name,
            status=o.status_code,
            latency_s=o.latency_s,
            ttft_s=o.ttft_s,
            usage=p.usage if (o.usage is not None or p.estimated) else None,
            cost_usd=p.total_usd,
        )

    return consume


def router_consumer(router: Router) -> Consumer:
    def consume(o: Outcome, p: Priced) -> None:
        router.observe(
            o.route,
            o.target,
            completion_tokens=p.usage.completion_tokens,
            ttft_s=o.ttft_s,
            prefix_key=o.prefix_key,
            ok=o.status_code < 400,
        )

    return consume


def shadow_consumer(shadow: Shadow) -> Consumer:
    """A sampled request's shadow call starts here: its answer has gone to the client."""

    def consume(o: Outcome, p: Priced) -> None:
        if o.shadow_of is None:
            model = o.target.model if o.target is not None else None
            shadow.finished(o.request_id, o.status_code < 400, model, p.usage, p.total_usd)

    return consume


def standard(
    metrics: GatewayMetrics, router: Router, extra: Mapping[str, Consumer] | None = None
) -> AfterRequest:
    """The consumers every gateway runs, then `extra` (governance's settlement, the access
    log) in the order given."""
    return AfterRequest(
        {"metrics": metrics_consumer(metrics), "router": router_consumer(router), **(extra or {})},
        on_error=lambda name: metrics.after_request_errors.labels(name).inc(),
    )
