"""The non-streamed request's disconnect watch: cancels the body when the client goes away,
and leaves nothing behind for the cycle collector when it does not."""

from __future__ import annotations

import asyncio
import gc

import pytest
from starlette.types import Message

from gateway.api.http import WATCH_AFTER_S, DisconnectWatch


async def test_a_disconnect_cancels_the_body_and_is_absorbed() -> None:
    gone = asyncio.Event()

    async def receive() -> Message:
        await gone.wait()
        return {"type": "http.disconnect"}

    finished = False
    async with DisconnectWatch(receive) as watch:
        asyncio.get_running_loop().call_later(0.01, gone.set)
        await asyncio.sleep(10)
        finished = True
    assert watch.gone and not finished
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_fast_answer_starts_no_watcher_task() -> None:
    async def receive() -> Message:
        raise AssertionError("a fast answer never reads")

    before = len(asyncio.all_tasks())
    async with DisconnectWatch(receive) as watch:
        await asyncio.sleep(0)
        assert len(asyncio.all_tasks()) == before
    assert not watch.gone
    await asyncio.sleep(WATCH_AFTER_S * 2)  # and its timer was cancelled: nothing starts later
    assert len(asyncio.all_tasks()) == before


@pytest.mark.parametrize("wait_s", [0.0, WATCH_AFTER_S * 2])
async def test_a_request_that_ends_first_leaves_no_reference_cycle(wait_s: float) -> None:
    """Each request used to leave its watcher task, frames and uvicorn cycle in a reference
    cycle (~25 objects) that only the collector freed: GC work on every request. Both with
    no watcher (a fast answer) and with one (a slow answer)."""

    async def receive() -> Message:
        await asyncio.Event().wait()
        raise AssertionError("never")

    async def answer() -> bool:
        async with DisconnectWatch(receive) as watch:
            await asyncio.sleep(wait_s)
        return watch.gone

    gc.collect()
    gc.disable()
    try:
        assert not await answer()
        for _ in range(3):  # the watcher's cancellation runs
            await asyncio.sleep(0)
        assert gc.collect() == 0
    finally:
        gc.enable()
