"""Motion beyond a straight line between two frames: quadratic paths, visibility, neighbour choice.

Pure functions on flow fields (numpy, H×W×2 float32, pixels, x then y; F(a→b)(p) is
where pixel p of frame a lies in frame b), no OpenCV and no I/O; the network's quadratic
prior (:func:`quadratic_flows_at_torch`, :func:`motion_tensor`) is the same on B×C×H×W tensors.

* :func:`quadratic_flows_at`: the flows from time t to frames 0 and 1 when each pixel
  moves on a quadratic path (QVI, Xu et al., NeurIPS 2019) estimated from the outer
  neighbours (frame −1 and frame 2).  Acceleration is kept only where it is plausible
  (small beside a limit, the same seen from frame 0 and from frame 1); elsewhere, and
  for constant velocity, the result is the linear one exactly (:func:`linear_flows_at`).
  Exact at t = 0 and 1.
* :func:`visibility_weights`: blend weights of the two warps from forward-backward
  consistency.  Weights move away from the linear (1 − t, t) only where one flow is
  clearly occluded and the other is not, and only part way; a weighting by
  ``1 / (1 + err²)`` everywhere cost up to 0.5 dB on real clips (DESIGN §10), because
  DIS is inconsistent on much more than occlusions.
* :func:`quad_neighbours`: which outer neighbours pair (i, i + 1) may use, given the
  clip's length and its scene cuts (the four-frame request and its fall-backs).

Layout of "flows at t" follows :func:`vsugsp.model.prior.flows_at`: F(t→0) then F(t→1),
evaluated (like the ``dis`` peer and the network's prior) at the output pixel itself;
:data:`READINGS` says through which frame's flows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch

from .warp import backwarp

Flow = np.ndarray  # H×W×2 float32, pixels


@dataclass(frozen=True)
class QuadLimits:
    """Where an acceleration estimate is trusted (all in pixels per frame interval squared).

    ``max_accel``: full weight up to this magnitude, fading to none at twice it (larger
    estimates are almost always a flow failure in one of the outer pairs).
    ``tolerance`` and ``rel_tolerance``: the accelerations seen from frame 0 and from
    frame 1 (at the matching pixel) may differ by ``tolerance + rel_tolerance·|a|`` with
    full weight, fading to none at twice that.  Defaults chosen on the windows of
    benchmarks/bench_priors.py (DIS medium, frame-drop protocol, reading "both"): a
    limit of 8 lost 0.27 dB on bigbuckbunny against 16, a tight consistency check
    (0.5 + 0.5·|a|) threw away most of the gain; on later, unseen frames (carphone
    80–119, bigbuckbunny 48–131) these defaults gave +0.24 / +0.04 dB over the ``dis`` peer.
    """

    max_accel: float = 16.0
    tolerance: float = 8.0
    rel_tolerance: float = 1.0


@dataclass(frozen=True)
class OcclusionLimits:
    """When forward-backward inconsistency counts as an occlusion, and how far it moves the blend.

    A pixel is surely occluded when ``|F(a→b)(p) + F(b→a)(p + F(a→b)(p))|²`` exceeds
    ``rel·(|F(a→b)|² + |F(b→a)|²) + abs_px2`` and surely not below half of it (a linear
    ramp between); values in pixels².  ``strength`` in [0, 1]: the share of the linear
    weight moved to the other warp where one side is surely occluded.  DIS is
    inconsistent far beyond occlusions, and one warp alone is noisier than the average
    of two: on bigbuckbunny the Sundaram et al. bound (0.01, 0.5) at full strength cost
    0.24 dB, this default costs 0.03 dB while cutting the error at a clear occlusion
    by 39 % (exact flows; with DIS flows 0.3 %, tests/test_motion.py).
    """

    rel: float = 0.5
    abs_px2: float = 100.0
    strength: float = 0.5


READINGS = ("own", "trajectory", "both", "mixed")
"""Where the flow from time t to a frame is read (first-order, at the output pixel):

