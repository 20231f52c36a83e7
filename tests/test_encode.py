"""vsugsp.encode: codec choice and FFV1's lossless round trip."""
from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs

from vsugsp.encode import CODECS, pick_codec, write_video
from vsclips import noise


def decoded_planes(path) -> list[list[np.ndarray]]:
    """Every frame of the file's video stream as VapourSynth-ordered planes (R, G, B for RGB)."""
    import av

    frames = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            name = f.format.name
            dtype = np.uint16 if f.format.components[0].bits > 8 else np.uint8
            planes = []
            for plane in f.planes:
                rows = np.frombuffer(plane, dtype).reshape(plane.height, -1)
                planes.append(rows[:, : plane.width].copy())
            if name.startswith("gbrp"):
                planes = [planes[2], planes[0], planes[1]]
            frames.append(planes)
    return frames


@pytest.mark.parametrize("fmt", [vs.YUV420P8, vs.YUV444P10, vs.GRAY16, vs.RGB30, vs.YUV411P8])
def test_ffv1_is_lossless(tmp_path, fmt):
    clip = noise(fmt, 64, 48, length=3)
    assert write_video(clip, tmp_path / "x.mkv", codec="ffv1") == "ffv1"
    got = decoded_planes(tmp_path / "x.mkv")
    assert len(got) == 3
    for frame, planes in zip(clip.frames(), got):
        for p in range(frame.format.num_planes):
            assert np.array_equal(np.asarray(frame[p]), planes[p]), (fmt, p)


def test_ffv1_takes_odd_sizes_and_mp4(tmp_path):
    clip = noise(vs.YUV444P8, 65, 47, length=2)
    write_video(clip, tmp_path / "x.mp4", codec="ffv1")
    got = decoded_planes(tmp_path / "x.mp4")
    assert np.array_equal(np.asarray(clip.get_frame(1)[0]), got[1][0])


def test_unknown_codec_is_named():
    assert "ffv1" in CODECS and "auto" in CODECS
    with pytest.raises(ValueError, match="codec 'h265'.*auto, libx264, mpeg4, ffv1"):
        pick_codec("h265")
