"""Variable-frame-rate sources: how far a constant rate moves their frames; output times following theirs.

The filter sees a clip at one constant rate (bestsource gives every decoded
frame once, at the rate FFmpeg reports), so a source whose timestamps do not
follow that rate is retimed: frame ``i`` is shown at ``i / rate`` instead of
its own time. :func:`retiming` measures by how much; :func:`follow_times`
gives each output frame the time of its place between two source frames
(``--vfr follow``), so that the output keeps the source's timing and its audio sync.
Pure functions: the timestamps come from :func:`vsugsp.probe.frame_times`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from .timing import RateMap

__all__ = ["VFR_MODES", "Retiming", "retiming", "follow_times", "warning"]

#: What ``--vfr`` takes: "retime" (the frames at the constant rate, warned when they move) or
#: "follow" (output frames at the source's times).
VFR_MODES = ("retime", "follow")

#: A frame that moves by more than this share of a frame interval counts as moved.
MOVE_SHARE = Fraction(1, 10)


@dataclass(frozen=True)
class Retiming:
    """What showing ``frames`` source frames at constant ``rate`` (fps) does to their times.

    shift: the largest |i / rate - time of frame i| in seconds, frame ``at`` moved most;
    shortest, longest: the source's frame intervals (seconds); variable: whether any
    frame moves by more than a tenth of a frame interval (or one timestamp tick,
    when that is coarser), i.e. more than rounding to the container's ticks does.
    """

    frames: int
    rate: Fraction
    shift: Fraction
    at: int
    shortest: Fraction
    longest: Fraction
    variable: bool


def retiming(times: Sequence[Fraction], rate: Fraction, tick: Fraction = Fraction(0)) -> Retiming:
    """How far constant ``rate`` (fps, > 0) moves the frames at ``times`` (seconds, increasing).

    ``times`` are the frames' presentation times in display order (the first
    is taken as time 0); ``tick`` the container's timestamp unit (seconds).
    """
    if rate <= 0:
        raise ValueError(f"vsugsp: a frame rate must be positive, got {rate}")
    start = times[0] if times else Fraction(0)
    shift, at = Fraction(0), 0
    for i, t in enumerate(times):
        moved = abs(Fraction(i) / rate - (t - start))
        if moved > shift:
            shift, at = moved, i
    gaps = [b - a for a, b in zip(times, times[1:])]
    limit = max(MOVE_SHARE / rate, Fraction(tick))
    return Retiming(len(times), Fraction(rate), shift, at, min(gaps, default=Fraction(0)),
                    max(gaps, default=Fraction(0)), shift > limit)


def follow_times(times: Sequence[Fraction], end: Fraction, ratio: Fraction) -> list[Fraction]:
    """Presentation time (seconds from the first source frame) of every output frame at ``ratio``.

    ``times``: the source frames' times (seconds, increasing); ``end``: when
    the last one ends. Output frame ``n`` sits ``t`` of the way from source
    frame ``i`` to ``i + 1`` (:meth:`vsugsp.timing.RateMap.position`), so it is
    shown ``t`` of the way through source frame ``i``'s own interval (the
    rule :func:`vsugsp.timing.interpolated_time` gives ``_AbsoluteTime``): the
    source's frames keep their times and the frames between them are spread
    evenly over each interval.
    """
    if not times:
        return []
    start = times[0]
    bounds = [t - start for t in times] + [end - start]
    if any(b <= a for a, b in zip(bounds, bounds[1:])):
        raise ValueError("vsugsp: the source's frame times do not increase; they cannot be followed")
    rmap = RateMap(len(times), Fraction(ratio))
    out = []
    for n in range(rmap.num_frames):
        i, t = rmap.position(n)
        out.append(bounds[i] + t * (bounds[i + 1] - bounds[i]))
    return out


def _ms(seconds: Fraction) -> str:
    return f"{float(seconds) * 1000:.1f} ms"


def warning(name: str, r: Retiming, hint: str) -> str:
    """The one-line warning for a source whose frames ``r`` moves; ``hint`` says what to do instead."""
    rate = r.rate.numerator if r.rate.denominator == 1 else f"{r.rate.numerator}/{r.rate.denominator}"
    return (f"vsugsp: warning: {name} has a variable frame rate (frame intervals {_ms(r.shortest)} to "
            f"{_ms(r.longest)}); its {r.frames} frames are taken at a constant {rate} fps, which moves them "
            f"by up to {_ms(r.shift)} (frame {r.at}) against their timestamps and the audio; {hint}")
