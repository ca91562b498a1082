"""Server-sent events: an incremental decoder and the encoder.

Network chunks do not respect event boundaries — an event can straddle two reads, and one read
can carry many events — so the decoder buffers bytes until a blank line closes an event
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
Shared by the provider transport, the simulator and the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

DONE = b"[DONE]"


@dataclass(slots=True)
class Event:
    raw: bytes  # the event as received, without its terminating blank line
    data: bytes  # the data lines joined with "\n"
    event: str | None = None

    def encode(self) -> bytes:
        return self.raw + b"\n\n"


class SSEDecoder:
    """Feed bytes, get complete events. Handles \\n, \\r\\n and \\r line endings."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[Event]:
        buf = self._buf + chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events: list[Event] = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            raw = buf[start:end]
            start = end + 2
            ev = _parse(raw)
            if ev is not None:
                events.append(ev)
        self._buf = buf[start:]
        return events

    def flush(self) -> list[Event]:
        """An upstream that ends without a final blank line still delivers its last event."""
        raw, self._buf = self._buf.strip(b"\n"), b""
        ev = _parse(raw) if raw else None
        return [ev] if ev is not None else []


def _parse(raw: bytes) -> Event | None:
    # the common case: one data line (`find`: a bytes `in` tries an int operand first, and
    # the TypeError it swallows costs more than the search)
    if raw.startswith(b"data:") and raw.find(b"\n") < 0:
        data = raw[5:]
        return Event(raw, data[1:] if data[:1] == b" " else data)
    data_lines: list[bytes] = []
    name: str | None = None
    for line in raw.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data_lines.append(value)
        elif field == b"event":
            name = value.decode("utf-8", "replace")
    if not data_lines and name is None:
        return None
    return Event(raw, b"\n".join(data_lines), name)


def encode_data(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"
