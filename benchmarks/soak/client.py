"""The soak's client: send one planned request, note what came back. Never raises (R12)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from benchmarks.soak.mix import ENDPOINTS, Planned

HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
LEAVE_AFTER_S = 0.1  # an abandoned whole answer: the client gives up this soon


@dataclass(slots=True)
class Tally:
    sent: int = 0
    answered: Counter[str] = field(default_factory=Counter)  # "200", "502", "200+error" …
    disconnected: int = 0  # the client left on purpose
    unanswered: Counter[str] = field(default_factory=Counter)  # no response: why
    # answered requests: id → the status the client saw (0: a stream, whose row may carry a
    # mid-stream error's status), to be found in the ledger
    ids: dict[str, int] = field(default_factory=dict)
    left_ids: list[str] = field(default_factory=list)  # streams the client left midway

    @property
    def answered_total(self) -> int:
        return sum(self.answered.values())


async def send(session: aiohttp.ClientSession, base: str, p: Planned, tally: Tally) -> None:
    tally.sent += 1
    leave_early = p.disconnect and not p.stream
    timeout = aiohttp.ClientTimeout(total=LEAVE_AFTER_S if leave_early else 60)
    try:
        async with session.post(
            base + ENDPOINTS[p.endpoint], data=p.body, headers=HEADERS, timeout=timeout
        ) as resp:
            rid = resp.headers.get("x-request-id", "")
            if p.stream and p.disconnect and resp.status == 200:
                await resp.content.readany()  # the first bytes, then gone
                resp.close()
                tally.disconnected += 1
                tally.left_ids.append(rid)
                return
            data = await resp.read()
    except TimeoutError:
        if leave_early:
            tally.disconnected += 1
        else:
            tally.unanswered["timeout"] += 1
        return
    except (aiohttp.ClientError, OSError) as e:
        tally.unanswered[type(e).__name__] += 1
        return
    except asyncio.CancelledError:
        tally.unanswered["cancelled"] += 1
        raise
    label = str(resp.status)
    if p.stream and resp.status == 200 and _ends_in_error(data):
        label += "+error"
    tally.answered[label] += 1
    tally.ids[rid] = 0 if p.stream else resp.status


def _ends_in_error(data: bytes) -> bool:
    """An error event near a stream's end, in any of the three event grammars."""
    tail = data[-4096:]
    return any(
        m in tail for m in (b'"error":{', b'"error": {', b"event: error", b"response.failed")
    )
