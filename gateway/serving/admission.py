"""The pipeline's admission hook: what a caller may ask for, and how much, before any upstream
call. Governance implements it (gateway/governance/governor.py); without auth there is none.

The pipeline calls `authorize` before routing and `admit` between routing and the executor:
the decision's targets are what the request may cost at most. Either raises a `GatewayError`
to refuse (the pipeline records the refusal's ledger row). Headers `admit` appends to
`ctx.headers` go out with the response. What was reserved is settled from the request's
`Outcome`, after it ends, by an after-request consumer.
"""

from __future__ import annotations

from typing import Protocol

from gateway.core import ClientRequest
from gateway.routing.policies import Decision
from gateway.serving.outcome import RequestContext


class Admission(Protocol):
    def authorize(self, req: ClientRequest, ctx: RequestContext) -> bool:
        """Refuse a model the caller may not use; True when the caller's team is past its
        soft budget (routes with a degrade price then keep only cheap candidates)."""
        ...

    async def admit(self, req: ClientRequest, ctx: RequestContext, decision: Decision) -> None:
        """Check rate limits and budgets and reserve the request's maximum cost."""
        ...
