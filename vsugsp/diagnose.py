"""Which source frame broke an output frame.

VapourSynth hands a failed upstream frame's error to every frame that asked
for it, with no word of which source frame it was. After an output frame
fails, :func:`failing_source` asks for the source frames it can depend on
(outside any filter callback) and names the first one that fails.
"""
from __future__ import annotations

from typing import Any

__all__ = ["failing_source", "last_line"]


def last_line(exc: BaseException) -> str:
    """The last non-empty line of an error message (VapourSynth's carry a traceback before it)."""
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    return lines[-1] if lines else type(exc).__name__


def failing_source(src: Any, out: Any, n: int) -> tuple[int, str] | None:
    """(index, error) of a source frame of ``src`` that fails and that output frame ``n`` of ``out`` needs.

    Output n of an interpolated clip shows the pair (i, i+1) with i ≈ n·len(src)/len(out)
    and reads at most frames i−1 … i+2; the window searched is a frame wider on
    each side, nearest first. None when all of them are fine.
    """
    import vapoursynth as vs

    count = src.num_frames
    centre = min(count - 1, n * count // max(out.num_frames, 1))
    window = [j for j in range(centre - 2, centre + 4) if 0 <= j < count]
    for j in sorted(window, key=lambda j: (abs(j - centre), j)):
        try:
            src.get_frame(j)
        except vs.Error as exc:
            return j, last_line(exc)
    return None
