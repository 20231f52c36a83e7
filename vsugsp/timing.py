"""Where each output frame sits in the source: pure rate arithmetic, no VapourSynth.

Output frame ``n`` shows source position ``p = n / ratio`` (in source frames):
``i = floor(p)`` is the left source frame of the pair and ``t = p - i`` in
[0, 1) the time between source frames ``i`` and ``i + 1``. ``t == 0`` means the
output frame *is* source frame ``i``. All arithmetic is exact (integers and
``Fraction``), so the same ``n`` always maps to the same ``(i, t)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from numbers import Integral

__all__ = [
    "MAX_FRAMES",
    "RateMap",
    "SNAP_TOLERANCE",
    "snap_rate",
    "parse_rate",
    "resolve_ratio",
    "output_duration",
    "scaled_duration",
    "interpolated_time",
]

#: VapourSynth stores frame counts in a C int.
MAX_FRAMES = 2**31 - 1


#: Relative distance within which a float rate snaps to ``n`` or ``n * 1000 / 1001``.
SNAP_TOLERANCE = Fraction(1, 1000)


def snap_rate(value: float) -> Fraction:
    """A frame rate given as a float as the exact rate it stands for.

    The one rule for float rates (user input and mpv's measured rates alike):
    the nearer of ``n`` and ``n * 1000 / 1001`` (``n`` an integer), when within
    0.1 % of the value (23.976 -> 24000/1001, 59.951 -> 60000/1001,
    143.998 -> 144); otherwise the nearest fraction with a denominator of at
    most 1001 (12.5 -> 25/2, 33.3333 -> 100/3; a float with at most 3
    decimals comes back exactly). Values <= 0 are not snapped (they come back
    as that fraction; callers reject them). Pure; raises ``ValueError`` for
    NaN and infinities.
    """
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"vsugsp: a frame rate must be finite, got {value!r}")
    exact = Fraction(x)
    if x > 0:
        candidates = (Fraction(round(x)), Fraction(round(x * 1001 / 1000) * 1000, 1001))
        best = min(candidates, key=lambda c: abs(c - exact))
        if best > 0 and abs(best - exact) <= SNAP_TOLERANCE * exact:
            return best
    return exact.limit_denominator(1001)


def parse_rate(value: object, *, name: str = "fps") -> Fraction:
    """Turn a user rate into an exact positive ``Fraction``.

    Accepts an int, a ``Fraction``, a ``(num, den)`` pair, a ``"num/den"``
    string or a float. Floats go through :func:`snap_rate`: within 0.1 % of
    ``n`` or ``n * 1000 / 1001`` they snap to it (23.976, 29.97, 59.94 -> the
    exact NTSC rates), others become the nearest fraction with a denominator
    of at most 1001.
    Raises ``ValueError("vsugsp: ...")`` naming ``name`` for anything else.
    """
    rate: Fraction
    if isinstance(value, bool):
        raise ValueError(f"vsugsp: {name} must be a positive number, got {value!r}")
    if isinstance(value, (Integral, Fraction)):
        rate = Fraction(value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, Integral) and not isinstance(v, bool) for v in value
    ):
        if value[1] == 0:
            raise ValueError(f"vsugsp: {name} denominator must not be 0, got {tuple(value)!r}")
        rate = Fraction(int(value[0]), int(value[1]))
    elif isinstance(value, str):
        try:
            rate = Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(
                f"vsugsp: {name} string must look like '60000/1001' or '59.94', got {value!r}"
            ) from None
    elif isinstance(value, float):
        if not value == value or value in (float("inf"), float("-inf")):
            raise ValueError(f"vsugsp: {name} must be finite, got {value!r}")
        rate = snap_rate(value)
    else:
        raise ValueError(
            f"vsugsp: {name} must be an int, a Fraction, a (num, den) pair, a 'num/den' string "
            f"or a float, got {value!r} ({type(value).__name__})"
        )
    if rate <= 0:
        raise ValueError(f"vsugsp: {name} must be positive, got {value!r}")
    return rate


def resolve_ratio(
    factor: object = 2, fps: object = None, src_fps: Fraction | None = None
) -> Fraction:
    """Rate ratio (output rate / source rate) from ``factor`` or a target ``fps``.

    ``factor`` must be an int or ``Fraction`` > 1; ``fps`` (if given) wins over
    ``factor`` and needs a known source rate ``src_fps`` (> 0). Lowering or
    keeping the rate is refused: this filter only raises it (use
    ``std.SelectEvery``/``std.AssumeFPS`` to drop frames).
    """
    if fps is not None:
        if src_fps is None or src_fps <= 0:
            raise ValueError(
                "vsugsp: fps needs a clip with a known frame rate, but the clip's rate is 0 "
                "(variable/unknown); set it with std.AssumeFPS or use factor="
            )
        target = parse_rate(fps, name="fps")
        ratio = target / src_fps
        if ratio <= 1:
            raise ValueError(
                f"vsugsp: fps={_fmt(target)} is not above the clip's rate {_fmt(src_fps)}; "
                "vsugsp only raises the frame rate (to lower it, drop frames with "
                "std.SelectEvery or decimate)"
            )
        return ratio
    if isinstance(factor, bool) or not isinstance(factor, (Integral, Fraction)):
        hint = ""
        if isinstance(factor, float) and math.isfinite(factor):
            fr = Fraction(factor).limit_denominator(1001)
            hint = f"; use fractions.Fraction({fr.numerator}, {fr.denominator}) for a fractional factor"
        raise ValueError(
            f"vsugsp: factor must be an int or fractions.Fraction greater than 1, got {factor!r} "
            f"({type(factor).__name__}){hint}"
        )
    ratio = Fraction(factor)
    if ratio <= 1:
        raise ValueError(
            f"vsugsp: factor must be greater than 1, got {_fmt(ratio)}; vsugsp only raises the "
            "frame rate (to lower it, drop frames with std.SelectEvery or decimate)"
        )
    return ratio


def _fmt(r: Fraction) -> str:
    return str(r.numerator) if r.denominator == 1 else f"{r.numerator}/{r.denominator}"


@dataclass(frozen=True)
class RateMap:
    """Output ↔ source frame map for ``src_frames`` source frames at ``ratio``."""

    src_frames: int
    ratio: Fraction

    def __post_init__(self) -> None:
        if self.src_frames < 1:
            raise ValueError(f"vsugsp: a clip needs at least 1 frame, got {self.src_frames}")
        if self.ratio <= 0:
            raise ValueError(f"vsugsp: ratio must be positive, got {self.ratio}")
        if self.num_frames > MAX_FRAMES:
            raise ValueError(
                f"vsugsp: {self.src_frames} frames × {_fmt(self.ratio)} = {self.num_frames} output "
                f"frames is more than VapourSynth can hold ({MAX_FRAMES}); trim the clip or lower the factor"
            )

    @property
    def num_frames(self) -> int:
        """Output length ⌈N·ratio⌉ (exact)."""
        num, den = self.ratio.numerator, self.ratio.denominator
        return -(-self.src_frames * num // den)

    def position(self, n: int) -> tuple[int, Fraction]:
        """Output frame ``n`` → (source frame ``i``, ``t`` in [0, 1)). Exact."""
        if not 0 <= n < self.num_frames:
            raise IndexError(f"vsugsp: output frame {n} outside 0..{self.num_frames - 1}")
        num, den = self.ratio.numerator, self.ratio.denominator
        i, rem = divmod(n * den, num)
        return i, Fraction(rem, num)

    def outputs_of(self, i: int) -> range:
        """The output frames whose left source frame is ``i`` (possibly empty)."""
        num, den = self.ratio.numerator, self.ratio.denominator
        lo = -(-i * num // den)
        hi = -(-(i + 1) * num // den)
        return range(max(lo, 0), min(hi, self.num_frames))

    def times_of(self, i: int) -> tuple[Fraction, ...]:
        """All ``t > 0`` shown between source frames ``i`` and ``i + 1``, in output order.

        This set depends only on ``i``, which is what lets the engine compute a
        pair's frames in one fixed batch whatever order frames are requested in.
        """
        return tuple(t for t in (self.position(n)[1] for n in self.outputs_of(i)) if t > 0)

    def nearest(self, n: int) -> int:
        """The source frame nearest to output frame ``n`` (ties go to the earlier frame)."""
        i, t = self.position(n)
        return min(i + 1, self.src_frames - 1) if t > Fraction(1, 2) else i


def output_duration(src_fps: Fraction, ratio: Fraction) -> Fraction:
    """Duration in seconds of every output frame of a constant-rate clip."""
    if src_fps <= 0:
        raise ValueError("vsugsp: output_duration needs a known source rate")
    return 1 / (src_fps * ratio)


def scaled_duration(src_duration: Fraction, ratio: Fraction) -> Fraction:
    """Per-frame duration for variable-rate clips: the source frame's duration / ratio."""
    return Fraction(src_duration) / ratio


def interpolated_time(start: float, t: Fraction, src_duration: Fraction) -> float:
    """``_AbsoluteTime`` (seconds) of a frame ``t`` of the way through a source frame."""
    return float(start) + float(t * src_duration)
