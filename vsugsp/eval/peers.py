"""The methods vsugsp is compared with, as frame-drop protocol methods (clip → 2× clip).

* ``blend``: average of the two neighbouring frames (no motion at all);
* ``mvtools``: vapoursynth-mvtools ``FlowFPS`` (block motion, pel 2, 16×16
  blocks overlapping by 8, vectors in both directions);
* ``svp``: open-svpflow ``SmoothFps`` (SVPflow's renderer, algorithm 13);
* ``dis``: the DESIGN §7 calibration bar, OpenCV DIS flow both ways, linear
  warps averaged (:mod:`vsugsp.eval.dis_flow`);
* ``dis-occ``, ``dis-quad``, ``dis-quad-occ``: the same flows with the warps blended
  by forward-backward visibility, on a quadratic path from the outer neighbours
  (frames k−1 and k+2 of the half-rate clip, linear at the ends and across scene
  cuts), or both; ``dis-sym``: linear, each warp read through both frames' flows
  (the reading the quadratic peers use) (:mod:`vsugsp.model.motion`).  ``dis``
  itself stays the yardstick.

A peer whose plugin or library is absent raises :class:`PeerMissing` with the
reason, so the benchmark reports it as missing instead of skipping it.
Every method returns the format it was given.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import vapoursynth as vs

from .frames import frame_to_rgb, from_rgb24, rgb24_matrix, to_rgb24, write_rgb
from .protocol import Method

if TYPE_CHECKING:  # pragma: no cover
    from .dis_flow import FlowFn

core = vs.core


def has_plugin(namespace: str) -> bool:
    """Whether the VapourSynth core has the plugin ``namespace`` (e.g. "mv", "svp1")."""
    return hasattr(core, namespace)


class PeerMissing(RuntimeError):
    """A peer method cannot run here; ``str(exc)`` says why (and how to install it)."""


@dataclass(frozen=True)
class Peer:
    """A named method with the parameters it runs with (recorded in the results)."""

    name: str
    method: Method
    params: dict


def _next_frames(clip: vs.VideoNode) -> vs.VideoNode:
    """Frame k+1 at position k; the last frame repeats (it has no right neighbour)."""
    return clip[1:] + clip[-1] if clip.num_frames > 1 else clip


def _double_rate(even: vs.VideoNode, mid: vs.VideoNode) -> vs.VideoNode:
    return core.std.Interleave([even, mid])  # Interleave doubles the rate of its inputs


def blend() -> Peer:
    """Plain blending: output 2k+1 = (in k + in k+1) / 2."""

    def run(half: vs.VideoNode) -> vs.VideoNode:
        return _double_rate(half, core.std.Merge(half, _next_frames(half), weight=0.5))

    return Peer("blend", run, {"weight": 0.5})


def _via_yuv420p8(half: vs.VideoNode, body: Callable[[vs.VideoNode], vs.VideoNode]) -> vs.VideoNode:
    """Run ``body`` on an 8-bit 4:2:0 version of ``half`` and convert its output back."""
    if half.format.id == vs.YUV420P8:
        return body(half)
    matrix = rgb24_matrix(half)
    yuv = core.resize.Bicubic(to_rgb24(half, matrix), format=vs.YUV420P8, matrix=matrix or 6)
    return from_rgb24(to_rgb24(body(yuv), matrix or 6), half.format, matrix)


MVTOOLS_MIN_WIDTH = 64


def mvtools(pel: int = 2, blksize: int = 16, overlap: int = 8) -> Peer:
    """vapoursynth-mvtools FlowFPS at twice the input rate."""
    if not has_plugin("mv"):
        raise PeerMissing("vapoursynth-mvtools is not installed (core.mv missing; pip install vapoursynth-mvtools)")

    def body(clip: vs.VideoNode) -> vs.VideoNode:
        sup = core.mv.Super(clip, pel=pel)
        bv = core.mv.Analyse(sup, isb=True, blksize=blksize, overlap=overlap)
        fv = core.mv.Analyse(sup, isb=False, blksize=blksize, overlap=overlap)
        return core.mv.FlowFPS(clip, sup, bv, fv, num=2 * clip.fps.numerator, den=clip.fps.denominator)

    def run(half: vs.VideoNode) -> vs.VideoNode:
        if half.fps == 0:
            raise ValueError("vsugsp: mvtools FlowFPS needs a clip with a known frame rate")
        if half.width <= MVTOOLS_MIN_WIDTH:
            # measured with vapoursynth-mvtools v29: FlowFPS corrupts memory (the process dies) on moving
            # content at these widths, so refuse rather than crash the whole benchmark
            raise ValueError(f"vsugsp: mvtools FlowFPS needs frames wider than {MVTOOLS_MIN_WIDTH} pixels, "
                             f"got {half.width}")
        return _via_yuv420p8(half, body)

    return Peer("mvtools", run, {"filter": "mv.FlowFPS", "pel": pel, "blksize": blksize, "overlap": overlap})


SVP_SUPER = {"pel": 2, "gpu": 0}
SVP_ANALYSE: dict = {}
SVP_SMOOTH = {"rate": {"num": 2, "den": 1, "abs": False}, "algo": 13}


def svp() -> Peer:
    """open-svpflow SmoothFps at twice the input rate (SVP's usual algorithm 13, CPU)."""
    if not (has_plugin("svp1") and has_plugin("svp2")):
        raise PeerMissing("open-svpflow is not installed (core.svp1/core.svp2 missing; pip install open-svpflow)")
    sup_s, an_s, sm_s = json.dumps(SVP_SUPER), json.dumps(SVP_ANALYSE), json.dumps(SVP_SMOOTH)

    def body(clip: vs.VideoNode) -> vs.VideoNode:
        sup = core.svp1.Super(clip, sup_s)
        vec = core.svp1.Analyse(sup["clip"], sup["data"], clip, an_s)
        return core.svp2.SmoothFps(clip, sup["clip"], sup["data"], vec["clip"], vec["data"], sm_s,
                                   src=clip, fps=float(clip.fps))

    def run(half: vs.VideoNode) -> vs.VideoNode:
        if half.fps == 0:
            raise ValueError("vsugsp: SVP SmoothFps needs a clip with a known frame rate")
        return _via_yuv420p8(half, body)

    return Peer("svp", run, {"filter": "svp2.SmoothFps", "super": SVP_SUPER, "analyse": SVP_ANALYSE,
                             "smoothfps": SVP_SMOOTH})


def dis(preset: str = "medium") -> Peer:
    """OpenCV DIS flow interpolation (the calibration bar), computed on RGB, returned in the input format."""
    try:
        from .dis_flow import _cv2, dis_interpolate
        _cv2()
    except ImportError as e:
        raise PeerMissing(str(e)) from e

    def run(half: vs.VideoNode) -> vs.VideoNode:
        matrix = rgb24_matrix(half)
        rgb = to_rgb24(half, matrix)

        def make(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
            out = f[0].copy()
            write_rgb(out, dis_interpolate(frame_to_rgb(f[0]), frame_to_rgb(f[1]), 0.5, preset))
            return out

        mid = core.std.ModifyFrame(rgb, [rgb, _next_frames(rgb)], make)
        return _double_rate(half, from_rgb24(mid, half.format, matrix))

    return Peer("dis", run, {"flow": "cv2.DISOpticalFlow", "preset": preset, "warp": "linear, both directions",
                             "merge": "average", "occlusion": "none"})


def _prev_frames(clip: vs.VideoNode) -> vs.VideoNode:
    """Frame k−1 at position k; the first frame repeats (it has no left neighbour)."""
    return clip[0] + clip[:-1] if clip.num_frames > 1 else clip


class _FlowMemo:
    """The last few flows by (from, to) source index, so a sequential run computes each once.

    Thread-safe; flows depend on the two frames alone (DIS objects are per thread and
    warmed per size, model.prior.dis), so the memo never changes a result.
    """

    def __init__(self, flow: "FlowFn", size: int = 16):
        self._flow, self._size = flow, size
        self._lock = threading.Lock()
        self._store: OrderedDict = OrderedDict()

    def get(self, key: tuple[int, int], a, b):
        with self._lock:
            hit = self._store.get(key)
        if hit is not None:
            return hit
        f = self._flow(a, b)
        with self._lock:
            self._store[key] = f
            while len(self._store) > self._size:
                self._store.popitem(last=False)
        return f


def flow_peer(name: str, flow: "FlowFn", *, occlusion: bool = False, quadratic: bool = False,
              reading: str = "own", params: dict | None = None) -> Peer:
    """A classical interpolator from any flow method (:data:`~vsugsp.eval.dis_flow.FlowFn`), as a peer.

    Each mid frame k is the frame at t = 0.5 between half-rate frames k and k+1
    (:func:`~vsugsp.eval.dis_flow.interpolate_frames`); with ``quadratic`` the outer
    neighbours come from :func:`~vsugsp.model.motion.quad_neighbours` with the
    filter's own scene-cut rule (``_SceneChangeNext/Prev`` where present, else the
    detector at the default ``scene_threshold``).
    """
    from ..model.motion import quad_neighbours
    from ..preset import Preset
    from ..scene import CUT_PROP, scene_clip
    from .dis_flow import interpolate_frames

    def run(half: vs.VideoNode) -> vs.VideoNode:
        matrix = rgb24_matrix(half)
        rgb = to_rgb24(half, matrix)
        count = rgb.num_frames
        memo = _FlowMemo(flow)
        sources = [rgb, _next_frames(rgb)]
        if quadratic:
            cuts = scene_clip(rgb, "auto", Preset().scene_threshold)
            sources += [_prev_frames(rgb), _next_frames(_next_frames(rgb)),
                        _prev_frames(cuts), cuts, _next_frames(cuts)]

        def make(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
            out = f[0].copy()
            img0, img1 = frame_to_rgb(f[0]), frame_to_rgb(f[1])
            prev = nxt = None
            if quadratic:
                flags = {n - 1: f[4].props, n: f[5].props, n + 1: f[6].props}
                p, q = quad_neighbours(n, count, lambda j: bool(flags[j][CUT_PROP]))
                prev = frame_to_rgb(f[2]) if p is not None else None
                nxt = frame_to_rgb(f[3]) if q is not None else None
            index = {"0>1": (n, n + 1), "1>0": (n + 1, n), "0>-1": (n, n - 1), "1>2": (n + 1, n + 2)}
            write_rgb(out, interpolate_frames(img0, img1, 0.5, flow=flow, prev=prev, nxt=nxt,
                                              occlusion=occlusion, quadratic=quadratic, reading=reading,
                                              flows=lambda key, a, b: memo.get(index[key], a, b)))
            return out

        mid = core.std.ModifyFrame(rgb, sources, make)
        return _double_rate(half, from_rgb24(mid, half.format, matrix))

    described = {"warp": "quadratic path from frames k-1, k+2 (linear at ends, cuts, implausible acceleration)"
                 if quadratic else "linear, both directions",
                 "merge": "forward-backward visibility" if occlusion else "average",
                 "occlusion": "forward-backward consistency" if occlusion else "none", "reading": reading}
    return Peer(name, run, {**(params or {}), **described})


#: the motion-aware DIS peers: name → (occlusion, quadratic, reading); "dis-sym" isolates the reading
DIS_VARIANTS: dict[str, tuple[bool, bool, str]] = {
    "dis-sym": (False, False, "both"),
    "dis-occ": (True, False, "own"),
    "dis-quad": (False, True, "both"),
    "dis-quad-occ": (True, True, "both"),
}


def dis_variant(name: str, preset: str = "medium") -> Peer:
    """The DIS ``preset`` peer ``name`` of :data:`DIS_VARIANTS` (the ``dis`` peer with motion-aware parts)."""
    try:
        from .dis_flow import _cv2, dis_flow
        _cv2()
    except ImportError as e:
        raise PeerMissing(str(e)) from e
    occlusion, quadratic, reading = DIS_VARIANTS[name]
    return flow_peer(name, dis_flow(preset), occlusion=occlusion, quadratic=quadratic, reading=reading,
                     params={"flow": "cv2.DISOpticalFlow", "preset": preset})


PEERS: dict[str, Callable[[], Peer]] = {
    "blend": blend, "mvtools": mvtools, "svp": svp, "dis": dis,
    **{name: (lambda name=name: dis_variant(name)) for name in DIS_VARIANTS},
}
"""Peer factories by name; each raises :class:`PeerMissing` when it cannot run here."""


def make_peer(name: str) -> Peer:
    """The peer called ``name`` (one of :data:`PEERS`); raises :class:`PeerMissing` if unavailable."""
    if name not in PEERS:
        raise ValueError(f"vsugsp: unknown peer {name!r}; choose from {', '.join(PEERS)}")
    return PEERS[name]()
