"""Where VapourSynth frames become 8-bit RGB arrays for scoring, and back.

Scoring happens on RGB24: the reference and the candidate clip are converted
with the same YUV matrix (the clip's own ``_Matrix`` property, or, when it is
unspecified, the filter's own size default, :func:`vsugsp.colors.default_matrix`),
so a method is never rewarded or punished for the colour conversion itself.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence

import numpy as np
import vapoursynth as vs

from ..colors import default_matrix

core = vs.core

# _Matrix values that resize accepts as a YUV→RGB matrix (0 = RGB, 2 = unspecified)
_KNOWN_MATRICES = {1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
MATRIX_NAMES = {1: "709", 4: "fcc", 5: "470bg", 6: "170m", 7: "240m", 8: "ycgco", 9: "2020ncl", 10: "2020cl",
                12: "chromancl", 13: "chromacl", 14: "ictcp"}


def rgb24_matrix(clip: vs.VideoNode) -> int:
    """The YUV matrix (VapourSynth ``_Matrix`` code) used to convert ``clip`` to RGB for scoring."""
    if clip.format is None or clip.width == 0 or clip.height == 0:
        raise ValueError("vsugsp: clip must have a constant format and size to be scored")
    if clip.format.color_family == vs.RGB:
        return 0
    prop = clip.get_frame(0).props.get("_Matrix")
    if isinstance(prop, int) and prop in _KNOWN_MATRICES:
        return prop
    return default_matrix(clip.width, clip.height)


def to_rgb24(clip: vs.VideoNode, matrix: int) -> vs.VideoNode:
    """Convert ``clip`` to RGB24 with ``matrix`` (ignoring the frames' own ``_Matrix``), rounding to 8 bits."""
    fmt = clip.format
    if fmt is None:
        raise ValueError("vsugsp: clip must have a constant format to be scored")
    if fmt.id == vs.RGB24:
        return clip
    if fmt.color_family == vs.RGB:
        return core.resize.Bicubic(clip, format=vs.RGB24)
    if fmt.color_family == vs.GRAY:
        return core.resize.Bicubic(clip, format=vs.RGB24, matrix_in=6)
    if matrix == 0:
        raise ValueError("vsugsp: a YUV clip needs a YUV matrix, got matrix=0 (RGB)")
    # resize prefers a frame's _Matrix over matrix_in: overwrite it so every clip converts alike
    return core.resize.Bicubic(core.std.SetFrameProps(clip, _Matrix=matrix), format=vs.RGB24, matrix_in=matrix)


def from_rgb24(clip: vs.VideoNode, fmt: vs.VideoFormat, matrix: int) -> vs.VideoNode:
    """Convert an RGB24 clip to ``fmt`` with ``matrix`` (the inverse of :func:`to_rgb24`)."""
    if fmt.id == clip.format.id:
        return clip
    if fmt.color_family == vs.RGB:
        return core.resize.Bicubic(clip, format=fmt.id)
    return core.resize.Bicubic(clip, format=fmt.id, matrix=matrix if matrix else 6)


def frame_to_rgb(frame: vs.VideoFrame) -> np.ndarray:
    """Copy an RGB24 frame into an H×W×3 uint8 array."""
    if frame.format.id != vs.RGB24:
        raise ValueError(f"vsugsp: expected an RGB24 frame, got {frame.format.name}")
    return np.stack([np.asarray(frame[p]) for p in range(3)], axis=-1)


def write_rgb(frame: vs.VideoFrame, rgb: np.ndarray) -> None:
    """Write an H×W×3 uint8 array into a writable RGB24 frame."""
    for p in range(3):
        np.asarray(frame[p])[:] = rgb[..., p]


def clip_from_rgb(frames: Sequence[np.ndarray], fps: Fraction | tuple[int, int] = Fraction(24)) -> vs.VideoNode:
    """An RGB24 clip holding ``frames`` (each H×W×3 uint8, all the same size), at ``fps``."""
    if len(frames) == 0:
        raise ValueError("vsugsp: clip_from_rgb needs at least one frame")
    h, w = frames[0].shape[:2]
    for i, f in enumerate(frames):
        if f.shape != (h, w, 3) or f.dtype != np.uint8:
            raise ValueError(f"vsugsp: frame {i} has shape {f.shape} {f.dtype}, expected ({h}, {w}, 3) uint8")
    fps = Fraction(*fps) if isinstance(fps, tuple) else Fraction(fps)
    blank = core.std.BlankClip(format=vs.RGB24, width=w, height=h, length=len(frames),
                               fpsnum=fps.numerator, fpsden=fps.denominator, keep=True)
    stored = [np.ascontiguousarray(f) for f in frames]

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        write_rgb(out, stored[n])
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def clip_from_planes(frames: Sequence[Sequence[np.ndarray]], fmt: int,
                     fps: Fraction | tuple[int, int], props: dict | None = None) -> vs.VideoNode:
    """A clip of format ``fmt`` from per-frame plane arrays (e.g. decoded YUV 4:2:0), at ``fps``."""
    if len(frames) == 0:
        raise ValueError("vsugsp: clip_from_planes needs at least one frame")
    h, w = frames[0][0].shape
    fps = Fraction(*fps) if isinstance(fps, tuple) else Fraction(fps)
    blank = core.std.BlankClip(format=fmt, width=w, height=h, length=len(frames),
                               fpsnum=fps.numerator, fpsden=fps.denominator, keep=True)
    if props:
        blank = core.std.SetFrameProps(blank, **props)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p, plane in enumerate(frames[n]):
            np.asarray(out[p])[:] = plane
        return out

    return core.std.ModifyFrame(blank, blank, fill)
