"""The classical calibration interpolator of DESIGN §7 ("dis").

OpenCV DIS optical flow in both directions; each frame is backward-warped to
time t under linear motion (the flow at a pixel of the other frame scaled by
the time distance) and the two warps are averaged, with no occlusion
handling.  A learned model that does not beat this is undertrained.
"""

from __future__ import annotations

import numpy as np

from ..model.prior import PRESETS as _PRESETS
from ..model.prior import cv2_module as _cv2
from ..model.prior import pair_flow_np


def _warp(img: np.ndarray, flow: np.ndarray, scale: float) -> np.ndarray:
    cv2 = _cv2()
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx = gx + scale * flow[..., 0]
    my = gy + scale * flow[..., 1]
    return cv2.remap(img, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def dis_interpolate(img0: np.ndarray, img1: np.ndarray, t: float = 0.5, preset: str = "medium") -> np.ndarray:
    """Frame at time ``t`` in (0, 1) between two uint8 H×W×3 RGB frames, as uint8 H×W×3.

    ``preset``: DIS preset, "ultrafast", "fast" or "medium".
    """
    if preset not in _PRESETS:
        raise ValueError(f"vsugsp: DIS preset must be one of {sorted(_PRESETS)}, got {preset!r}")
    if not 0.0 < t < 1.0:
        raise ValueError(f"vsugsp: t must be in (0, 1), got {t}")
    if img0.shape != img1.shape or img0.ndim != 3 or img0.shape[2] != 3:
        raise ValueError(f"vsugsp: expected two H×W×3 frames of one size, got {img0.shape} and {img1.shape}")
    cv2 = _cv2()
    f01, f10 = pair_flow_np(cv2.cvtColor(img0, cv2.COLOR_RGB2GRAY), cv2.cvtColor(img1, cv2.COLOR_RGB2GRAY), preset)
    # linear motion: from time t, frame 0 lies t of the 1→0 displacement away, frame 1 (1−t) of the 0→1 one
    w0 = _warp(img0.astype(np.float32), f10, t)
    w1 = _warp(img1.astype(np.float32), f01, 1.0 - t)
    out = (1.0 - t) * w0 + t * w1
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