* "own": through the *other* frame's flow, as the ``dis`` peer does: F(t→0) = F(1→0) − F(1→t);
* "trajectory": through the frame's own trajectory: F(t→0) = −F(0→t);
* "both": the mean of the two, whose errors partly cancel (on bigbuckbunny +0.22 dB
  over "own" under linear motion, +0.5 dB under quadratic motion).
* "mixed": "own"'s linear part (``t·F(1→0)``: the network's linear prior, bit for bit) and
  each frame's acceleration term along its own trajectory: F(t→0) = t·F(1→0) − acc0, where
  F(0→t) = t·F(0→1) + acc0.  The network's quadratic prior: through the ``balanced`` network
  on carphone's first 30 frames it scored 31.46 dB against 31.13 for "own" (whose
  acceleration term is frame 1's, read at the wrong pixel) and 31.17 for linear motion.
"""


def _norm(v: np.ndarray) -> np.ndarray:
    return np.sqrt(v[..., 0] ** 2 + v[..., 1] ** 2)


def _ramp(x: np.ndarray, full: np.ndarray | float) -> np.ndarray:
    """1 for x ≤ full, 0 for x ≥ 2·full, linear between (full > 0)."""
    return np.clip(2.0 - x / np.maximum(full, 1e-6), 0.0, 1.0)


def sample(field: np.ndarray, at: Flow) -> np.ndarray:
    """``field`` (H×W×C) sampled bilinearly at ``p + at(p)`` for each pixel p (border replicated)."""
    h, w = field.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    x = np.clip(xs + at[..., 0], 0, w - 1)
    y = np.clip(ys + at[..., 1], 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 2) if w > 1 else np.zeros_like(x, np.int64)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 2) if h > 1 else np.zeros_like(y, np.int64)
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    top = field[y0, x0] * (1 - fx) + field[y0, x1] * fx
    bottom = field[y1, x0] * (1 - fx) + field[y1, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(field.dtype, copy=False)


def fb_error(f_ab: Flow, f_ba: Flow) -> np.ndarray:
    """Forward-backward error (H×W, pixels) of ``f_ab``: |F(a→b)(p) + F(b→a)(p + F(a→b)(p))|."""
    return _norm(f_ab + sample(f_ba, f_ab))


def occlusion(f_ab: Flow, f_ba: Flow, limits: OcclusionLimits = OcclusionLimits()) -> np.ndarray:
    """How surely each pixel of frame a is hidden in frame b: H×W in [0, 1] (0 visible, 1 occluded)."""
    back = sample(f_ba, f_ab)
    err2 = _norm(f_ab + back) ** 2
    bound = limits.rel * (_norm(f_ab) ** 2 + _norm(back) ** 2) + limits.abs_px2
    return np.clip(2.0 * err2 / bound - 1.0, 0.0, 1.0).astype(np.float32)


def visibility_weights(f01: Flow, f10: Flow, t: float,
                       limits: OcclusionLimits = OcclusionLimits()) -> tuple[np.ndarray, np.ndarray]:
    """Blend weights (H×W each, in [0, 1], summing to one) of the warps of frame 0 and frame 1 at time t.

    The warp of frame 1 is read through F(0→1) at the output pixel, so it is wrong where
    that pixel of frame 0 is hidden in frame 1; likewise the warp of frame 0 through
    F(1→0).  Where exactly one side is occluded, ``limits.strength`` of its weight goes
    to the other; where neither or both are, the weights stay linear: (1 − t, t).
    """
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"vsugsp: t must be in [0, 1], got {t}")
    occ0 = occlusion(f01, f10, limits)  # frame-0 pixel hidden in frame 1: the frame-1 warp is unreliable
    occ1 = occlusion(f10, f01, limits)
    d = limits.strength * (occ0 - occ1)
    # move a share |d| of one side's weight to the other: weights stay in [0, 1] and sum to one
    w0 = (1.0 - t) + t * np.maximum(d, 0.0) - (1.0 - t) * np.maximum(-d, 0.0)
    w0 = w0.astype(np.float32)
    return w0, (1.0 - w0).astype(np.float32)


def acceleration(f_near: Flow, f_far: Flow) -> Flow:
    """Acceleration (px / interval²) of each pixel from its flows to the next and the previous frame.

    With x(s) = x + v·s + a·s²/2: F(→+1) = v + a/2, F(→−1) = −v + a/2, so a = their sum.
    """
    return f_near + f_far


def accel_weight(a: Flow, other: Optional[Flow], limits: QuadLimits = QuadLimits()) -> np.ndarray:
    """Trust (H×W in [0, 1]) in an acceleration ``a``; ``other``: the same pixels' acceleration seen
    from the other frame (None when that side has no neighbour: magnitude check only)."""
    mag = _norm(a)
    g = _ramp(mag, limits.max_accel)
    if other is not None:
        g = g * _ramp(_norm(a - other), limits.tolerance + limits.rel_tolerance * mag)
    return g.astype(np.float32)


def _read(f01: Flow, f10: Flow, f0t: Flow, f1t: Flow, reading: str, t: "float | torch.Tensor") -> tuple[Flow, Flow]:
    """(F(t→0), F(t→1)) from the pair's flows and each frame's displacement to time t (see READINGS)."""
    if reading == "own":
        return f10 - f1t, f01 - f0t
    if reading == "trajectory":
        return -f0t, -f1t
    if reading == "both":
        return 0.5 * (f10 - f1t - f0t), 0.5 * (f01 - f0t - f1t)
    if reading == "mixed":  # linear part from "own", acceleration part (f0t − t·f01) from "trajectory"
        return t * f10 - (f0t - t * f01), (1.0 - t) * f01 - (f1t - (1.0 - t) * f10)
    raise ValueError(f"vsugsp: reading={reading!r}; allowed: {', '.join(READINGS)}")


def linear_flows_at(f01: Flow, f10: Flow, t: float, reading: str = "own") -> tuple[Flow, Flow]:
    """Flows (F(t→0), F(t→1)) at time t under linear motion; "own" is ``(t·F(1→0), (1−t)·F(0→1))``."""
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"vsugsp: t must be in [0, 1], got {t}")
    to0, to1 = _read(f01, f10, t * f01, (1.0 - t) * f10, reading, t)
    return to0.astype(np.float32), to1.astype(np.float32)


def quadratic_flows_at(f01: Flow, f10: Flow, f0m: Optional[Flow], f12: Optional[Flow], t: float,
                       limits: QuadLimits = QuadLimits(), reading: str = "both") -> tuple[Flow, Flow]:
    """Flows (F(t→0), F(t→1)) at time t in [0, 1] on a quadratic path; H×W×2 float32 each.

    ``f01``, ``f10``: the pair's flows; ``f0m``: F(0→−1) (None: no left neighbour),
    ``f12``: F(1→2) (None: no right neighbour).  A side without its neighbour moves
    linearly; so does a pixel whose acceleration is not trusted (:func:`accel_weight`).
    Where every pixel moves linearly the result is :func:`linear_flows_at` exactly.

    Frame 0's pixel moves F(0→t) = v·t + a·t²/2 with v = (F01 − F0m)/2, a = F01 + F0m,
    i.e. t·F01 + a·(t² − t)/2; frame 1's likewise with s = 1 − t and F10, F12.  The
    acceleration term vanishes at t = 0 and 1, so both ends are the linear ones.
    """
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"vsugsp: t must be in [0, 1], got {t}")
    a0 = acceleration(f01, f0m) if f0m is not None else None
    a1 = acceleration(f10, f12) if f12 is not None else None
    s = 1.0 - t
    f0t = t * f01
    f1t = s * f10
    if a0 is not None:
        # a pixel of frame 0 sits at p + F01(p) in frame 1: compare with frame 1's view there
        other = sample(a1, f01) if a1 is not None else None
        f0t = f0t + accel_weight(a0, other, limits)[..., None] * a0 * ((t * t - t) / 2.0)
    if a1 is not None:
        other = sample(a0, f10) if a0 is not None else None
        f1t = f1t + accel_weight(a1, other, limits)[..., None] * a1 * ((s * s - s) / 2.0)
    to0, to1 = _read(f01, f10, f0t, f1t, reading, t)
    return to0.astype(np.float32), to1.astype(np.float32)


CutFlags = Union[Sequence[bool], Callable[[int], bool]]


def quad_neighbours(i: int, length: int, cut_after: CutFlags) -> tuple[Optional[int], Optional[int]]:
    """The outer neighbours (i − 1, i + 2) pair (i, i + 1) of a ``length``-frame clip may use.

    ``cut_after[k]`` (or ``cut_after(k)``) is True when a scene cut lies between frames k
    and k + 1.  A neighbour beyond the clip's ends or across a cut is None (that side
    moves linearly); a pair that itself spans a cut, or has no frame i + 1, gets
    (None, None): it is not interpolated at all.
    """
    if not 0 <= i < length:
        raise ValueError(f"vsugsp: pair index {i} outside a clip of {length} frames")
    cut = cut_after if callable(cut_after) else (lambda k: bool(cut_after[k]))
    if i + 1 >= length or cut(i):
        return None, None
    prev = i - 1 if i >= 1 and not cut(i - 1) else None
    nxt = i + 2 if i + 2 < length and not cut(i + 1) else None
    return prev, nxt


# --------------------------------------------------------------- torch, for the network

def _norm_t(v: "torch.Tensor") -> "torch.Tensor":
    return torch.hypot(v[:, 0:1], v[:, 1:2])  # one pass instead of four


def _ramp_t(x: "torch.Tensor", full: "torch.Tensor | float") -> "torch.Tensor":
    full = full.clamp_min(1e-6) if isinstance(full, torch.Tensor) else max(full, 1e-6)
    return (2.0 - x / full).clamp(0.0, 1.0)


def sample_torch(field: "torch.Tensor", at: "torch.Tensor") -> "torch.Tensor":
    """:func:`sample` on B×C×H×W tensors: ``field`` read bilinearly at ``p + at(p)`` (border replicated)."""
    return backwarp(field, at)


def _accel_weight_t(a: "torch.Tensor", other: "torch.Tensor", has_other: "torch.Tensor",
                    limits: QuadLimits) -> "torch.Tensor":
    """:func:`accel_weight` on B×2×H×W; ``has_other`` (B×1×1×1 bool) False reads as ``other`` None."""
    mag = _norm_t(a)
    g = _ramp_t(mag, limits.max_accel)
    agree = _ramp_t(_norm_t(a - other), limits.tolerance + limits.rel_tolerance * mag)
    return g * torch.where(has_other, agree, torch.ones_like(agree))


def quadratic_flows_at_torch(f01: "torch.Tensor", f10: "torch.Tensor", f0m: "torch.Tensor | None",
                             f12: "torch.Tensor | None", t: "torch.Tensor | float",
                             limits: QuadLimits = QuadLimits(), reading: str = "mixed") -> "torch.Tensor":
    """:func:`quadratic_flows_at` on B×2×H×W tensors (fp32, pixels), for the network; returns B×4×H×W.

    The layout is :func:`vsugsp.model.prior.flows_at`'s: F(t→0) then F(t→1).  ``t``: a number
    or a B×1×1×1 tensor in [0, 1].  A neighbour is missing when it is None or, per batch item,
    when its flow holds a non-finite value (so one tensor carries the fall-back of each item and
    nothing is read on the host).  Readings "own" and "mixed" (the network's, see
    :data:`READINGS`) are computed as ``t·F10 − acc``, ``(1 − t)·F01 − acc``: with no trusted
    acceleration that is the linear prior's numbers bit for bit (:func:`vsugsp.model.prior.flows_at`).
    """
    return quadratic_readings_torch(f01, f10, f0m, f12, t, limits, (reading,))[0]


def quadratic_readings_torch(f01: "torch.Tensor", f10: "torch.Tensor", f0m: "torch.Tensor | None",
                             f12: "torch.Tensor | None", t: "torch.Tensor | float",
                             limits: QuadLimits = QuadLimits(),
                             readings: "tuple[str, ...]" = ("mixed",)) -> "list[torch.Tensor]":
    """:func:`quadratic_flows_at_torch` for each of ``readings``, in that order: the acceleration
    (the costly part: two bilinear samples and the weights) is estimated once for all of them."""
    for reading in readings:
        if reading not in READINGS:
            raise ValueError(f"vsugsp: reading={reading!r}; allowed: {', '.join(READINGS)}")
    if not isinstance(t, torch.Tensor):
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"vsugsp: t must be in [0, 1], got {t}")
        t = torch.full((f01.shape[0], 1, 1, 1), float(t), dtype=f01.dtype, device=f01.device)
    t = t.to(f01.dtype)
    s = 1 - t
    if f0m is None and f12 is None:  # linear motion: no acceleration to estimate, weigh or sample
        return [torch.cat([t * f10, s * f01], 1) if reading in ("own", "mixed")
                else torch.cat(_read(f01, f10, t * f01, s * f10, reading, t), 1) for reading in readings]

    def side(f: "torch.Tensor | None") -> "tuple[torch.Tensor, torch.Tensor]":
        if f is None:
            return torch.zeros_like(f01), torch.zeros(f01.shape[0], 1, 1, 1, dtype=torch.bool, device=f01.device)
        ok = torch.isfinite(f).flatten(1).all(1).view(-1, 1, 1, 1)
        return torch.where(ok, f, torch.zeros_like(f)), ok

    g0m, has0 = side(f0m)
    g12, has1 = side(f12)
    a0 = f01 + g0m  # acceleration of frame 0's pixels (see acceleration)
    a1 = f10 + g12
    w0 = _accel_weight_t(a0, sample_torch(a1, f01), has1, limits) * has0
    w1 = _accel_weight_t(a1, sample_torch(a0, f10), has0, limits) * has1
    acc0 = w0 * a0 * ((t * t - t) / 2.0)
    acc1 = w1 * a1 * ((s * s - s) / 2.0)
    out = []
    for reading in readings:
        if reading == "own":
            out.append(torch.cat([t * f10 - acc1, s * f01 - acc0], 1))
        elif reading == "mixed":
            out.append(torch.cat([t * f10 - acc0, s * f01 - acc1], 1))
        else:
            out.append(torch.cat(_read(f01, f10, t * f01 + acc0, s * f10 + acc1, reading, t), 1))
    return out


#: Channels of a pair's motion tensor (:func:`motion_tensor`): F(0→1), F(1→0), F(0→−1), F(1→2).
MOTION_CHANNELS = 8


def motion_tensor(pair: "torch.Tensor", left: "torch.Tensor | None", right: "torch.Tensor | None") -> "torch.Tensor":
    """A pair's B×8×H×W motion from its B×4 pair flow and its neighbours' pair flows (None: no neighbour).

    ``left``: pair (−1, 0)'s flow, whose F(1→0) is F(0→−1); ``right``: pair (1, 2)'s, whose F(0→1)
    is F(1→2).  A missing side is NaN, read as "no neighbour" by :func:`quadratic_flows_at_torch`.
    """
    nan = torch.full_like(pair[:, :2], float("nan"))
    f0m = nan if left is None else left[:, 2:].to(pair.dtype)
    f12 = nan if right is None else right[:, :2].to(pair.dtype)
    return torch.cat([pair, f0m, f12], 1)
