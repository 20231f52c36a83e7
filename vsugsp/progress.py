"""A one-line progress bar on stderr (stdout may carry video)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_progress(done: int, total: int, elapsed: float, width: int = 24, unit: str = "frames") -> str:
    """Text of the bar: `[#####-----]  12/480 frames  3.2 fps  ETA 2:31`.

    `elapsed` in seconds since the first frame was asked for; total <= 0
    means unknown length (no bar, no ETA).
    """
    fps = done / elapsed if elapsed > 0 else 0.0
    if total > 0:
        filled = min(width, int(width * done / total))
        bar = "[" + "#" * filled + "-" * (width - filled) + "] "
        eta = (total - done) / fps if fps > 0 else None
        tail = f"  ETA {_clock(eta)}" if eta is not None else ""
        return f"{bar}{done}/{total} {unit}  {fps:.2f} {_rate_unit(unit)}{tail}"
    return f"{done} {unit}  {fps:.2f} {_rate_unit(unit)}"


def _rate_unit(unit: str) -> str:
    return "fps" if unit == "frames" else f"{unit}/s"


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Callable `progress(done, total)` that redraws a bar on a terminal and
    logs a line every 10 % otherwise (CI logs stay short)."""

    def __init__(self, stream: TextIO | None = None, min_interval: float = 0.25, unit: str = "frames") -> None:
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._last_decile = -1

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        line = format_progress(done, total, now - self.start, unit=self.unit)
        if self.tty:
            if done == total or now - self._last_draw >= self.min_interval:
                self.stream.write("\r" + line + "\x1b[K" + ("\n" if done == total else ""))
                self.stream.flush()
                self._last_draw = now
        elif total > 0:
            decile = 10 * done // total
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(line + "\n")
                self.stream.flush()

    @property
    def elapsed(self) -> float:
        """Seconds since this bar was made."""
        return time.perf_counter() - self.start
