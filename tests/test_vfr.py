"""Variable-frame-rate sources (issue 24 item 14): detected and named in a warning
that says what was done (interpolate and render), or followed with --vfr follow."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from test_cli import tiny_model  # noqa: F401  (a fixture)
from vsugsp import cli
from vsugsp.vfr import follow_times, retiming

av = pytest.importorskip("av")

MS = Fraction(1, 1000)
#: 5 frames at 24 fps, then 7 at 30 fps (milliseconds, as MKV stores them)
VFR_MS = [0, 42, 83, 125, 167, 200, 233, 267, 300, 333, 375, 417]
FAST = ["--device", "cpu", "--set", "flow_prior=none"]


def timed_clip(path: Path, pts_ms: list[int], header_rate: int = 24) -> Path:
    """A 64x48 clip whose frame n is shown at pts_ms[n] ms (the header says ``header_rate`` fps)."""
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as c:
        v = c.add_stream(codec, rate=header_rate)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.options = {"bf": "0"}  # decode order = display order: each packet gets its frame's time
        v.time_base = MS

        def mux(packets):
            for p in packets:
                k = p.pts
                p.pts = p.dts = pts_ms[k]
                p.duration = pts_ms[k + 1] - pts_ms[k] if k + 1 < len(pts_ms) else 33
                p.time_base = MS
                c.mux(p)

        for n in range(len(pts_ms)):
            img = np.full((48, 64, 3), 20 * n, np.uint8)
            img[:, (5 * n) % 64:] = 230
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            f.pts = n
            mux(v.encode(f))
        mux(v.encode(None))
    return path


def shown_at(path: Path) -> list[Fraction]:
    with av.open(str(path)) as c:
        times = sorted(f.pts * f.time_base for f in c.decode(video=0))
    return [t - times[0] for t in times]


# ------------------------------------------------------------ pure functions

def test_a_constant_rate_rounded_to_milliseconds_is_not_variable():
    times = [round(Fraction(n * 1001, 24000) / MS) * MS for n in range(500)]
    r = retiming(times, Fraction(24000, 1001), MS)
    assert not r.variable and r.shift <= MS / 2


def test_a_rate_change_is_variable_and_measured():
    r = retiming([t * MS for t in VFR_MS], Fraction(24), MS)
    assert r.variable
    assert r.shift == Fraction(42, 1000) and r.at == 9  # frame 9: 375 ms at 24 fps, 333 ms in the source
    assert (r.shortest, r.longest) == (Fraction(33, 1000), Fraction(42, 1000))


def test_a_wrong_nominal_rate_drifts_and_is_caught():
    """29.97 fps timestamps taken as 30 fps drift by 0.033 ms a frame: 33 ms after 1000 frames."""
    times = [Fraction(n * 1001, 30000) for n in range(1000)]
    assert retiming(times, Fraction(30), MS).variable
    assert not retiming(times, Fraction(30000, 1001), MS).variable


def test_follow_times_keep_the_source_frames_and_split_each_interval():
    times = [t * MS for t in (0, 40, 100)]
    assert follow_times(times, Fraction(130, 1000), Fraction(2)) == \
        [t * MS for t in (0, 20, 40, 70, 100, 115)]
    out = follow_times(times, Fraction(130, 1000), Fraction(3, 2))
    # output n sits at source position 2n/3: 0, 2/3 (of 0..40), 4/3 (1/3 of 40..100), 2 (100), 8/3 (2/3 of 100..130)
    assert out == [Fraction(0), Fraction(80, 3000), Fraction(60, 1000), Fraction(100, 1000), Fraction(120, 1000)]


def test_follow_times_refuse_times_that_do_not_increase():
    with pytest.raises(ValueError, match="do not increase"):
        follow_times([Fraction(0), Fraction(0)], Fraction(1), Fraction(2))


# ------------------------------------------------------------ the command line

def test_interpolate_warns_of_a_variable_rate_and_says_what_it_did(tmp_path, tiny_model, capsys):
    src = timed_clip(tmp_path / "vfr.mkv", VFR_MS)
    out = tmp_path / "out.mkv"
    assert cli.main(["interpolate", str(src), "-o", str(out), "--model", str(tiny_model), *FAST]) == 0
    err = capsys.readouterr().err
    assert "has a variable frame rate (frame intervals 33.0 ms to 42.0 ms); its 12 frames are taken at a " \
           "constant 24 fps, which moves them by up to 42.0 ms (frame 9)" in err, err
    assert "--vfr follow" in err
    assert shown_at(out)[18] == Fraction(375, 1000)  # source frame 9, retimed as the warning says


def test_a_constant_rate_source_gives_no_warning(tmp_path, tiny_model, capsys):
    src = timed_clip(tmp_path / "cfr.mkv", [round(1000 * n / 24) for n in range(12)])
    assert cli.main(["interpolate", str(src), "-o", str(tmp_path / "o.mkv"), "--model", str(tiny_model),
                     *FAST]) == 0
    assert "variable frame rate" not in capsys.readouterr().err


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_vfr_follow_keeps_the_source_timestamps(tmp_path, tiny_model, capsys, ext):
    src = timed_clip(tmp_path / "vfr.mkv", VFR_MS)
    out = tmp_path / f"out.{ext}"
    assert cli.main(["interpolate", str(src), "-o", str(out), "--vfr", "follow", "--model", str(tiny_model),
                     *FAST]) == 0
    captured = capsys.readouterr()
    assert "variable frame rate" not in captured.err
    assert "variable (the source's timestamps, average" in captured.out
    shown = shown_at(out)
    assert len(shown) == 24
    assert all(abs(shown[2 * k] - t * MS) <= MS for k, t in enumerate(VFR_MS))  # source frames where they were
    mids = [(a + b) * MS / 2 for a, b in zip(VFR_MS, VFR_MS[1:])]
    assert all(abs(shown[2 * k + 1] - m) <= MS for k, m in enumerate(mids))  # the new ones half way


def test_vfr_follow_with_frames_and_factor_3(tmp_path, tiny_model, capsys):
    src = timed_clip(tmp_path / "vfr.mkv", VFR_MS)
    out = tmp_path / "out.mkv"
    assert cli.main(["interpolate", str(src), "-o", str(out), "--vfr", "follow", "--factor", "3", "--frames", "8",
                     "--model", str(tiny_model), *FAST]) == 0, capsys.readouterr().err
    shown = shown_at(out)
    assert len(shown) == 24
    assert all(abs(shown[3 * k] - t * MS) <= MS for k, t in enumerate(VFR_MS[:8]))
    assert abs(shown[-1] - (VFR_MS[7] + Fraction(2, 3) * (VFR_MS[8] - VFR_MS[7])) * MS) <= MS


@pytest.mark.parametrize("extra, message", [
    (["--fps", "60"], "--vfr follow places output frames between the source's timestamps, so there is no "
                      "constant rate for --fps 60/1 to give; use --factor"),
    (["-o", "-"], "--vfr follow writes timestamps, which y4m cannot hold; name an output file"),
])
def test_vfr_follow_refuses_what_it_cannot_do(tmp_path, capsys, extra, message):
    src = timed_clip(tmp_path / "vfr.mkv", VFR_MS)
    argv = ["interpolate", str(src), "--vfr", "follow", *extra]
    if "-o" not in extra:
        argv += ["-o", str(tmp_path / "o.mkv")]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip() == f"vsugsp: error: {message}"


def test_render_warns_of_a_variable_rate_too(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray", reason="the distributed extra (ray) is not installed")
    import vsugsp.render.run

    def stop(*a, **k):
        raise cli.CliError("stopped after the checks")

    monkeypatch.setattr(vsugsp.render.run, "render", stop)
    src = timed_clip(tmp_path / "vfr.mkv", VFR_MS)
    assert cli.main(["render", str(src), "-o", str(tmp_path / "o.mkv"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "has a variable frame rate" in err and "moves them by up to 42.0 ms (frame 9)" in err, err
    assert "'vsugsp interpolate --vfr follow' keeps the source's timing" in err
