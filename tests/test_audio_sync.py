"""Audio stays in sync with the video (issue 24 item 13): the source's AAC priming
packet (at -1024 samples) is kept, so a tone that starts 0.1 ms after the first
video frame in the source starts 0.1 ms after it in the output too, not 21 ms."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from test_cli import tiny_model  # noqa: F401  (a fixture)
from vsugsp import cli

av = pytest.importorskip("av")

RATE = 48000
TONE_AT = 0.0001  # seconds after the first video frame
FAST = ["--device", "cpu", "--set", "flow_prior=none"]


def tone_clip(path: Path, frames: int = 8, fps: int = 24) -> Path:
    """A 64x48 H.264 clip with AAC audio: silence, then a 1 kHz tone from TONE_AT s."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=RATE, layout="mono")
        for n in range(frames):
            img = np.full((48, 64, 3), 30 * n, np.uint8)
            img[:, (6 * n) % 64:] = 220
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            f.pts = n
            c.mux(v.encode(f))
        t = np.arange(RATE * frames // fps) / RATE
        sig = np.where(t >= TONE_AT, 0.5 * np.sin(2 * np.pi * 1000 * t), 0).astype(np.float32)[None]
        for k in range(0, sig.shape[1], 1024):
            af = av.AudioFrame.from_ndarray(sig[:, k:k + 1024].copy(), format="fltp", layout="mono")
            af.sample_rate, af.pts = RATE, k
            c.mux(a.encode(af))
        c.mux(v.encode(None))
        c.mux(a.encode(None))
    return path


def tone_onset(path: Path) -> float:
    """Seconds from the first video frame shown to the first audio sample above 0.05, as a player decodes them."""
    with av.open(str(path)) as c:
        video0 = min(f.pts * f.time_base for f in c.decode(video=0))
    with av.open(str(path)) as c:
        first, samples = None, []
        for f in c.decode(audio=0):
            if first is None:
                first = f.pts * f.time_base
            samples.append(f.to_ndarray()[0])
        x = np.concatenate(samples)
        loud = np.flatnonzero(np.abs(x) > 0.05)
        assert loud.size, "no tone in the audio"
        return float(first + Fraction(int(loud[0]), RATE) - video0)


def test_the_generated_source_has_its_tone_where_it_was_put(tmp_path):
    src = tone_clip(tmp_path / "src.mkv")
    with av.open(str(src)) as c:  # the encoder's priming packet is there, at a negative time
        first = next(p for p in c.demux(audio=0) if p.size)
        assert first.pts * first.time_base < 0
    assert abs(tone_onset(src) - TONE_AT) < 0.0002


@pytest.mark.parametrize("src_ext, out_ext", [("mkv", "mkv"), ("mkv", "mp4"), ("mp4", "mkv")])
def test_interpolate_keeps_the_audio_priming(tmp_path, tiny_model, capsys, src_ext, out_ext):
    src = tone_clip(tmp_path / f"src.{src_ext}")
    out = tmp_path / f"out.{out_ext}"
    assert cli.main(["interpolate", str(src), "-o", str(out), "--model", str(tiny_model), *FAST]) == 0, \
        capsys.readouterr().err
    assert abs(tone_onset(out) - tone_onset(src)) < 0.001  # 21 ms late before


def test_a_trimmed_copy_keeps_the_priming_too(tmp_path, tiny_model, capsys):
    src = tone_clip(tmp_path / "src.mkv")
    out = tmp_path / "out.mkv"
    assert cli.main(["interpolate", str(src), "-o", str(out), "--frames", "4", "--model", str(tiny_model),
                     *FAST]) == 0, capsys.readouterr().err
    assert abs(tone_onset(out) - tone_onset(src)) < 0.001


def test_render_keeps_the_audio_priming(tmp_path, tiny_model, capsys):
    pytest.importorskip("ray", reason="the distributed extra (ray) is not installed")
    src = tone_clip(tmp_path / "src.mkv")
    out = tmp_path / "render.mkv"
    assert cli.main(["render", str(src), "-o", str(out), "--model", str(tiny_model), "--workers", "1",
                     *FAST]) == 0, capsys.readouterr().err
    assert abs(tone_onset(out) - tone_onset(src)) < 0.001
