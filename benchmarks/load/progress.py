"""What a run tells a live display while it runs (`report.LiveProgress` draws it with rich).

Its own module so that the orchestration (`run.py`) and the display (`report.py`) both depend on
it and not on each other.
"""

from __future__ import annotations

from benchmarks.common.result import RequestResult


class Progress:
    """Silent: what a run reports while it runs, for a display to draw."""

    def start_point(self, label: str, expected_s: float | None, expected_n: int | None) -> None:
        pass

    def on_result(self, result: RequestResult, measured: bool) -> None:
        pass

    def tick(self) -> None:
        """Called twice a second while a point runs (redraw here, not per result)."""

    def end_point(self, line: str) -> None:
        pass

    def close(self) -> None:
        pass
