"""Spending a profile's time on one request: admission, first token, per-token pacing, cut-offs.

`stream()` writes SSE frames as the simulated tokens come out; `whole()` only waits the same
total time (the caller renders the JSON afterwards). Both re-read the upstream's running count
at every step, so a request slows down when others join the batch and speeds up when they
leave. With an instant profile neither sleeps nor queues: a stream goes out in one write.
`guarded()` cancels a request whose client went away, which frees its batch slot (vLLM aborts
such requests too, counted as `finished_reason="abort"`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any, Protocol

from gateway.simulator import wire
from gateway.simulator.faults import FaultSpec
from gateway.simulator.plans import GenerationPlan
from gateway.simulator.profiles import tpot_s, ttft_s
from gateway.simulator.upstream import Upstream

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
STREAM_FAULTS = ("drop", "malformed", "stream_error")
MALFORMED_EVENT = b'data: {"id": "chatcmpl-malformed", "choices": [{"delta": {"content": \n\n'
_DECODE_SLICE = 16  # tokens per sleep when nobody watches the individual tokens


class Frames(Protocol):
    steps: int

    def head(self) -> bytes: ...

    def frame(self, step: int) -> bytes: ...

    def tail(self) -> bytes: ...


class DropConnection(Exception):
    """Raised after part of a response was sent, so that the server closes the connection."""


def _record(
    up: Upstream,
    plan: GenerationPlan,
    steps_done: int,
    reason: str,
    first_token: float | None = 0.0,
    e2e: float = 0.0,
    queued: float = 0.0,
) -> None:
    generated = sum(min(steps_done, choice.steps) for choice in plan.choices)
    up.finish(plan.prompt_tokens, plan.cached_tokens, generated, reason, first_token, e2e, queued)


async def _admit(up: Upstream, plan: GenerationPlan, arrival: float) -> float:
    """Join the batch (maybe after queueing); returns the time spent waiting."""
    loop = asyncio.get_running_loop()
    try:
        await up.admit(len(plan.choices), plan.kv_tokens)
    except asyncio.CancelledError:  # the client left while queued: vLLM counts an abort
        waited = loop.time() - arrival
        _record(up, plan, 0, "abort", None, waited, waited)
        raise
    return loop.time() - arrival


async def _body(send: Send, data: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


def _error_event(frames: Frames, fault: FaultSpec) -> bytes:
    """The in-stream error in the stream's own format when its frames have one (Anthropic's
    `event: error`), else vLLM's `data: {"error": …}` then `[DONE]`."""
    message = fault.message or "simulated error in the middle of the stream"
    render = getattr(frames, "error_event", wire.stream_error_event)
    return bytes(render(fault.status, message))


async def _inject(send: Send, fault: FaultSpec, frames: Frames) -> bool:
    """Apply a mid-stream fault; True when the stream is over."""
    if fault.kind == "drop":
        raise DropConnection(f"simulated drop after {fault.drop_after_chunks} chunks")
    if fault.kind == "malformed":
        await _body(send, MALFORMED_EVENT)
        return False
    await _body(send, _error_event(frames, fault), more=False)
    return True


async def _instant_stream(
    up: Upstream, plan: GenerationPlan, frames: Frames, send: Send, fault: FaultSpec | None
) -> None:
    parts = [frames.head()]
    if fault is not None and fault.kind == "slow_start":
        await _body(send, parts.pop())
        await asyncio.sleep(fault.delay_s)
    cut = fault.drop_after_chunks if fault is not None and fault.kind in STREAM_FAULTS else -1
    for step in range(frames.steps + 1):
        if step == cut and fault is not None:
            if fault.kind == "drop":
                await _body(send, b"".join(parts))
                _record(up, plan, step, "abort")
                raise DropConnection(f"simulated drop after {cut} chunks")
            if fault.kind == "malformed":
                parts.append(MALFORMED_EVENT)
            else:
                parts.append(_error_event(frames, fault))
                await _body(send, b"".join(parts), more=False)
                _record(up, plan, step, "abort")
                return
        if step < frames.steps:
            parts.append(frames.frame(step))
    parts.append(frames.tail())
    await _end(send, b"".join(parts), fault)
    _record(up, plan, frames.steps, plan.engine_finish)


async def _end(send: Send, data: bytes, fault: FaultSpec | None) -> None:
    """The last events; with a `linger` fault the connection stays open a while after them."""
    if fault is not None and fault.kind == "linger":
        await _body(send, data)
        await asyncio.sleep(fault.delay_s)
        data = b""
    await _body(send, data, more=False)


async def stream(
    up: Upstream,
    plan: GenerationPlan,
    frames: Frames,
    send: Send,
    fault: FaultSpec | None,
    arrival: float,
) -> None:
    """Send the SSE response of `plan`, one frame per simulated token."""
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    if up.profile.instant:
        await _instant_stream(up, plan, frames, send, fault)
        return
    loop = asyncio.get_running_loop()
    cut = fault.drop_after_chunks if fault is not None and fault.kind in STREAM_FAULTS else -1
    queued = await _admit(up, plan, arrival)
    steps_done, first_token, reason = 0, None, "abort"
    try:
        head = frames.head()
        if fault is not None and fault.kind == "slow_start":
            await _body(send, head)
            head = b""
            await asyncio.sleep(fault.delay_s)
        await asyncio.sleep(ttft_s(up.profile, plan.prompt_tokens - plan.cached_tokens, up.running))
        deadline = loop.time()
        for step in range(frames.steps + 1):
            if step == cut and fault is not None and await _inject(send, fault, frames):
                return
            if step == frames.steps:
                break
            if step:  # pace against a deadline so that send() time does not stretch the stream
                deadline += tpot_s(up.profile, up.running)
                delay = deadline - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            data = frames.frame(step)
            if step == 0:
                data, first_token = head + data, loop.time() - arrival
            await _body(send, data)
            steps_done = step + 1
        await _end(send, (head if frames.steps == 0 else b"") + frames.tail(), fault)
        reason = plan.engine_finish
    finally:
        up.release(len(plan.choices), plan.kv_tokens)
        _record(up, plan, steps_done, reason, first_token, loop.time() - arrival, queued)


async def whole(up: Upstream, plan: GenerationPlan, arrival: float) -> None:
    """Wait as long as the streamed answer would take (TTFT, then every token), then return."""
    if up.profile.instant:
        _record(up, plan, plan.steps, plan.engine_finish)
        return
    loop = asyncio.get_running_loop()
    queued = await _admit(up, plan, arrival)
    first_token: float | None = None
    done, reason = 0, "abort"
    try:
        await asyncio.sleep(ttft_s(up.profile, plan.prompt_tokens - plan.cached_tokens, up.running))
        first_token, done = loop.time() - arrival, 1
        while done < plan.steps:
            k = min(plan.steps - done, _DECODE_SLICE)
            await asyncio.sleep(k * tpot_s(up.profile, up.running))
            done += k
        reason = plan.engine_finish
    finally:
        up.release(len(plan.choices), plan.kv_tokens)
        _record(up, plan, done, reason, first_token, loop.time() - arrival, queued)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def guarded(work: Coroutine[Any, Any, None], receive: Receive) -> None:
    """Run `work` unless the client disconnects first; then cancel it (its `finally` frees
    the slot)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_until_disconnect(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # the server is shutting down: take both tasks with us
        watcher.cancel()
        task.cancel()
        raise
    watcher.cancel()
    if not task.done():  # the client went away first
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return
    task.result()
