"""What an input file holds, read with PyAV before bestsource indexes it.

FFmpeg opens almost anything: a ``.txt`` file goes through its ``tty`` demuxer
and comes out as a 640×400 "video" of the text. Such inputs are refused here as
not a video, along with files that have no video stream.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

__all__ = ["TEXT_DEMUXERS", "TEXT_CODECS", "StreamInfo", "streams", "check_video", "FrameTimes", "frame_times"]

#: Packets read past the first N frames' worth when only N are wanted: decode order
#: runs ahead of display order by at most this many frames (H.264/HEVC reorder depth).
_REORDER_SLACK = 16

#: FFmpeg demuxers that render text or text-mode art as pictures (tty, bintext) or hold only subtitles.
TEXT_DEMUXERS = frozenset({
    "tty", "bin", "xbin", "adf", "idf", "ass", "srt", "webvtt", "subviewer", "subviewer1", "microdvd",
    "mpl2", "mpsub", "jacosub", "sami", "realtext", "stl", "pjs", "vplayer", "aqtitle", "lrc",
})
#: Video "codecs" that draw text (the tty and bintext decoders).
TEXT_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a file: its index, type ("video", "audio", "subtitle", "data", ...) and codec name."""

    index: int
    type: str
    codec: str


def streams(path: str | Path) -> tuple[str, list[StreamInfo]]:
    """(demuxer name, streams) of ``path``; ValueError naming the file when FFmpeg cannot open it."""
    import av

    try:
        with av.open(str(path)) as c:
            found = [StreamInfo(s.index, s.type, s.codec_context.name if s.codec_context else "?")
                     for s in c.streams]
            return c.format.name, found
    except av.FFmpegError as exc:
        raise ValueError(f"vsugsp: input {str(path)!r} is not a video FFmpeg can read ({exc})") from None


def check_video(path: str | Path) -> list[StreamInfo]:
    """The streams of ``path`` when it is a video; ValueError("vsugsp: ... is not a video ...") otherwise.

    Without PyAV (a y4m-only install) nothing is checked and the list is empty.
    """
    try:
        import av  # noqa: F401
    except ImportError:
        return []
    demuxer, found = streams(path)
    videos = [s for s in found if s.type == "video"]
    if demuxer in TEXT_DEMUXERS or any(s.codec in TEXT_CODECS for s in videos):
        raise ValueError(f"vsugsp: input {str(path)!r} is not a video: FFmpeg reads it as text "
                         f"(the {demuxer!r} demuxer)")
    if not videos:
        kinds = ", ".join(sorted({s.type for s in found})) or "no streams"
        raise ValueError(f"vsugsp: input {str(path)!r} is not a video: it has no video stream ({kinds})")
    return found


@dataclass(frozen=True)
class FrameTimes:
    """The first video stream's frame times: ``times`` (seconds, display order, increasing),
    ``end`` (seconds: when the last of them ends) and ``tick`` (the stream's time base, seconds)."""

    times: list[Fraction]
    end: Fraction
    tick: Fraction


def frame_times(path: str | Path, limit: int | None = None) -> FrameTimes | None:
    """The presentation times of ``path``'s first video stream, from its packets (nothing is decoded).

    ``limit``: only the first ``limit`` frames (the rest of the file is not
    read). None when a packet has no timestamp (e.g. raw streams), so there
    are no times to compare with.
    """
    import av

    pts: list[int] = []
    durations: dict[int, int] = {}
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        tb = Fraction(stream.time_base)
        for packet in c.demux(stream):
            if packet.size == 0:
                continue
            if packet.pts is None:
                return None
            pts.append(packet.pts)
            durations[packet.pts] = packet.duration or 0
            if limit is not None and len(pts) >= limit + _REORDER_SLACK:
                break
    pts.sort()
    if not pts:
        return None
    kept = pts if limit is None else pts[:limit]
    if len(kept) < len(pts):  # the next frame's start is where the last kept one ends
        last_end = pts[len(kept)]
    else:
        step = durations[kept[-1]] or (kept[-1] - kept[-2] if len(kept) > 1 else 0)
        last_end = kept[-1] + max(step, 1)
    return FrameTimes([p * tb for p in kept], last_end * tb, tb)
