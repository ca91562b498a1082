"""Driving a provider's stream translator the way the pipeline and the chat codec do."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.codecs.openai import ChatStreamRenderer
from gateway.providers.base import StreamTranslator
from gateway.sse import SSEDecoder


def to_openai(tr: StreamTranslator, reads: Iterable[bytes], include_usage: bool) -> list[bytes]:
    """Upstream reads → typed chunks → what an OpenAI client receives, one SSE event an item."""
    renderer = ChatStreamRenderer(include_usage)
    decoder = SSEDecoder()
    out = b""
    for read in reads:
        out += renderer.render([c for ev in decoder.feed(read) for c in tr.feed(ev)])
    out += renderer.render([c for ev in decoder.flush() for c in tr.feed(ev)] + tr.finish())
    return [ev.encode() for ev in SSEDecoder().feed(out)]
