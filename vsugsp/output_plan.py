"""What each output frame of the filter is: pure logic over the timing map, no VapourSynth.

Output frame ``n`` sits ``t`` of the way through the source pair (i, i+1)
(:class:`vsugsp.timing.RateMap`). Whether it is interpolated or shows a source
frame as is depends on its pair's :class:`PairDecision` (a scene cut, or two
identical source frames), which exists only once the pair's small info frame
has been computed. So the graph (:mod:`vsugsp.filter`) asks this plan twice:

- before any frame exists, which source frames and which pairs' decisions
  output ``n`` needs (:meth:`OutputPlan.needs_decision`,
  :meth:`OutputPlan.decisions_needed`): the graph requests nothing else, so
  memory and failures stay local to the frames that need them;
- once those decisions are known, what output ``n`` shows and the props it
  gets (:meth:`OutputPlan.frame`, :meth:`OutputPlan.props`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from . import scene
from .timing import RateMap, interpolated_time, output_duration, scaled_duration

__all__ = ["PairDecision", "UNDECIDED", "FramePlan", "OutputPlan", "frame_duration"]


@dataclass(frozen=True)
class PairDecision:
    """The scene-change decisions of one source pair (i, i+1)."""

    cut: bool = False  #: a scene cut between i and i+1: never blend across it
    identical: bool = False  #: frames i and i+1 are the same samples: show i


#: How a pair whose decision was not requested reads (it never changes a frame that did not need it).
UNDECIDED = PairDecision()


@dataclass(frozen=True)
class FramePlan:
    """Output frame ``n`` once its pairs' decisions are known."""

    n: int
    i: int  #: left source frame of the pair
    t: Fraction  #: time in [0, 1) from source frame i to i + 1
    shown: int | None  #: the source frame shown as is, or None: the network interpolates it
    near: int  #: the source frame whose props the output frame carries (the shown one, else the nearest)
    scene_prev: bool  #: a cut lies between output n − 1 and n (``_SceneChangePrev``)
    scene_next: bool  #: a cut lies between output n and n + 1 (``_SceneChangeNext``)

    @property
    def interpolated(self) -> bool:
        """Whether the network makes this frame."""
        return self.shown is None


def frame_duration(props: Mapping) -> Fraction | None:
    """A frame's ``_DurationNum/_DurationDen`` in seconds, or None when absent or not positive."""
    try:
        num, den = int(props["_DurationNum"]), int(props["_DurationDen"])
    except (KeyError, TypeError, ValueError):
        return None
    return Fraction(num, den) if num > 0 and den > 0 else None


