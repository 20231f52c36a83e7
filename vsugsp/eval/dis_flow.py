"""The classical calibration interpolator of DESIGN §7 ("dis"), and its motion-aware variants.

OpenCV DIS optical flow in both directions; each frame is backward-warped to
time t under linear motion (the flow at a pixel of the other frame scaled by
the time distance) and the two warps are averaged, with no occlusion
handling.  A learned model that does not beat this is undertrained.

:func:`interpolate_frames` is the same interpolator with any flow method and two
optional parts (:mod:`vsugsp.model.motion`): ``occlusion`` blends the warps by
forward-backward visibility instead of linearly, ``quadratic`` places the
intermediate flows on a quadratic path estimated from the outer neighbours
(frames −1 and 2), and ``reading`` says through which frame's flows each warp is
read (:data:`vsugsp.model.motion.READINGS`).  With both parts off, reading "own" and
DIS flows it is :func:`dis_interpolate`, bit for bit.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..model import motion
from ..model.prior import PRESETS as _PRESETS
from ..model.prior import cv2_module as _cv2
from ..model.prior import dis as _dis_object
from ..model.prior import fits
from ..model.prior import pair_flow_np

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""F(a→b) (H×W×2 float32, pixels) of two uint8 H×W luma frames a, b."""


def _warp(img: np.ndarray, flow: np.ndarray, scale: float) -> np.ndarray:
    cv2 = _cv2()
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx = gx + scale * flow[..., 0]
    my = gy + scale * flow[..., 1]
    return cv2.remap(img, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _check(img0: np.ndarray, img1: np.ndarray, t: float) -> None:
    if not 0.0 < t < 1.0:
        raise ValueError(f"vsugsp: t must be in (0, 1), got {t}")
    if img0.shape != img1.shape or img0.ndim != 3 or img0.shape[2] != 3:
        raise ValueError(f"vsugsp: expected two H×W×3 frames of one size, got {img0.shape} and {img1.shape}")


def gray(img: np.ndarray) -> np.ndarray:
    """OpenCV's luma of an H×W×3 uint8 RGB frame (what the ``dis`` peer computes flows on)."""
    return _cv2().cvtColor(img, _cv2().COLOR_RGB2GRAY)


def dis_flow(preset: str = "medium") -> FlowFn:
    """A :data:`FlowFn` running this thread's DIS object of ``preset`` (one per frame size, see model.prior.dis).

    Frames DIS cannot take (:func:`vsugsp.model.prior.fits`) get a zero flow.
    """
    if preset not in _PRESETS:
        raise ValueError(f"vsugsp: DIS preset must be one of {sorted(_PRESETS)}, got {preset!r}")

    def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if not fits(a.shape[0], a.shape[1], preset):  # OpenCV would fail or crash: no motion, a plain blend
            return np.zeros((*a.shape, 2), np.float32)
        return _dis_object(preset, a.shape).calc(a, b, None)

    return flow


def dis_interpolate(img0: np.ndarray, img1: np.ndarray, t: float = 0.5, preset: str = "medium") -> np.ndarray:
    """Frame at time ``t`` in (0, 1) between two uint8 H×W×3 RGB frames, as uint8 H×W×3.

    ``preset``: DIS preset, "ultrafast", "fast" or "medium".
    """
    if preset not in _PRESETS:
        raise ValueError(f"vsugsp: DIS preset must be one of {sorted(_PRESETS)}, got {preset!r}")
    _check(img0, img1, t)
    f01, f10 = pair_flow_np(gray(img0), gray(img1), preset)
    return render(img0, img1, f01, f10, t)


def render(img0: np.ndarray, img1: np.ndarray, f01: np.ndarray, f10: np.ndarray, t: float, *,
           f0m: Optional[np.ndarray] = None, f12: Optional[np.ndarray] = None,
           occlusion: bool = False, quadratic: bool = False, reading: str = "own",
           quad_limits: motion.QuadLimits = motion.QuadLimits(),
           occ_limits: motion.OcclusionLimits = motion.OcclusionLimits()) -> np.ndarray:
    """The frame at ``t`` from two uint8 H×W×3 frames and their flows (uint8 H×W×3).

    ``f0m`` = F(0→−1), ``f12`` = F(1→2): used only with ``quadratic`` (None: that side is
    linear).  ``reading``: through which frame's flows the warps are read
    (:data:`vsugsp.model.motion.READINGS`; "own" is the ``dis`` peer's).
    """
    if quadratic or reading != "own":
        if quadratic:
            to0, to1 = motion.quadratic_flows_at(f01, f10, f0m, f12, t, quad_limits, reading)
        else:
            to0, to1 = motion.linear_flows_at(f01, f10, t, reading)
        w0 = _warp(img0.astype(np.float32), to0, 1.0)
        w1 = _warp(img1.astype(np.float32), to1, 1.0)
    else:
        # linear motion: from time t, frame 0 lies t of the 1→0 displacement away, frame 1 (1−t) of the 0→1 one
        w0 = _warp(img0.astype(np.float32), f10, t)
        w1 = _warp(img1.astype(np.float32), f01, 1.0 - t)
    if occlusion:
        v0, v1 = motion.visibility_weights(f01, f10, t, occ_limits)
        out = v0[..., None] * w0 + v1[..., None] * w1
    else:
        out = (1.0 - t) * w0 + t * w1
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def interpolate_frames(img0: np.ndarray, img1: np.ndarray, t: float = 0.5, *, flow: FlowFn,
                       prev: Optional[np.ndarray] = None, nxt: Optional[np.ndarray] = None,
                       occlusion: bool = False, quadratic: bool = False, reading: str = "own",
                       flows: Optional[Callable[[str, np.ndarray, np.ndarray], np.ndarray]] = None) -> np.ndarray:
    """Frame at ``t`` between uint8 H×W×3 RGB frames ``img0`` and ``img1`` with flow method ``flow``.

    ``prev`` / ``nxt``: frames −1 and 2 for ``quadratic`` (None where the clip ends or a
    scene cut lies between, see :func:`vsugsp.model.motion.quad_neighbours`).
    ``flows(key, a, b)``: optional memo of ``flow`` (key "0>1", "1>0", "0>-1", "1>2"),
    so a sequential run computes each pair's flow once.
    """
    _check(img0, img1, t)
    for name, f in (("prev", prev), ("nxt", nxt)):
        if f is not None and f.shape != img0.shape:
            raise ValueError(f"vsugsp: {name} frame has shape {f.shape}, expected {img0.shape}")
    get = flows or (lambda _key, a, b: flow(a, b))
    g0, g1 = gray(img0), gray(img1)
    f01, f10 = get("0>1", g0, g1), get("1>0", g1, g0)
    f0m = f12 = None
    if quadratic:
        f0m = get("0>-1", g0, gray(prev)) if prev is not None else None
        f12 = get("1>2", g1, gray(nxt)) if nxt is not None else None
    return render(img0, img1, f01, f10, t, f0m=f0m, f12=f12, occlusion=occlusion, quadratic=quadratic,
                  reading=reading)
