"""The `vsugsp` command line: parsing, errors, extensions, info, interpolate end to end."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vsugsp import cli


# ------------------------------------------------------------ parsing

@pytest.mark.parametrize("text, expected", [("2", 2), ("3", 3), ("2.5", Fraction(5, 2)), ("5/2", Fraction(5, 2))])
def test_parse_factor(text, expected):
    value = cli.parse_factor(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text", ["1", "0.5", "-2", "two", "1/0"])
def test_parse_factor_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_factor(text)


@pytest.mark.parametrize("text, expected", [("60000/1001", (60000, 1001)), ("60", (60, 1)),
                                            ("59.94", (60000, 1001)), ("50/2", (25, 1))])
def test_parse_fps(text, expected):
    assert cli.parse_fps(text) == expected


@pytest.mark.parametrize("text", ["0", "-30", "fast", "1/0"])
def test_parse_fps_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_fps(text)


def test_parse_override_reads_yaml_values():
    assert cli.parse_override("threshold=0.7") == ("threshold", 0.7)
    assert cli.parse_override("scene_change=detect") == ("scene_change", "detect")
    assert cli.parse_override("scene_change=off") == ("scene_change", False)  # as in the YAML presets
    assert cli.parse_override("batch=4") == ("batch", 4)
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_override("novalue")


def test_interpolate_arguments():
    args = cli.build_parser().parse_args(
        ["interpolate", "in.mkv", "-o", "out.mp4", "--fps", "60000/1001", "--frames", "10",
         "--set", "threshold=0.6", "--device", "cpu"])
    assert (args.input, args.output, args.fps, args.frames, args.device) == (
        "in.mkv", "out.mp4", (60000, 1001), 10, "cpu")
    assert args.overrides == [("threshold", 0.6)] and args.factor is None and args.func is cli.cmd_interpolate


@pytest.mark.parametrize("argv", [
    ["interpolate", "a.mkv", "-o", "b.mp4", "--factor", "2", "--fps", "60"],  # exclusive
    ["interpolate", "a.mkv"],                                                 # no -o
    ["interpolate", "a.mkv", "-o", "b.mp4", "--frames", "0"],
    ["interpolate", "a.mkv", "-o", "b.mp4", "--crf", "99"],
    ["no-such-command"],
])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "interpolate" in capsys.readouterr().err


def test_summary_reports_the_pruned_share():
    import vapoursynth as vs

    src = vs.core.std.BlankClip(width=64, height=48, length=5, fpsnum=24, fpsden=1)
    out = vs.core.std.BlankClip(width=64, height=48, length=10, fpsnum=48, fpsden=1)
    work = {"frames_interpolated": 4, "frames_passed": 6, "executed_macs": 3 * 10**9, "dense_macs": 12 * 10**9}
    text = cli.format_summary(src, out, 2.0, work, output="o.mp4", codec="libx264")
    assert "5.00 output fps" in text
    assert "4 interpolated, 6 passed through" in text
    assert "3.0 of 12.0 GMAC executed, 75.0% pruned" in text
    nothing = cli.format_summary(src, out, 2.0, {"frames_passed": 10}, output="o.mp4", codec="libx264")
    assert "pruned" not in nothing and "0 interpolated, 10 passed through" in nothing
    assert "work:" not in nothing
    alone = cli.format_summary(src, out, 2.0, {"frames_interpolated": 4, "frames_passed": 6}, output="o.mp4",
                               codec="libx264")
    assert "the network did not run: every frame from the flow prior alone" in alone and "pruned" not in alone
    assert "prior:" not in text
    assert "prior:   dis-fast (auto on cuda)" in cli.format_summary(src, out, 2.0, work, output="o.mp4",
                                                                     codec="libx264", prior="dis-fast (auto on cuda)")


def test_the_summary_says_what_mode_auto_chose():
    import vapoursynth as vs
    from vsugsp.calibrate import Decision, describe

    src = vs.core.std.BlankClip(width=64, height=48, length=5, fpsnum=24, fpsden=1)
    out = vs.core.std.BlankClip(width=64, height=48, length=10, fpsnum=48, fpsden=1)
    d = Decision(mode="dense", pruned_ms=9.4, dense_ms=5.0, source="measured", device="NVIDIA H200", size="1920x1080")
    text = cli.format_summary(src, out, 2.0, {}, output="o.mp4", codec="libx264", modes=[describe(d)])
    assert "mode:    mode auto: dense at 1920x1080 on NVIDIA H200 (pruned 9.4 ms, dense 5.0 ms; measured)" in text
    assert "mode:" not in cli.format_summary(src, out, 2.0, {}, output="o.mp4", codec="libx264")


def test_the_summary_says_which_flow_prior_ran():
    from vsugsp.model import prior

    if not prior.available():
        assert cli.flow_prior_report({"device": "cpu"}) == "none (auto on cpu, OpenCV missing)"
        return
    assert cli.flow_prior_report({"device": "cpu"}) == "dis (auto on cpu)"  # balanced, the default
    assert cli.flow_prior_report({"preset": "fast", "device": "cpu"}) == "dis-fast (auto-fast on cpu)"
    assert cli.flow_prior_report({"device": "cpu", "flow_prior": "none"}) == "none"
    assert cli.flow_prior_report({"device": "cpu", "model": object()}) == "dis (auto on cpu)"  # an adapted net


# ------------------------------------------------------------ errors

def test_missing_input_is_a_user_error(tmp_path, capsys):
    code = cli.main(["interpolate", str(tmp_path / "nope.mkv"), "-o", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err
    assert code == 2
    assert "nope.mkv" in err and "Traceback" not in err
    assert err.startswith("vsugsp: error:")


def test_output_over_input_is_refused(tmp_path, capsys):
    src = tmp_path / "a.mp4"
    src.write_bytes(b"x")
    assert cli.main(["interpolate", str(src), "-o", str(src)]) == 2
    assert "overwrite" in capsys.readouterr().err


def test_y4m_is_not_written_to_a_terminal(tmp_path, capsys, monkeypatch):
    src = tmp_path / "a.mp4"
    src.write_bytes(b"x")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert cli.main(["interpolate", str(src), "-o", "-"]) == 2
    assert "terminal" in capsys.readouterr().err


def test_unreadable_video_is_a_user_error(tmp_path, capsys):
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(b"not a video at all" * 100)
    assert cli.main(["interpolate", str(junk), "-o", str(tmp_path / "o.mp4"), "--device", "cpu"]) == 2
    assert "Traceback" not in capsys.readouterr().err


# ------------------------------------------------------------ extension subcommands

@pytest.fixture
def extensions(tmp_path, monkeypatch):
    """Two fake extension modules: one that works, one whose import fails."""
    pkg = tmp_path / "fakeext"
    (pkg / "good").mkdir(parents=True)
    (pkg / "bad").mkdir()
    for d in (pkg, pkg / "good", pkg / "bad"):
        (d / "__init__.py").write_text("")
    (pkg / "good" / "cli.py").write_text(textwrap.dedent("""
        def add_parser(sub):
            p = sub.add_parser("good", help="a fake extension")
            p.add_argument("--n", type=int, default=1)
            p.add_argument("--crash", action="store_true")
            p.set_defaults(func=run)
            return p

        def run(args):
            if args.crash:
                raise RuntimeError("deep failure")
            print("good", args.n)
            return 0
    """))
    (pkg / "bad" / "cli.py").write_text("import a_module_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "EXTENSIONS", ("fakeext.good.cli", "fakeext.bad.cli", "fakeext.absent.cli"))


def test_extension_subcommand_is_registered(extensions, capsys):
    assert cli.main(["good", "--n", "3"]) == 0
    assert capsys.readouterr().out == "good 3\n"


def test_broken_extension_explains_itself(extensions, capsys):
    assert cli.main(["bad", "--anything"]) == 2
    err = capsys.readouterr().err
    assert "unavailable" in err and "a_module_that_is_not_installed" in err


def test_absent_extension_is_left_out(extensions, capsys):
    with pytest.raises(SystemExit):
        cli.main(["absent"])
    assert "invalid choice" in capsys.readouterr().err


def test_internal_error_has_no_traceback(extensions, capsys, monkeypatch):
    monkeypatch.delenv("VSUGSP_DEBUG", raising=False)
    assert cli.main(["good", "--crash"]) == 1
    err = capsys.readouterr().err
    assert "deep failure" in err and "Traceback" not in err and "VSUGSP_DEBUG" in err
    monkeypatch.setenv("VSUGSP_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli.main(["good", "--crash"])


# ------------------------------------------------------------ info, mpv-script

def test_info_json(capsys):
    assert cli.main(["info", "--json", "--no-compile"]) == 0
    report = json.loads(capsys.readouterr().out)
    versions = report["versions"]
    for name in ("vsugsp", "vapoursynth", "torch", "numpy", "cupy"):
        assert name in versions
    assert report["devices"][0]["device"] == "cpu"
    assert {"fast", "balanced", "quality", "realtime"} <= set(report["presets"])
    kernels = {k["kernel"]: k["status"] for k in report["kernels"]}
    on_disk = {p.name for p in (Path(__file__).resolve().parent.parent / "kernels").glob("*.cu")}
    assert set(kernels) == on_disk
    assert all(status == "not checked" for status in kernels.values())


def _cuda_ready() -> bool:
    try:
        from vsugsp.sparse import cuda

        return cuda.is_available()
    except Exception:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_ready(), reason="needs CUDA and CuPy")
def test_info_compiles_every_kernel_on_a_gpu(capsys):
    assert cli.main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kernels"] and all(k["status"] == "compiles" for k in report["kernels"]), report["kernels"]
    assert any(d["device"].startswith("cuda") for d in report["devices"])


def test_info_text(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "vapoursynth" in out and "kernels:" in out and "presets:" in out


# ------------------------------------------------------------ interpolate end to end

def write_clip(path: Path, frames: int = 6, size: tuple[int, int] = (64, 48), rate: int = 24) -> Path:
    """A small H.264 file whose content moves."""
    import av

    w, h = size
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=rate)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        yy, xx = np.mgrid[0:h, 0:w]
        for n in range(frames):
            rgb = np.stack([(xx * 4 + n * 6) % 256, (yy * 5) % 256, ((xx + yy + n * 3) * 2) % 256], -1)
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24").reformat(format="yuv420p")
            frame.pts = n
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import torch

    from vsugsp.model import ModelConfig, UGSPNet, save

    torch.manual_seed(0)
    return save(UGSPNet(ModelConfig(width="small", body=1, decoder_mult=1)),
                tmp_path_factory.mktemp("cli") / "tiny.pt")


def test_interpolate_writes_a_video(tmp_path, tiny_model, capsys):
    import av

    src = write_clip(tmp_path / "in.mp4", frames=6)
    out = tmp_path / "sub" / "out.mp4"
    code = cli.main(["interpolate", str(src), "-o", str(out), "--factor", "2", "--device", "cpu",
                     "--model", str(tiny_model), "--frames", "5", "--set", "refine=[fusion,rgb]"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert stream.average_rate == 48
        assert (stream.width, stream.height) == (64, 48)
    assert len(frames) == 10  # 5 source frames x 2
    summary = captured.out
    assert "input:   5 frames" in summary and "output:  10 frames" in summary
    assert "interpolated" in summary and "pruned" in summary


def test_interpolate_y4m_to_stdout(tmp_path, tiny_model):
    src = write_clip(tmp_path / "in.mp4", frames=4)
    proc = subprocess.run(
        [sys.executable, "-m", "vsugsp", "interpolate", str(src), "-o", "-", "--fps", "60",
         "--set", "device=cpu", "--model", str(tiny_model)],
        capture_output=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    header, _, body = proc.stdout.partition(b"\n")
    fields = header.split()
    assert fields[0] == b"YUV4MPEG2" and {b"W64", b"H48", b"F60:1", b"C420"} <= set(fields)
    # 4 source frames at 24 fps -> ceil(4 * 60/24) = 10 frames, each 64*48*1.5 bytes
    assert body.count(b"FRAME\n") == 10
    assert len(proc.stdout) == len(header) + 1 + 10 * (len(b"FRAME\n") + 64 * 48 * 3 // 2)
    assert b"output:" in proc.stderr  # the summary goes to stderr when stdout carries video


def test_bench_pruning_writes_consistent_results(tmp_path, capsys):
    """`vsugsp bench pruning` runs the forced-density sweep; MAC shares fall with density."""
    out = tmp_path / "pruning.json"
    assert cli.main(["bench", "pruning", "--size", "160x128", "--repeat", "1", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    shares = [r["mac_share"] for r in res["network"]]
    assert [r["density"] for r in res["network"]] == [1.0, 0.75, 0.5, 0.25]
    assert shares[0] == pytest.approx(1.0)
    assert shares[-1] < shares[1] <= 1.0
    assert all(r["seconds"] > 0 for r in res["network"])
    assert "| density | s/frame |" in capsys.readouterr().out


def test_bench_pruning_bad_size_is_a_user_error(capsys):
    assert cli.main(["bench", "pruning", "--size", "720p"]) == 2
    assert "--size must be WxH" in capsys.readouterr().err


def test_bench_mpv_is_registered(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "mpv", "--help"])
    assert exc.value.code == 0
    assert "--concurrent" in capsys.readouterr().out


def test_set_values_are_read_as_bounded_yaml():
    import argparse

    from bounded import alias_bomb  # the same bombs as the preset tests

    with pytest.raises(argparse.ArgumentTypeError) as err:  # refused from the events, no value built
        cli.parse_override("threshold=" + alias_bomb())
    assert "--set threshold" in str(err.value) and len(str(err.value)) < 300
    with pytest.raises(argparse.ArgumentTypeError, match="not valid YAML"):
        cli.parse_override("refine=[flow, fusion")
    assert cli.parse_override("scale=1e-9") == ("scale", 1e-9)  # YAML 1.2 numbers, as in preset files
