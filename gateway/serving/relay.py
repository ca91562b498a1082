"""A stream's way from the upstream to the edge, once the pipeline has connected it: the
upstream's reads → SSE events → the adapter's typed chunks, observed on the way (time to first
content, an error that ends the stream, a shadow sample's copy); then the upstream connection
closed — or, when the answer is whole, read to its end in the background so that it goes back
to the pool — the GPU pool's slot released and the request's one `Outcome` recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

from gateway.core import Chunk, ClientRequest, StreamError
from gateway.errors import GatewayError, Scrubber
from gateway.metrics import GatewayMetrics
from gateway.providers.base import StreamTranslator
from gateway.providers.transport import UpstreamStream
from gateway.quality.shadow import Tap
from gateway.routing.executor import Attempted, Executor
from gateway.routing.policies import Decision
from gateway.serving.attempts import _Ended, observe, outcome_of
from gateway.serving.outcome import Outcome, RequestContext
from gateway.sse import SSEDecoder

DRAIN_S = 2.0  # how long an upstream may keep a stream's connection open after its answer


class Relay:
    """The pipeline's streams, from an upstream that answered to the chunks the edge renders."""

    def __init__(
        self,
        executor: Executor,
        metrics: GatewayMetrics,
        scrub: Scrubber,
        record: Callable[[RequestContext, Outcome], None],
    ) -> None:
        self.executor = executor
        self.metrics = metrics
        self.scrub = scrub
        self._record = record  # the pipeline's: marks the request recorded, never waits
        self._draining: set[asyncio.Task[None]] = set()

    def _close_later(self, reads: AsyncIterator[bytes], stack: AsyncExitStack) -> None:
        """Read what the upstream still sends after the answer's end, then close it — in the
        background, so the client's response ends with the answer, whenever the upstream closes
        its side. A connection read to its end goes back to the pool for the next request; one
        still open after `DRAIN_S` is closed."""

        async def drain() -> None:
            try:
                async with asyncio.timeout(DRAIN_S):
                    async for _ in reads:
                        pass
            except (TimeoutError, GatewayError):
                pass
            finally:
                await stack.aclose()

        task = asyncio.create_task(drain())
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def stream(
        self,
        req: ClientRequest,
        ctx: RequestContext,
        decision: Decision,
        done: Attempted[tuple[UpstreamStream, AsyncExitStack]],
        reads: AsyncIterator[bytes],
        tr: StreamTranslator,
        stack: AsyncExitStack,
        tap: Tap | None = None,
    ) -> AsyncIterator[list[Chunk]]:
        target = done.target
        decoder = SSEDecoder()
        ended = _Ended()
        answered = False  # the translator saw the answer's end (or an error that ends it)
        try:
            async for data in reads:
                chunks = [c for ev in decoder.feed(data) for c in tr.feed(ev)]
                if chunks:
                    observe(chunks, ended, ctx.started, self.scrub)
                    if tap is not None:  # a sampled request: its answer, for comparison
                        tap.chunks.extend(chunks)
                    yield chunks
                if tr.state.done:
                    answered = True
                    break
            else:
                tail = [c for ev in decoder.flush() for c in tr.feed(ev)] + tr.finish()
                if tail:
                    observe(tail, ended, ctx.started, self.scrub)
                    if tap is not None:
                        tap.chunks.extend(tail)
                    yield tail
        except GatewayError as e:
            # the headers are gone: the error travels in-band, in the client's format
            ended.status, ended.error_type = e.status_code, e.error_type
            self.metrics.upstream_error(target.model, target.provider.name, e.error_type)
            yield [StreamError(e.type, self.scrub(e.message), e.status_code, e.code)]
        except (asyncio.CancelledError, GeneratorExit):
            ended.status, ended.error_type = cut_reason(ctx)
            raise
        finally:
            self.executor.end(target, done.api_base, True)  # the GPU pool's slot is free again
            if answered:
                self._close_later(reads, stack)
            else:
                await stack.aclose()
            st = tr.state
            self._record(
                ctx,
                outcome_of(
                    ctx,
                    req,
                    decision,
                    target,
                    ended.status,
                    usage=st.usage,
                    error_type=ended.error_type,
                    upstream_request_id=st.upstream_request_id,
                    ttft_s=ended.ttft_s,
                    output_chunks=st.chunks,
                    attempts=done.attempts,
                ),
            )


def cut_reason(ctx: RequestContext) -> tuple[int, str]:
    """Why a request was cancelled midway, for its row: the gateway's drain, or the client."""
    if ctx.shutdown:
        return 503, "gateway_shutdown"
    return 499, "client_disconnected"
