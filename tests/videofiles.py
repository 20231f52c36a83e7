"""Tiny lossless video files for the data and benchmark tests (written with PyAV, no VapourSynth)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np


def write_ffv1(path: Path, frames: Iterable[np.ndarray], rate: int = 10) -> Path:
    """Write H×W×3 uint8 RGB ``frames`` to ``path`` as lossless FFV1 at ``rate`` fps (timestamps
    0, 1, 2, ... in 1/rate s), so decoded frames equal the written ones; returns ``path``."""
    import av

    frames = [np.ascontiguousarray(f) for f in frames]
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        st = out.add_stream("ffv1", rate=rate)
        st.width, st.height, st.pix_fmt = w, h, "bgr0"
        st.time_base = Fraction(1, rate)
        for k, img in enumerate(frames):
            fr = av.VideoFrame.from_ndarray(img, format="rgb24")
            fr.pts = k
            for p in st.encode(fr):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    return path
