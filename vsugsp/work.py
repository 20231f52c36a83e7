"""What the network spent on each output frame, carried by the frame as its props.

Every output frame of :func:`vsugsp.interpolate` has these integer props:

- ``_VsugspInterpolated``: 1 when the network made the frame, 0 when it is a
  source frame shown as is (t == 0, a scene cut, identical neighbours, the tail);
- ``_VsugspMACs``: multiply-accumulates the network executed for the frame;
- ``_VsugspDenseMACs``: what the unpruned network would have executed
  (pruned share = 1 − MACs / dense MACs);
- ``_VsugspPasses``: forward passes of the network for the frame.

The engine computes the frames between two source frames in chunks, one pass
per ensemble view for all t of a chunk, so MACs and passes are a chunk's.
Each frame carries an integer share of them (:func:`split`) and the shares of
a chunk add up to its totals exactly: the sum over the frames a consumer
rendered (:class:`Tally`) is the work of rendering them, each chunk counted
once. Pass-through frames carry zeros.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import vapoursynth as vs

__all__ = ["INTERPOLATED", "MACS", "DENSE_MACS", "PASSES", "PROPS", "KEYS", "split", "frame_props",
           "from_props", "Tally"]

INTERPOLATED = "_VsugspInterpolated"
MACS = "_VsugspMACs"
DENSE_MACS = "_VsugspDenseMACs"
PASSES = "_VsugspPasses"
#: The props above, in :data:`KEYS` order after the two frame counts.
PROPS = (INTERPOLATED, MACS, DENSE_MACS, PASSES)
#: Names of the summed numbers (the CLI summary's and the render manifest's ``work``).
KEYS = ("frames_interpolated", "frames_passed", "executed_macs", "dense_macs", "forward_passes")


def split(total: int, k: int, n: int) -> int:
    """Frame ``k``'s integer share (0 ≤ k < n) of ``total`` split over ``n`` frames; the n shares sum to ``total``."""
    if not 0 <= k < n:
        raise ValueError(f"vsugsp: share index k={k} outside 0..{n - 1}")
    total = int(total)
    return total * (k + 1) // n - total * k // n


def frame_props(interpolated: bool, macs: int = 0, dense_macs: int = 0, passes: int = 0) -> dict[str, int]:
    """The four props of one output frame (work numbers are 0 on a source frame shown as is)."""
    if not interpolated:
        macs = dense_macs = passes = 0
    return {INTERPOLATED: int(bool(interpolated)), MACS: int(macs), DENSE_MACS: int(dense_macs),
            PASSES: int(passes)}


def from_props(props: Mapping) -> dict[str, int]:
    """One frame's numbers under :data:`KEYS` names; a frame without the props counts as nothing."""
    if INTERPOLATED not in props:
        return dict.fromkeys(KEYS, 0)
    made = int(props[INTERPOLATED]) != 0
    return {"frames_interpolated": int(made), "frames_passed": int(not made),
            "executed_macs": int(props.get(MACS, 0)), "dense_macs": int(props.get(DENSE_MACS, 0)),
            "forward_passes": int(props.get(PASSES, 0))}


class Tally:
    """Sums the work props of frames as they are rendered (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sum = dict.fromkeys(KEYS, 0)

    def add(self, props: Mapping) -> None:
        """Count one rendered frame's props."""
        numbers = from_props(props)
        with self._lock:
            for k, v in numbers.items():
                self._sum[k] += v

    def totals(self) -> dict[str, int]:
        """The sums so far, under :data:`KEYS` names."""
        with self._lock:
            return dict(self._sum)

    def counting(self, clip: "vs.VideoNode") -> "vs.VideoNode":
        """``clip`` unchanged, counting each frame it hands out (render it once per frame wanted)."""
        import vapoursynth as vs

        from .vscache import uncached

        def _count(n: int, f: "vs.VideoFrame") -> "vs.VideoFrame":
            self.add(f.props)
            return f

        return uncached(vs.core.std.ModifyFrame(clip, clip, _count))
