"""Scene-change decisions: no interpolation across a cut.

The decision for the pair (source ``i``, source ``i + 1``) is a pure function of
the frame properties ``_SceneChangeNext`` (on ``i``) / ``_SceneChangePrev`` (on
``i + 1``) and of our own cut score between the two frames. The score is
computed on a tiny luma thumbnail (about 64 pixels wide), so it costs next to
nothing and needs no extra plugin.

Score: mean absolute difference of the two thumbnails after each has had its
own mean removed. Removing the means makes fades and brightness changes cheap;
the thumbnail's low-pass makes ordinary motion cheap. On real clips ordinary
motion scores below ~0.08 and cuts above ~0.14 (luma in [0, 1]).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import vapoursynth as vs

__all__ = [
    "MODES",
    "THUMB_WIDTH",
    "CUT_PROP",
    "SCORE_PROP",
    "normalize_mode",
    "cut_score",
    "is_cut",
    "cut_from_props",
    "scene_clip",
    "source_choice",
    "cut_between",
    "possible_positions",
    "deciding_cuts",
]

MODES = ("auto", "props", "detect", "off")
#: Width in pixels of the luma thumbnail the score is computed on.
THUMB_WIDTH = 64
#: Frame property (int 0/1) set on source frame i of the internal scene clip: cut between i and i+1.
CUT_PROP = "_VsugspCutNext"
#: Frame property (float) with the score between i and i+1 (for inspection/debugging).
SCORE_PROP = "_VsugspCutScore"


def normalize_mode(mode: object) -> str:
    """User ``scene_change`` value → one of ``MODES``.

    ``None``/``True`` → "auto" (props when present, else our detector);
    ``False`` → "off"; strings must be one of ``MODES``.
    """
    if mode is None or mode is True:
        return "auto"
    if mode is False:
        return "off"
    if isinstance(mode, str) and mode.lower() in MODES:
        return mode.lower()
    raise ValueError(
        f"vsugsp: scene_change must be one of {', '.join(MODES)} (or True/False/None), got {mode!r}"
    )


def cut_score(a: np.ndarray, b: np.ndarray) -> float:
    """Cut score in [0, 1] between two luma thumbnails (2-D, values ~[0, 1]).

    Mean absolute difference after removing each thumbnail's mean.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"vsugsp: cut_score needs equal shapes, got {a.shape} and {b.shape}")
    return float(np.mean(np.abs((a - a.mean()) - (b - b.mean()))))


def _flag(props: Mapping | None, key: str) -> bool | None:
    if props is None or key not in props:
        return None
    try:
        return bool(int(props[key]))
    except (TypeError, ValueError):
        return None


def is_cut(
    score: float | None,
    threshold: float,
    next_flag: bool | None = None,
    prev_flag: bool | None = None,
    mode: str = "auto",
) -> bool:
    """Whether to treat the pair as a scene cut.

    ``next_flag``/``prev_flag`` are ``_SceneChangeNext`` of the left frame and
    ``_SceneChangePrev`` of the right frame (``None`` when absent).
    auto: the flags decide when either is present, the score otherwise;
    props: the flags only (absent → no cut); detect: the score only; off: never.
    """
    if mode == "off":
        return False
    flags = [f for f in (next_flag, prev_flag) if f is not None]
    if mode == "props" or (mode == "auto" and flags):
        return any(flags)
    if mode not in ("auto", "detect"):
        raise ValueError(f"vsugsp: unknown scene mode {mode!r}; allowed: {', '.join(MODES)}")
    return score is not None and score > threshold


def cut_from_props(
    left: Mapping, right: Mapping, score: float | None, threshold: float, mode: str
) -> bool:
    """``is_cut`` reading the flags from the two source frames' property maps."""
    return is_cut(
        score,
        threshold,
        _flag(left, "_SceneChangeNext"),
        _flag(right, "_SceneChangePrev"),
        mode,
    )


