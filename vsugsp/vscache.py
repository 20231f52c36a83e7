"""VapourSynth's frame caches on the nodes vsugsp builds.

VapourSynth gives most nodes a cache that grows while requests miss it, so
under random seeking every node of the filter ends up holding frames, at full
size and in float RGB (12 bytes a pixel): memory grows with the frame size and
the seeking, not with any setting. vsugsp keeps its own cache instead (the
engine's ``cache_frames`` source frames on the device, with their features),
so its internal nodes are left without one (:func:`uncached`), and the few
that are read more than once per source frame hold a fixed number of frames
(:func:`bounded`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import vapoursynth as vs

__all__ = ["uncached", "bounded"]


def uncached(node: "vs.VideoNode") -> "vs.VideoNode":
    """``node`` with VapourSynth's frame cache switched off (returned for chaining)."""
    import vapoursynth as vs

    vs.core.std.SetVideoCache(node, mode=0)
    return node


def bounded(node: "vs.VideoNode", frames: int) -> "vs.VideoNode":
    """``node`` with a cache of exactly ``frames`` frames (never grown by VapourSynth)."""
    import vapoursynth as vs

    vs.core.std.SetVideoCache(node, mode=1, fixedsize=1, maxsize=max(1, int(frames)), maxhistory=max(1, int(frames)))
    return node
