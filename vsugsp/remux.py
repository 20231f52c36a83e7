"""Audio and subtitles from the source, copied into the interpolated video by remux.

Packets are copied as they are (no re-encode) with their timestamps, shifted
so that the source's first video frame is time 0, as it is in the output
video. Packets that start at or after the end of the output video are left
out (``--frames N`` takes a part of the source), so the copied streams end
within one audio frame of the video. A stream the output container cannot
hold (e.g. SubRip subtitles in MP4) is named in a warning and skipped.
"""
from __future__ import annotations

import heapq
import io
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

__all__ = ["COPIED_TYPES", "copyable_streams", "mux_with_source_streams"]

#: The kinds of source stream that are copied.
COPIED_TYPES = ("audio", "subtitle")


def _describe(stream) -> str:
    name = stream.codec_context.name if stream.codec_context else "?"
    lang = (stream.metadata or {}).get("language")
    lang = None if lang in (None, "", "und") else lang
    return f"#{stream.index} {stream.type} ({name}{', ' + lang if lang else ''})"


def _fits(muxer: str, video, stream) -> bool:
    """Whether ``muxer`` takes a copy of ``stream`` next to a copy of ``video`` (a header written to memory)."""
    import av

    try:
        with av.open(io.BytesIO(), "w", format=muxer) as trial:
            trial.add_stream_from_template(video)
            trial.add_stream_from_template(stream)
            trial.start_encoding()
    except (av.FFmpegError, ValueError):
        return False
    return True


def copyable_streams(source: str | Path, muxer: str | None, warn: Callable[[str], None]) -> list[int]:
    """Indices of ``source``'s audio/subtitle streams that ``muxer`` can hold; the others named through ``warn``.

    ``muxer`` None means an output that holds video only (y4m): every such stream is named.
    """
    import av

    with av.open(str(source)) as src:
        if not src.streams.video:
            return []
        video = src.streams.video[0]
        keep, dropped = [], []
        for s in src.streams:
            if s.type not in COPIED_TYPES:
                continue
            if muxer is not None and _fits(muxer, video, s):
                keep.append(s.index)
            else:
                dropped.append(_describe(s))
    if dropped:
        where = f"the {muxer} container cannot hold" if muxer else "y4m holds video only, so it gets no"
        warn(f"vsugsp: warning: {where} {', '.join(dropped)}; not copied")
    return keep


def _packets(container, streams, shift: dict[int, int], end: dict[int, int | None]) -> Iterator[tuple]:
    """(time in seconds, order, packet) of ``streams`` in file order, shifted, those before ``end`` only.

    A non-video packet that ends at or before time 0 (the first video frame) is
    left out, except an audio stream's last such packet, its pre-roll: an AAC,
    MP3 or Opus packet is decoded with the help of the one before it, and the
    encoder's priming packet (AAC's first, at -1024 samples) is exactly this
    one. Kept at its negative time, the decoder drops its samples and the
    first one heard is at the time it has in the source; moved to 0, all the
    audio would be late by its length (21 ms at 48 kHz).
    """
    order = 0
    preroll: dict[int, object] = {}  # stream index -> the last audio packet wholly before 0, not yet sent
    for packet in container.demux(streams):
        if packet.size == 0 or packet.dts is None and packet.pts is None:  # end-of-stream markers
            continue
        idx = packet.stream.index
        d = shift.get(idx, 0)
        if packet.pts is not None:
            packet.pts -= d
        if packet.dts is not None:
            packet.dts -= d
        ts = packet.dts if packet.dts is not None else packet.pts
        start = packet.pts if packet.pts is not None else ts
        stop = end.get(idx)
        if stop is not None and start >= stop:
            continue
        if start + (packet.duration or 0) <= 0 and packet.stream.type != "video":
            if packet.stream.type == "audio":
                preroll[idx] = packet
            continue  # wholly before the first video frame
        held = preroll.pop(idx, None)
        if held is not None:
            order += 1
            yield float(_ts(held) * held.time_base), order, held
        order += 1
        yield float(ts * packet.time_base), order, packet


def _ts(packet) -> int:
    return packet.dts if packet.dts is not None else packet.pts


def mux_with_source_streams(
    video: str | Path,
    source: str | Path,
    output: str | Path,
    streams: list[int],
    *,
    duration: Fraction | None = None,
    muxer: str | None = None,
) -> None:
    """Write ``output``: ``video``'s first video stream plus ``source``'s streams ``streams`` (indices), all copied.

    ``duration`` (seconds): the output video's length; source packets starting
    at or after it are left out (None: all are kept). ``muxer`` names the
    container (default: from ``output``'s extension).
    """
    import av

    with av.open(str(video)) as vin, av.open(str(source)) as sin:
        vstream = vin.streams.video[0]
        chosen = [sin.streams[i] for i in streams]
        origin = Fraction(0)
        if sin.streams.video and sin.streams.video[0].start_time is not None:
            sv = sin.streams.video[0]
            origin = sv.start_time * Fraction(sv.time_base)
        shift = {s.index: round(origin / Fraction(s.time_base)) for s in chosen}
        end = {s.index: (None if duration is None else round(Fraction(duration) / Fraction(s.time_base)))
               for s in chosen}
        out = av.open(str(output), "w", format=muxer)
        try:
            ov = out.add_stream_from_template(vstream)
            targets = {("v", vstream.index): ov}
            for s in chosen:
                targets[("s", s.index)] = out.add_stream_from_template(s)
            merged = heapq.merge(
                ((t, 0, o, "v", p) for t, o, p in _packets(vin, [vstream], {}, {})),
                ((t, 1, o, "s", p) for t, o, p in _packets(sin, chosen, shift, end)),
                key=lambda x: (x[0], x[1], x[2]),
            )
            for _, _, _, side, packet in merged:
                packet.stream = targets[(side, packet.stream.index)]
                out.mux(packet)
        finally:
            out.close()
