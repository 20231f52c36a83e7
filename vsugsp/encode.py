"""Write a VapourSynth clip to a video file with PyAV: H.264 via libx264 when
PyAV's bundled FFmpeg has it, else MPEG-4 Part 2 (``codec="auto"``), or FFV1
(``codec="ffv1"``, lossless: decoded frames equal the clip's samples)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
import vapoursynth as vs

# VapourSynth format -> FFmpeg pixel format that libx264 accepts as is.
_X264_PIX_FMTS = {
    vs.YUV420P8: "yuv420p",
    vs.YUV422P8: "yuv422p",
    vs.YUV444P8: "yuv444p",
    vs.YUV420P10: "yuv420p10le",
    vs.YUV422P10: "yuv422p10le",
    vs.YUV444P10: "yuv444p10le",
    vs.GRAY8: "gray",
}


# VapourSynth format -> FFmpeg pixel format FFV1 stores losslessly (same samples).
_FFV1_PIX_FMTS = {
    vs.GRAY8: "gray", vs.GRAY10: "gray10le", vs.GRAY12: "gray12le", vs.GRAY16: "gray16le",
    vs.YUV410P8: "yuv410p", vs.YUV411P8: "yuv411p", vs.YUV440P8: "yuv440p",
    vs.YUV420P8: "yuv420p", vs.YUV422P8: "yuv422p", vs.YUV444P8: "yuv444p",
    vs.YUV420P9: "yuv420p9le", vs.YUV422P9: "yuv422p9le", vs.YUV444P9: "yuv444p9le",
    vs.YUV420P10: "yuv420p10le", vs.YUV422P10: "yuv422p10le", vs.YUV444P10: "yuv444p10le",
    vs.YUV420P12: "yuv420p12le", vs.YUV422P12: "yuv422p12le", vs.YUV444P12: "yuv444p12le",
    vs.YUV420P14: "yuv420p14le", vs.YUV422P14: "yuv422p14le", vs.YUV444P14: "yuv444p14le",
    vs.YUV420P16: "yuv420p16le", vs.YUV422P16: "yuv422p16le", vs.YUV444P16: "yuv444p16le",
    # FFmpeg's planar RGB is stored G, B, R (see _AV_PLANES)
    vs.RGB27: "gbrp9le", vs.RGB30: "gbrp10le", vs.RGB36: "gbrp12le", vs.RGB42: "gbrp14le",
    vs.RGB48: "gbrp16le",
}
#: FFmpeg's plane p holds VapourSynth's plane _AV_PLANES[p] (gbrp: G, B, R).
_AV_PLANES = {"gbrp": (1, 2, 0)}

#: Time base of a file whose frames carry their own times (``times``): 1/60000 s is
#: exact for 24, 25, 30, 48, 50, 60, 120 fps and millisecond sources, and MPEG-4
#: Part 2 takes no denominator above 65535.
VFR_TIME_BASE = Fraction(1, 60000)

#: What `--codec` takes: "auto" (libx264, else mpeg4), "libx264", "mpeg4", "ffv1" (lossless).
CODECS = ("auto", "libx264", "mpeg4", "ffv1")


def pick_codec(codec: str = "auto") -> str:
    """The encoder for `codec` (one of CODECS): "auto" is 'libx264' when
    PyAV's FFmpeg has it, else 'mpeg4'. Raises ValueError naming the codec
    when it is unknown or this FFmpeg lacks it."""
    import av

    if codec not in CODECS:
        raise ValueError(f"vsugsp: codec {codec!r} is not one of {', '.join(CODECS)}")
    if codec == "auto":
        return "libx264" if "libx264" in av.codecs_available else "mpeg4"
    if codec not in av.codecs_available:
        raise ValueError(f"vsugsp: codec {codec!r} is not in PyAV's FFmpeg here; use --codec auto")
    return codec


def encodable(clip: vs.VideoNode, codec: str) -> tuple[vs.VideoNode, str]:
    """Convert `clip` to a format `codec` takes; returns (clip, pix_fmt).

    libx264 keeps 8/10-bit YUV and GRAY as they are; everything else becomes
    YUV 4:2:0 (10-bit when the source has more than 8 bits). mpeg4 only takes
    8-bit YUV 4:2:0. RGB is converted with the BT.709 matrix.
    """
    fmt = clip.format
    if codec == "libx264" and fmt.id in _X264_PIX_FMTS:
        return clip, _X264_PIX_FMTS[fmt.id]
    if codec == "ffv1":
        if fmt.id in _FFV1_PIX_FMTS:
            return clip, _FFV1_PIX_FMTS[fmt.id]
        # 8-bit RGB has no planar FFV1 format, float samples none at all: 16 bits per
        # sample in the same family and subsampling (4:4:4 where that has none)
        same = vs.core.query_video_format(
            fmt.color_family, vs.INTEGER, 16, fmt.subsampling_w, fmt.subsampling_h
        ).id
        target = same if same in _FFV1_PIX_FMTS else vs.YUV444P16
        return clip.resize.Point(format=target), _FFV1_PIX_FMTS[target]
    target = vs.YUV420P10 if codec == "libx264" and fmt.bits_per_sample > 8 else vs.YUV420P8
    kwargs = {"matrix_s": "709"} if fmt.color_family in (vs.RGB, vs.GRAY) else {}
    clip = clip.resize.Bicubic(format=target, dither_type="error_diffusion", **kwargs)
    return clip, _X264_PIX_FMTS[target]


def write_video(
    clip: vs.VideoNode,
    path: str | Path,
    *,
    crf: int = 18,
    codec: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    times: Sequence[Fraction] | None = None,
) -> str:
    """Encode every frame of `clip` (constant rate) to `path`; returns the encoder used.

    The container comes from the file extension (.mp4, .mkv, .mov, ...).
    `codec` is one of CODECS (see pick_codec). `crf` (0..51, lower = better)
    applies to libx264; mpeg4 uses a fixed quantiser scale; ffv1 is lossless.
    Every encode starts with a key frame and its GOPs are closed, so files
    written from consecutive frame ranges can be joined by remux.
    `progress(done, total)` is called after each frame.
    `times`: each frame's presentation time in seconds (increasing, one per
    frame), for a file whose frames keep their own times (``--vfr follow``);
    they are rounded to :data:`VFR_TIME_BASE`. None: the clip's constant rate.
    """
    import av

    if clip.fps_num <= 0 or clip.fps_den <= 0:
        raise ValueError("vsugsp: the output clip has no constant frame rate; cannot encode it")
    pts = None
    if times is not None:
        pts = [round(Fraction(t) / VFR_TIME_BASE) for t in times]
        if len(pts) != clip.num_frames:
            raise ValueError(f"vsugsp: {len(pts)} frame times for {clip.num_frames} frames")
        if any(b <= a for a, b in zip(pts, pts[1:])):
            raise ValueError(f"vsugsp: frame times must increase by at least {VFR_TIME_BASE} s")
    codec = pick_codec(codec)
    clip, pix_fmt = encodable(clip, codec)
    if codec != "ffv1" and (clip.width % 2 or clip.height % 2):
        raise ValueError(
            f"vsugsp: {clip.width}x{clip.height} cannot be encoded as {pix_fmt}: width and height "
            "must be even (write y4m with -o - instead)"
        )
    rate = Fraction(clip.fps_num, clip.fps_den)
    container = av.open(str(path), "w")
    try:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = clip.width, clip.height, pix_fmt
        tb = 1 / rate if pts is None else VFR_TIME_BASE
        if pts is not None:  # finer than one frame: the times between the source's own
            stream.codec_context.time_base = tb
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "medium", "open-gop": "0"}
        elif codec == "ffv1":
            stream.options = {"level": "3", "slicecrc": "1"}
        else:
            stream.options = {"qscale": "3"}
            stream.codec_context.flags |= av.codec.context.Flags.qscale
        dtype = np.uint16 if clip.format.bytes_per_sample == 2 else np.uint8
        total = clip.num_frames
        for n, frame in enumerate(clip.frames(close=True)):
            out = av.VideoFrame(clip.width, clip.height, pix_fmt)
            order = _AV_PLANES.get(pix_fmt[:4], range(len(out.planes)))
            for plane, p in zip(out.planes, order):
                # The frame's buffer is written in place: its rows may be
                # padded (line_size), so view it as rows and fill the width.
                rows = np.frombuffer(plane, dtype).reshape(plane.height, -1)
                rows[:, : plane.width] = np.asarray(frame[p])
            out.pts, out.time_base = (n if pts is None else pts[n]), tb
            container.mux(stream.encode(out))
            if progress is not None:
                progress(n + 1, total)
        container.mux(stream.encode(None))
    finally:
        container.close()
    return codec
