"""OpenCV, where it is installed: the module, and whether its parts vsugsp uses behave as it needs.

Optional everywhere: the DIS flow prior (:mod:`vsugsp.model.prior`) needs it, and the CPU
warp (:mod:`vsugsp.model.warp`) uses it when its bilinear remap passes a check.
"""
from __future__ import annotations

import functools


def cv2_module():
    """The ``cv2`` module, or ImportError saying how to install it."""
    try:
        import cv2
    except ImportError as e:
        raise ImportError("vsugsp: the DIS flow prior needs OpenCV "
                          "(pip install opencv-python-headless, or the 'prior' extra)") from e
    if not hasattr(cv2, "DISOpticalFlow_create"):
        raise ImportError("vsugsp: this OpenCV build has no DISOpticalFlow_create")
    return cv2


def available() -> bool:
    """True when OpenCV with DIS is importable."""
    try:
        cv2_module()
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def exact_remap():
    """``cv2`` when its bilinear ``remap`` of float32 planes with float32 maps weighs samples
    exactly (OpenCV 5), else None (not installed, or a build that rounds positions to 1/32
    pixel, as OpenCV 4's fixed-point tables do).  Checked once, on a case that tells them apart."""
    try:
        import cv2
        import numpy as np
    except ImportError:
        return None
    img = np.array([[0.0, 1.0, 0.0, 1.0]] * 2, np.float32)
    mx = np.array([[1.3, 0.01, -0.7, 2.4]] * 2, np.float32)
    my = np.array([[0.0, 0.0, 0.0, 5.0]] * 2, np.float32)
    try:
        out = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    except cv2.error:
        return None
    want = np.array([[0.7, 0.01, 0.0, 0.4]] * 2, np.float32)  # border replicated past the left and the bottom
    return cv2 if np.allclose(out, want, atol=1e-6) else None
