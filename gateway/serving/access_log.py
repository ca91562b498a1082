"""The access log: one line per API request on stdout, written off the request's path.

An after-request consumer (serving/after.py), so it runs in the ledger writer's task with the
request's priced `Outcome`; lines gathered in one turn of the event loop go out in one write.
`logging.access_log`: `json` (one object a line, for log shippers), `text` (for people) or
`off`. Fields: time, request id, key id and team (never a key), endpoint, requested and served
model, provider, route, status, error type, latency, time to first token, tokens, cost,
attempts. Requests that reach no generation endpoint (admin, health, metrics) are not logged.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import lru_cache

import orjson

from gateway.serving.metering import Priced
from gateway.serving.outcome import Outcome


def _time(ts: float) -> str:
    """`datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")` with a Z: the
    same digits (microseconds rounded half-even, then cut to milliseconds), the date and time
    formatted once a second rather than once a line."""
    frac, whole = math.modf(ts)
    us = round(frac * 1e6)
    if us >= 1_000_000:
        whole, us = whole + 1, us - 1_000_000
    elif us < 0:
        whole, us = whole - 1, us + 1_000_000
    return f"{_second(whole)}.{us // 1000:03d}Z"


@lru_cache(maxsize=4)
def _second(whole: float) -> str:
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def json_line(o: Outcome, p: Priced) -> bytes:
    t = o.target
    return orjson.dumps(
        {
            "time": _time(o.created_at),
            "request_id": o.request_id,
            "key_id": o.api_key_id,
            "team": o.team,
            "endpoint": o.endpoint,
            "model": o.requested_model,
            "served_model": t.model if t else None,
            "provider": t.provider.name if t else None,
            "route": o.route,
            "status": o.status_code,
            "error": o.error_type,
            "stream": o.stream,
            "latency_ms": round(o.latency_s * 1000, 3),
            "ttft_ms": None if o.ttft_s is None else round(o.ttft_s * 1000, 3),
            "prompt_tokens": p.usage.prompt_tokens,
            "completion_tokens": p.usage.completion_tokens,
            "cost_usd": format(p.total_usd, "f"),
            "attempts": o.attempts,
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )


def text_line(o: Outcome, p: Priced) -> bytes:
    t = o.target
    served = f"{t.model}@{t.provider.name}" if t else "-"
    ttft = f" ttft={_ms(o.ttft_s)}ms" if o.ttft_s is not None else ""
    error = f" error={o.error_type}" if o.error_type else ""
    return (
        f"{_time(o.created_at)} {o.request_id} key={o.api_key_id or '-'} team={o.team or '-'} "
        f"{o.endpoint} {o.requested_model or '-'}→{served} route={o.route or '-'} "
        f"{o.status_code}{error} {_ms(o.latency_s)}ms{ttft} "
        f"tokens={p.usage.prompt_tokens}+{p.usage.completion_tokens} ${p.total_usd:f}\n"
    ).encode()


FORMATS: dict[str, Callable[[Outcome, Priced], bytes]] = {"json": json_line, "text": text_line}


PIPE_BUF = 4096  # POSIX: a pipe write this size or less is never interleaved with another


def whole_lines(data: bytes, limit: int = PIPE_BUF) -> Iterator[bytes]:
    """`data` cut after a newline into pieces of at most `limit` bytes (a longer line alone)."""
    start = 0
    while start < len(data):
        end = start + limit
        if end < len(data):
            cut = data.rfind(b"\n", start, end)
            if cut >= start:
                end = cut + 1
            else:  # one line longer than the limit: to its end
                nl = data.find(b"\n", end)
                end = len(data) if nl < 0 else nl + 1
        yield data[start:end]
        start = end


def stdout_lines(data: bytes) -> None:
    """Write to fd 1 at most PIPE_BUF bytes of whole lines at a time: the worker processes of
    `--workers N` share the pipe, and a longer write could interleave with theirs."""
    fd = sys.stdout.fileno()
    for piece in whole_lines(data):
        view = memoryview(piece)
        while view:
            view = view[os.write(fd, view) :]


class AccessLog:
    def __init__(self, fmt: str, write: Callable[[bytes], None] | None = None) -> None:
        self._render = FORMATS[fmt]
        self._write = write or stdout_lines
        self._lines: list[bytes] = []
        self._scheduled = False

    def __call__(self, o: Outcome, p: Priced) -> None:
        self._lines.append(self._render(o, p))
        if self._scheduled:
            return
        try:
            asyncio.get_running_loop().call_soon(self.flush)
            self._scheduled = True
        except RuntimeError:  # no event loop (a forced shutdown's last rows): write now
            self.flush()

    def flush(self) -> None:
        self._scheduled = False
        if not self._lines:
            return
        data = b"".join(self._lines)
        self._lines.clear()
        try:
            self._write(data)
        except (OSError, ValueError):  # stdout closed: the ledger still has every request
            pass