class OutputPlan:
    """The output frames of ``rmap``; ``src_fps`` the source rate (None: variable, read per frame)."""

    def __init__(self, rmap: RateMap, src_fps: Fraction | None = None) -> None:
        self.rmap = rmap
        self.src_fps = src_fps
        self.src_frames = rmap.src_frames
        self.num_frames = rmap.num_frames
        self._out_duration = output_duration(src_fps, rmap.ratio) if src_fps is not None else None

    # ------------------------------------------------------------ before the decisions
    def left(self, n: int) -> int:
        """Left source frame of output ``n``'s pair."""
        return self.rmap.position(n)[0]

    def right(self, n: int) -> int:
        """Right source frame of output ``n``'s pair (the last source frame at the tail)."""
        return min(self.rmap.position(n)[0] + 1, self.src_frames - 1)

    def needs_decision(self, n: int) -> bool:
        """Whether what output ``n`` shows depends on its pair's decision (else it is source frame i for sure)."""
        i, t = self.rmap.position(n)
        return t != 0 and i + 1 < self.src_frames

    def decisions_needed(self, n: int) -> frozenset[int]:
        """Source pairs whose decision output ``n``'s frame or scene flags depend on."""
        need = {self.left(n)} if self.needs_decision(n) else set()
        for a, b in ((n - 1, n), (n, n + 1)):
            if a < 0 or b >= self.num_frames:
                continue
            ks = scene.deciding_cuts(scene.possible_positions(*self.rmap.position(a), self.src_frames),
                                     scene.possible_positions(*self.rmap.position(b), self.src_frames))
            if ks:
                need |= ks
                need.update(self.left(m) for m in (a, b) if self.needs_decision(m))
        return frozenset(need)

    def decision_at(self, n: int, offset: int) -> int | None:
        """Pair ``left(n) + offset`` when output ``n`` needs its decision, else None (offset −1, 0 or 1)."""
        j = self.left(n) + offset
        return j if j in self.decisions_needed(n) else None

    # ------------------------------------------------------------ once they are known
    def shown(self, n: int, decision: PairDecision = UNDECIDED) -> int | None:
        """The source frame output ``n`` shows as is given its pair's decision, or None to interpolate."""
        i, t = self.rmap.position(n)
        return scene.source_choice(i, t, self.src_frames, decision.cut, decision.identical)

    def _position(self, n: int, decision: PairDecision) -> Fraction:
        i, t = self.rmap.position(n)
        k = self.shown(n, decision)
        return Fraction(k) if k is not None else i + t

    def frame(self, n: int, decisions: Mapping[int, PairDecision]) -> FramePlan:
        """Output ``n`` given the decisions of (at least) :meth:`decisions_needed` ``(n)``.

        Decisions of other pairs are ignored, so the answer depends on nothing the
        graph did not request.
        """
        needed = self.decisions_needed(n)

        def decision(j: int) -> PairDecision:
            return decisions.get(j, UNDECIDED) if j in needed else UNDECIDED

        i, t = self.rmap.position(n)
        k = self.shown(n, decision(i))
        near = k if k is not None else self.rmap.nearest(n)

        def cut_at(j: int) -> bool:
            return decision(j).cut

        def pos(m: int) -> Fraction:
            return self._position(m, decision(self.left(m)))

        q = pos(n)
        prev = n > 0 and scene.cut_between(pos(n - 1), q, cut_at)
        nxt = n < self.num_frames - 1 and scene.cut_between(q, pos(n + 1), cut_at)
        return FramePlan(n, i, t, k, near, bool(prev), bool(nxt))

    def props(self, fp: FramePlan, props_a: Mapping, props_b: Mapping | None) -> dict[str, Any]:
        """Timing and scene props of output frame ``fp``, as updates to its ``near`` frame's props.

        props_a / props_b: the props of source frames i and i + 1 (props_b None
        when the frame did not need i + 1). A value None means: remove the key.
        ``_AbsoluteTime`` is left out on a t == 0 frame (it keeps its own).
        """
        src_dur = Fraction(1, 1) / self.src_fps if self.src_fps is not None else frame_duration(props_a)
        if self._out_duration is not None:
            dur = self._out_duration
        elif src_dur is not None:
            dur = scaled_duration(src_dur, self.rmap.ratio)
        else:
            dur = None
        out: dict[str, Any] = {}
        if dur is not None:
            out["_DurationNum"], out["_DurationDen"] = dur.numerator, dur.denominator
        else:
            out["_DurationNum"] = out["_DurationDen"] = None
        props_b = props_b if props_b is not None else {}
        if fp.t == 0:
            pass  # the source frame's own _AbsoluteTime
        elif "_AbsoluteTime" in props_a and src_dur is not None:
            out["_AbsoluteTime"] = interpolated_time(props_a["_AbsoluteTime"], fp.t, src_dur)
        elif "_AbsoluteTime" in props_b and src_dur is not None and fp.i + 1 < self.src_frames:
            out["_AbsoluteTime"] = interpolated_time(props_b["_AbsoluteTime"], fp.t - 1, src_dur)
        else:
            out["_AbsoluteTime"] = None
        out["_SceneChangePrev"] = int(fp.scene_prev)
        out["_SceneChangeNext"] = int(fp.scene_next)
        return out
