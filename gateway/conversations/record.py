"""One stored response, as the store keeps it and a codec reads it back (pure data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A finished response that a later request may continue (`previous_response_id`).

    Nothing here is ever mutated once made: a pending record is shared by every reader
    until the store has written it."""

    id: str
    created_at: float  # time.time()
    team: str | None
    model: str  # the model (or route) the client asked for
    previous_response_id: str | None
    status: str
    context: list[Any]  # earlier turns' items, ready to send again
    input: list[Any]  # this turn's input items, as the client sent them
    output: list[Any]  # the Response's output items
    response: dict[str, Any]  # the Response object (its `output` is `output`)
    api_key_id: str | None = None
