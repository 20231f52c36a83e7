"""Joining chunk files into one video by remux: packets are copied, never re-encoded.

Every chunk was encoded on its own, so it starts with a key frame and refers
to no frame outside itself (closed GOPs); its frames are 0 .. N-1 at the
output rate. Stitching renumbers each chunk's packets from the chunk's first
output frame and writes them in order into the container that OUT's
extension names.

Timestamps are rebuilt from frame numbers: a constant-rate encode's decode
timestamps are its packets' positions in decode order less the reorder delay
(0 without B-frames), and the chunk container (NUT) has shifted everything
by that delay, so the first packet, the key frame shown first, carries it.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

__all__ = ["stitch"]


def _frame_number(ts: int, time_base: Fraction, rate: Fraction, what: str) -> int:
    exact = ts * time_base * rate
    n = round(exact)
    if abs(exact - n) > Fraction(1, 1000):
        raise ValueError(f"vsugsp: {what} timestamp {ts} × {time_base} is not on a frame of {rate} fps")
    return n


def stitch(chunks: Sequence[tuple[Path, int]], output: Path, rate: Fraction) -> int:
    """Write the video of ``chunks`` (file, first output frame), in order, to ``output``.

    ``rate`` is the output frame rate (frames per second). Returns the
    number of frames written. Raises ``ValueError`` when a chunk's stream
    differs from the first one's (codec, size, pixel format, headers) or its
    frames are not the consecutive run expected.
    """
    import av

    if not chunks:
        raise ValueError("vsugsp: nothing to stitch")
    tb = 1 / Fraction(rate)
    written = 0
    with av.open(str(chunks[0][0])) as first:
        template = first.streams.video[0]
        signature = _signature(template)
        out = av.open(str(output), "w")
        try:
            ostream = out.add_stream_from_template(template)
            ostream.time_base = tb
            ostream.codec_context.time_base = tb
            for path, start in chunks:
                if start != written:
                    raise ValueError(f"vsugsp: chunk {path.name} starts at frame {start}, expected {written}")
                written += _copy(path, start, signature, ostream, out, rate, tb)
        finally:
            out.close()
    return written


def _signature(stream) -> tuple:
    cc = stream.codec_context
    return (cc.name, cc.width, cc.height, cc.format.name if cc.format else None, bytes(cc.extradata or b""))


def _copy(path: Path, start: int, signature: tuple, ostream, out, rate: Fraction, tb: Fraction) -> int:
    """Mux ``path``'s video packets renumbered from frame ``start``; returns its frame count."""
    import av

    frames = 0
    seen: set[int] = set()
    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        if _signature(stream) != signature:
            raise ValueError(
                f"vsugsp: chunk {path.name} was encoded differently from the first chunk "
                f"({_signature(stream)[:4]} vs {signature[:4]}); rerender it (delete it from the work dir)"
            )
        itb = Fraction(stream.time_base)
        delay = None
        for packet in src.demux(stream):
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            if packet.pts is None:
                raise ValueError(f"vsugsp: chunk {path.name} has a packet without a timestamp")
            pts = _frame_number(packet.pts, itb, rate, path.name)
            if delay is None:
                if not packet.is_keyframe:
                    raise ValueError(f"vsugsp: chunk {path.name} does not start with a key frame")
                delay = pts
            pts -= delay
            dts = frames - delay
            if pts < dts:
                raise ValueError(f"vsugsp: chunk {path.name} shows frame {pts} before decoding it")
            seen.add(pts)
            packet.pts, packet.dts, packet.duration = start + pts, start + dts, 1
            packet.time_base = tb
            packet.stream = ostream
            out.mux(packet)
            frames += 1
    if seen != set(range(frames)):
        raise ValueError(f"vsugsp: chunk {path.name} does not hold frames 0..{frames - 1} once each")
    return frames
