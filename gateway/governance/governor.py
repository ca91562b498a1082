"""The pipeline's admission hook (serving/admission.py) when auth is on, and its settlement.

`authorize` refuses models a key may not use and says whether its team is past the soft
budget. `admit` puts one operation — every rate limit, budget and revocation check of both the
key's and the team's scope, and the reservation of the request's maximum cost — through the
shared counters (one Redis round trip, or none: see shared.py), then turns the answer into
`x-ratelimit-*` and `x-gateway-budget-warning` headers or a 401/429. `settle`, an
after-request consumer, releases the reservation and charges the actual cost and completion
tokens. Requests made with the master key are not limited.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import GatewayConfig
from gateway.core import ClientRequest
from gateway.errors import GatewayError
from gateway.governance import store
from gateway.governance.counters import Op
from gateway.governance.directory import KeyDirectory
from gateway.governance.errors import BudgetExceeded, PermissionDenied, RateLimited, unauthenticated
from gateway.governance.keys import hash_secret_from
from gateway.governance.plan import (
    Admitted,
    Refusal,
    Scope,
    Usage,
    Window,
    Windows,
    admit_op,
    duration,
    key_scope,
    max_cost,
    read_admit,
    revoke_op,
    scopes_of,
    seed_op,
    team_scope,
    usd,
)
from gateway.governance.records import MASTER_KEY_ID, ApiKey, Team
from gateway.governance.shared import SharedCounters
from gateway.metrics import GatewayMetrics
from gateway.routing.policies import Decision
from gateway.serving.metering import Priced, estimate_prompt_tokens
from gateway.serving.outcome import Outcome, RequestContext

log = logging.getLogger("gateway.governance")

WINDOW_NAMES = {"day": "daily", "month": "monthly"}


@functools.lru_cache(maxsize=64)
def _reset_in(tenths: int) -> bytes:
    return duration(tenths * 100).encode()


def _reset_header(now_ms: int) -> bytes:
    """When the window is back to full: the newest bucket's expiry (60-61 s), to 0.1 s."""
    return _reset_in(((now_ms // 1000 + 61) * 1000 - now_ms + 99) // 100)


def _money(nanodollars: int) -> str:
    return f"${usd(nanodollars).quantize(Decimal('0.0001'))}"


class Governor:
    def __init__(self, config: GatewayConfig, engine: AsyncEngine, metrics: GatewayMetrics):
        auth, gov = config.auth, config.governance
        assert auth.master_key is not None, "governance runs only with auth on"
        self.hash_key = hash_secret_from(auth.master_key, auth.key_hash_secret)
        self._engine = engine
        self.metrics = metrics
        self.directory = KeyDirectory(engine, self.hash_key, auth.refresh_interval_s)
        redis = None
        if config.redis_url:  # imported here: redis costs ~10% of startup, and most run without
            from gateway.governance.redis_counters import RedisCounters

            redis = RedisCounters(config.redis_url, gov.redis_key_prefix, gov.redis_timeout_s)
        self.counters = SharedCounters(redis, self._seeds, self._redis_state, self._redis_call)
        self._soft = gov.soft_budget_fraction
        self._ttl_ms = int(gov.reservation_ttl_s * 1000)
        self._windows = Windows()
        self._team_soft: dict[str, bool] = {}  # team → past its soft budget, as last seen
        self._warned: set[tuple[str, str, int]] = set()  # (scope, window, id): logged once
        self._scope_cache: dict[str, tuple[ApiKey, Team | None, tuple[Scope, ...], bool]] = {}

    async def start(self) -> None:
        try:
            await self.directory.refresh()
        except Exception as e:  # the poll keeps trying; until then only the master key works
            log.error("cannot read keys and teams (%s)", type(e).__name__)
        self.directory.start()
        await self.counters.start()

    async def aclose(self) -> None:
        await self.directory.aclose()
        await self.counters.aclose()

    def status(self) -> dict[str, object]:
        out: dict[str, object] = {"counters": self.counters.mode}
        if self.counters.down_since is not None:
            out["redis_down_since"] = round(self.counters.down_since, 3)
        return out

    def _redis_call(self, ops: int) -> None:
        self.metrics.redis_calls.inc()
        self.metrics.redis_operations.inc(ops)

    def _redis_state(self, up: bool) -> None:
        self.metrics.redis_up.set(1 if up else 0)
        if not up:
            self.metrics.redis_fallbacks.inc()

    async def _seeds(self) -> list[Op]:
        """The counters as the database has them: spend from the ledger, revoked keys."""
        w = Window.at(time.time())
        spent = await store.spend(self._engine, w.day_starts, w.month_starts)
        ops = [seed_op(key_scope(k), w, d, m) for k, (d, m) in spent.keys.items()]
        ops += [seed_op(team_scope(t), w, d, m) for t, (d, m) in spent.teams.items()]
        ops += [revoke_op(k.id) for k in self.directory.keys() if k.revoked_at is not None]
        for team in self.directory.teams():
            d, m = spent.teams.get(team.name, (Decimal(0), Decimal(0)))
            self._team_soft[team.name] = self._past_soft(team, d, m)
        return ops

    def _past_soft(self, team: Team, day_usd: Decimal, month_usd: Decimal) -> bool:
        lim, soft = team.limits, Decimal(str(self._soft))
        return (lim.budget_usd_day is not None and day_usd >= soft * lim.budget_usd_day) or (
            lim.budget_usd_month is not None and month_usd >= soft * lim.budget_usd_month
        )

    # --- admin changes made on this replica -------------------------------------------------

    def key_changed(self, key: ApiKey) -> None:
        self.directory.put_key(key)

    def team_changed(self, team: Team) -> None:
        self.directory.put_team(team)

    def team_deleted(self, name: str) -> None:
        self.directory.drop_team(name)

    async def key_revoked(self, key: ApiKey) -> None:
        """Every replica refuses the key from its next request on (with Redis)."""
        self.directory.put_key(key)
        await self.counters.call(revoke_op(key.id))

    # --- the admission hook ---------------------------------------------------------------

    def authorize(self, req: ClientRequest, ctx: RequestContext) -> bool:
        key = self.directory.key(ctx.api_key_id)
        if key is None:  # the master key
            return False
        if key.models is not None and req.model not in key.models:
            raise PermissionDenied(
                f"This API key may not use `{req.model}`. "
                f"It may use: {', '.join(sorted(key.models)) or 'nothing'}.",
                param="model",
                code="model_not_allowed",
            )
        return self._team_soft.get(key.team, False)

    async def admit(self, req: ClientRequest, ctx: RequestContext, decision: Decision) -> None:
        key = self.directory.key(ctx.api_key_id)
        if key is None:
            return
        team = self.directory.team(key.team)
        scopes, budgeted = self._scopes(key, team)
        window = self._windows.at(ctx.created_at)
        prompt = estimate_prompt_tokens(req)
        reserve = max_cost(req, decision.targets, prompt) if budgeted else 0
        reply = await self.counters.call(
            admit_op(ctx.request_id, scopes, prompt, reserve, window, self._ttl_ms)
        )
        answer = read_admit(reply, scopes)
        if isinstance(answer, Refusal):
            raise self._refusal(answer, window, prompt, reserve)
        self._headers(answer, window, ctx.headers)

    def _scopes(self, key: ApiKey, team: Team | None) -> tuple[tuple[Scope, ...], bool]:
        """The key's and team's scopes, made again only when either record changed."""
        cached = self._scope_cache.get(key.id)
        if cached is None or cached[0] is not key or cached[1] is not team:
            budgeted = key.limits.has_budget or (team is not None and team.limits.has_budget)
            cached = (key, team, scopes_of(key, team), budgeted)
            self._scope_cache[key.id] = cached
        return cached[2], cached[3]

    def _headers(self, a: Admitted, window: Window, out: list[tuple[bytes, bytes]]) -> None:
        """OpenAI's x-ratelimit-* headers for the tighter scope; budget warnings."""
        requests = tokens = None  # (limit, remaining) of the scope with the least left
        soft = self._soft
        warnings: list[str] = []
        for u in a.usage:  # one pass: this runs for every governed request
            s = u.scope
            if s.rpm >= 0 and (requests is None or s.rpm - u.requests < requests[1]):
                requests = (s.rpm, max(s.rpm - u.requests, 0))
            if s.tpm >= 0 and (tokens is None or s.tpm - u.tokens < tokens[1]):
                tokens = (s.tpm, max(s.tpm - u.tokens, 0))
            if (s.day_nd >= 0 and u.day_nd >= soft * s.day_nd) or (
                s.month_nd >= 0 and u.month_nd >= soft * s.month_nd
            ):
                warnings += self._soft_warnings(u, window)
            elif s.kind == "team" and self._team_soft.get(s.name):
                self._team_soft[s.name] = False  # a new window, or a budget raised
        if requests is not None or tokens is not None:
            reset = _reset_header(a.now_ms)
            if requests is not None:
                out += (
                    (b"x-ratelimit-limit-requests", b"%d" % requests[0]),
                    (b"x-ratelimit-remaining-requests", b"%d" % requests[1]),
                    (b"x-ratelimit-reset-requests", reset),
                )
            if tokens is not None:
                out += (
                    (b"x-ratelimit-limit-tokens", b"%d" % tokens[0]),
                    (b"x-ratelimit-remaining-tokens", b"%d" % tokens[1]),
                    (b"x-ratelimit-reset-tokens", reset),
                )
        if warnings:
            out.append((b"x-gateway-budget-warning", "; ".join(warnings).encode()))

    def _soft_warnings(self, u: Usage, window: Window) -> list[str]:
        s = u.scope
        found, past_soft = [], False
        for name, limit, spent, wid in (
            ("day", s.day_nd, u.day_nd, window.day),
            ("month", s.month_nd, u.month_nd, window.month),
        ):
            if limit < 0 or spent < self._soft * limit:
                continue
            past_soft = True
            found.append(
                f"{s.kind} {s.name} {WINDOW_NAMES[name]} budget "
                f"{spent / limit if limit else 1.0:.0%} used ({_money(spent)} of "
                f"${s.limits.budget_usd_day if name == 'day' else s.limits.budget_usd_month}, "
                f"resets {window.ends(name).isoformat()})"
            )
            self.metrics.budget_warnings.labels(s.kind, name).inc()
            if (s.id, name, wid) not in self._warned:
                self._warned.add((s.id, name, wid))
                log.warning("soft budget passed: %s", found[-1])
        if s.kind == "team":
            self._team_soft[s.name] = past_soft
        return found

    def _refusal(self, r: Refusal, window: Window, prompt: int, reserve: int) -> GatewayError:
        s = r.scope
        if r.reason == "revoked":
            self.metrics.auth_failures.labels("revoked").inc()
            return unauthenticated()
        if r.reason in ("rpm", "tpm"):
            kind = "requests" if r.reason == "rpm" else "tokens"
            self.metrics.rate_limited.labels(s.kind, kind).inc()
            limit = s.limits.rpm if r.reason == "rpm" else s.limits.tpm
            wanted = 1 if r.reason == "rpm" else prompt
            headers = {
                f"x-ratelimit-limit-{kind}": str(limit),
                f"x-ratelimit-remaining-{kind}": str(max((limit or 0) - r.used, 0)),
            }
            if r.retry_ms < 0:
                return RateLimited(
                    f"This request's ~{prompt} prompt tokens exceed the {s.kind} {s.name}'s "
                    f"limit of {limit} tokens per minute.",
                    kind,
                    headers,
                )
            headers[f"x-ratelimit-reset-{kind}"] = duration(r.retry_ms)
            headers["retry-after"] = str(max(math.ceil(r.retry_ms / 1000), 1))
            return RateLimited(
                f"Rate limit reached for {s.kind} {s.name} on {kind} per min "
                f"({r.reason.upper()}): Limit {limit}, Used {r.used}, Requested {wanted}. "
                f"Please try again in {duration(r.retry_ms)}.",
                kind,
                headers,
            )
        self.metrics.budget_refusals.labels(s.kind, r.reason).inc()
        budget = s.limits.budget_usd_day if r.reason == "day" else s.limits.budget_usd_month
        resets = window.ends(r.reason)
        wait = max(math.ceil(resets.timestamp() - r.now_ms / 1000), 1)
        return BudgetExceeded(
            f"Budget exceeded: {s.kind} {s.name}'s {WINDOW_NAMES[r.reason]} budget of ${budget} "
            f"has {_money(r.used)} spent (requests in flight hold more; this one may cost up to "
            f"{_money(reserve)}). It resets at {resets.isoformat()}.",
            {
                "scope": s.kind,
                "name": s.name,
                "window": r.reason,
                "spent_usd": str(usd(r.used).quantize(Decimal("0.000001"))),
                "limit_usd": str(budget),
                "resets_at": resets.isoformat(),
            },
            {"retry-after": str(wait)},
        )

    # --- after the request ----------------------------------------------------------------

    def settle(self, o: Outcome, p: Priced) -> None:
        """An after-request consumer: release the reservation, charge what it really cost."""
        if o.target is None or o.api_key_id is None or o.api_key_id == MASTER_KEY_ID:
            return  # refused before admission reserved anything, or not limited
        key = self.directory.key(o.api_key_id)
        team = self.directory.team(o.team)
        if key is None:
            return
        scopes = self._scopes(key, team)[0]
        window = self._windows.at(o.created_at)
        self.counters.settle(
            tuple(s.id for s in scopes),
            window.day,
            window.month,
            o.request_id,
            math.ceil(p.total_usd * 1_000_000_000),
            p.usage.completion_tokens,
        )
