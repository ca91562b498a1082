"""The drain's bookkeeping of running requests (serving/drain.py), without a server: what the
shutdown log's counts say, and which requests the timeout cuts."""

import asyncio

from gateway.serving.drain import Drain
from gateway.serving.outcome import RequestContext


def _ctx(i: int) -> RequestContext:
    return RequestContext(f"r{i}", 0.0, 0.0)


async def test_counts_and_the_timeout_cuts_only_what_still_runs() -> None:
    drain = Drain()
    sleeper = asyncio.create_task(asyncio.sleep(60))
    quick, slow, late = _ctx(1), _ctx(2), _ctx(3)
    drain.enter(quick, sleeper)
    drain.enter(slow, sleeper)
    drain.begin()
    assert drain.counts.in_flight_at_signal == 2
    drain.enter(late, sleeper)  # served during the drain delay
    assert drain.counts.started_while_draining == 1
    drain.leave(quick)
    drain.leave(late)
    assert drain.counts.finished == 2 and drain.running == 1
    assert drain.expire() == 1
    assert slow.shutdown and not quick.shutdown and drain.counts.cut == 1
    await asyncio.sleep(0)
    assert sleeper.cancelled()
    drain.leave(slow)  # the cut request ends: cut, not finished
    assert drain.counts.finished == 2 and drain.running == 0


async def test_requests_before_any_signal_are_not_counted_as_drain_traffic() -> None:
    drain = Drain()
    task = asyncio.current_task()
    assert task is not None
    ctx = _ctx(1)
    drain.enter(ctx, task)
    drain.leave(ctx)
    assert drain.counts.started_while_draining == 0 and drain.counts.finished == 0
    assert drain.running == 0