def source_choice(i: int, t: Fraction, src_frames: int, cut: bool, identical: bool) -> int | None:
    """The source frame an output frame at (``i``, ``t``) shows unchanged, or None to interpolate.

    t == 0 → ``i``; past the last source frame → the last frame; across a cut →
    the nearer frame (t ≤ 1/2 → ``i``); identical neighbours → ``i``.
    """
    if t == 0 or i + 1 >= src_frames:
        return i
    if cut:
        return i if t <= Fraction(1, 2) else i + 1
    if identical:
        return i
    return None


def cut_between(q0: Fraction, q1: Fraction, cut_at: Callable[[int], bool]) -> bool:
    """Whether a cut separates two output frames at display positions ``q0 ≤ q1``.

    A display position is the source frame shown (an integer) or ``i + t`` for a
    frame interpolated inside the pair (i, i+1), which never straddles a cut.
    ``cut_at(k)``: the pair (k, k+1) is a cut.
    """
    for k in range(math.floor(q0), math.ceil(q1)):
        if q0 <= k and k + 1 <= q1 and cut_at(k):
            return True
    return False


def possible_positions(i: int, t: Fraction, src_frames: int) -> tuple[Fraction, ...]:
    """Every display position the output frame at (``i``, ``t``) can have, before the pair's
    cut/identical decision is known (:func:`source_choice`): one when it is a source frame for sure."""
    if t == 0 or i + 1 >= src_frames:
        return (Fraction(i),)
    out = {Fraction(i), i + t}
    if t > Fraction(1, 2):
        out.add(Fraction(i + 1))
    return tuple(sorted(out))


def deciding_cuts(p0: tuple[Fraction, ...], p1: tuple[Fraction, ...]) -> set[int]:
    """The pairs k whose cut can change :func:`cut_between` for some positions q0 in ``p0``, q1 in ``p1``.

    Empty when the answer is False whatever the two frames show: their flag needs no cut decision.
    """
    ks: set[int] = set()
    for q0 in p0:
        for q1 in p1:
            ks.update(k for k in range(math.floor(q0), math.ceil(q1)) if q0 <= k and k + 1 <= q1)
    return ks


def _thumb_size(width: int, height: int) -> tuple[int, int]:
    w = min(THUMB_WIDTH, width)
    h = max(1, min(height, round(height * w / width)))
    return w, h


def scene_clip(clip: "vs.VideoNode", mode: str, threshold: float) -> "vs.VideoNode":
    """A tiny clip, as long as ``clip``, whose frame i carries ``CUT_PROP`` (cut i→i+1).

    Frame i keeps the source frame's properties too. The last frame never has a cut.
    Only thumbnails are touched, so requesting it is cheap.
    """
    import vapoursynth as vs

    from .vscache import uncached

    core = vs.core
    count = clip.num_frames
    fam = clip.format.color_family
    w, h = _thumb_size(clip.width, clip.height)
    if fam == vs.RGB:
        thumb = uncached(core.resize.Bilinear(clip, w, h, format=vs.RGBS))
    else:
        luma = clip if fam == vs.GRAY else uncached(core.std.ShufflePlanes(clip, 0, vs.GRAY))
        # Thumbnail of luma only: matrix props are irrelevant and may be unset.
        thumb = uncached(core.resize.Bilinear(luma, w, h, format=vs.GRAYS))
    nxt = uncached(thumb[1:] + thumb[-1]) if count > 1 else thumb  # thumbnails: the caller caches the result

    def _luma(f: "vs.VideoFrame") -> np.ndarray:
        if f.format.num_planes == 3:
            return (np.asarray(f[0]) + np.asarray(f[1]) + np.asarray(f[2])) / 3.0
        return np.asarray(f[0])

    def _decide(n: int, f: list) -> "vs.VideoFrame":
        out = f[0].copy()
        if n >= count - 1:
            out.props[CUT_PROP] = 0
            return out
        score = None
        if mode in ("auto", "detect"):
            score = cut_score(_luma(f[0]), _luma(f[1]))
            out.props[SCORE_PROP] = score
        out.props[CUT_PROP] = int(cut_from_props(f[0].props, f[1].props, score, threshold, mode))
        return out

    return core.std.ModifyFrame(thumb, [thumb, nxt], _decide)
