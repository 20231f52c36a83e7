"""The progress board: chunk tasks report frames done, the driver reads the sum.

Run as a Ray actor (``ray.remote(Board)``) so that tasks on any machine can
report to it. Each attempt at a chunk (a worker process, by pid) reports
separately: when a worker dies and Ray retries its chunk elsewhere, the new
attempt's count replaces the lost one, and the chunk is counted as retried.
"""
from __future__ import annotations

__all__ = ["Board"]


class Board:
    """Frames done per chunk attempt."""

    def __init__(self) -> None:
        # chunk index -> [(pid, frames done)], attempts in the order they began
        self._attempts: dict[int, list[list[int]]] = {}

    def report(self, chunk: int, pid: int, done: int) -> None:
        """Worker ``pid`` has rendered ``done`` frames of chunk ``chunk``."""
        attempts = self._attempts.setdefault(chunk, [])
        for attempt in attempts:
            if attempt[0] == pid:
                attempt[1] = max(attempt[1], done)
                return
        attempts.append([pid, done])

    def done(self) -> int:
        """Frames done over all chunks, each counted from its latest attempt."""
        return sum(attempts[-1][1] for attempts in self._attempts.values())

    def attempts(self) -> dict[int, int]:
        """Chunk index -> number of worker processes that started it."""
        return {chunk: len(a) for chunk, a in self._attempts.items()}
