"""What an input file holds, read with PyAV before bestsource indexes it.

FFmpeg opens almost anything: a ``.txt`` file goes through its ``tty`` demuxer
and comes out as a 640×400 "video" of the text. Such inputs are refused here as
not a video, along with files that have no video stream.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["TEXT_DEMUXERS", "TEXT_CODECS", "StreamInfo", "streams", "check_video"]

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
