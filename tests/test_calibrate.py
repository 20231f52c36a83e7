"""mode: auto: the decision over measured timings, the measurement, and the caches (memory, disk)."""
from __future__ import annotations

import json
import random

import pytest
import torch

from vsugsp import calibrate
from vsugsp.calibrate import Calibrator, cache_key, choose_mode, measure


def test_choose_mode_picks_dense_when_pruned_is_slower():
    assert choose_mode({"pruned": [9.4, 9.6, 9.3], "dense": [5.0, 5.1, 4.9]}) == "dense"
    assert choose_mode({"pruned": [3.0, 3.1, 9.0], "dense": [5.0, 5.1, 4.9]}) == "pruned"  # median, not mean
    assert choose_mode({"pruned": [5.0], "dense": [5.0]}) == "dense"  # a tie costs nothing: the unpruned frame
    assert choose_mode({"pruned": [], "dense": [7.0]}) == "dense"  # pruned failed
    assert choose_mode({"pruned": [7.0]}) == "pruned"
    with pytest.raises(ValueError, match="vsugsp: mode auto"):
        choose_mode({"pruned": [], "dense": []})


def test_choose_mode_never_picks_the_slower():
    rng = random.Random(7)
    for _ in range(2000):
        t = {m: [rng.uniform(1, 50) for _ in range(rng.randint(1, 5))] for m in ("pruned", "dense")}
        med = {m: sorted(v)[len(v) // 2] if len(v) % 2 else sum(sorted(v)[len(v) // 2 - 1:len(v) // 2 + 1]) / 2
               for m, v in t.items()}
        chosen = choose_mode(t)
        other = "dense" if chosen == "pruned" else "pruned"
        assert med[chosen] <= med[other]


def test_measure_alternates_and_times_each_mode():
    now = [0.0]
    calls: list[str] = []
    cost = {"pruned": 0.009, "dense": 0.005}  # seconds per pass

    def run(mode: str) -> None:
        calls.append(mode)
        now[0] += cost[mode]

    times = measure(run, warmup=1, repeats=3, clock=lambda: now[0])
    assert times["pruned"] == pytest.approx([9.0] * 3) and times["dense"] == pytest.approx([5.0] * 3)
    assert calls == ["pruned", "dense"] + ["pruned", "dense"] * 3  # warm-up each, then alternating
    assert choose_mode(times) == "dense"


def test_measure_leaves_out_a_failing_mode():
    def run(mode: str) -> None:
        if mode == "pruned":
            raise RuntimeError("kernel launch failed")

    times = measure(run, repeats=2)
    assert times["pruned"] == [] and len(times["dense"]) == 2 and choose_mode(times) == "dense"


def test_cache_key_covers_what_changes_the_work():
    base = dict(device_name="NVIDIA H200", torch_version="2.11", batch=1, width=1920, height=1080,
                settings={"threshold": 0.5, "scale": 1.0, "description": "x", "mode": "auto"}, weights="ab12")
    k = cache_key(**base)
    for change in ({"device_name": "NVIDIA H100"}, {"torch_version": "2.12"}, {"width": 1280}, {"batch": 2},
                   {"weights": "cd34"}, {"settings": {**base["settings"], "threshold": 0.7}}):
        assert cache_key(**{**base, **change}) != k, change
    assert cache_key(**{**base, "settings": {**base["settings"], "description": "other words"}}) == k


# ------------------------------------------------------------------ through the interpolator


@pytest.fixture()
def calibrated_cpu(monkeypatch, tmp_path):
    """The CPU treated as a measured device, a fresh disk cache, no decisions in memory."""
    monkeypatch.setattr(calibrate, "CALIBRATED", ("cpu", "cuda"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(calibrate, "_memory", {})
    monkeypatch.setattr(calibrate, "_order", [])
    return tmp_path


def _net():
    from vsugsp.model import ModelConfig, UGSPNet

    torch.manual_seed(0)
    return UGSPNet(ModelConfig(width="small"))


def _settings(**kw):
    from vsugsp.preset import load_preset

    return load_preset("balanced", device="cpu", flow_prior="none", refine=["flow", "fusion", "rgb"],
                       precision="fp32", **kw)


def _pair():
    g = torch.Generator().manual_seed(3)
    return torch.rand(1, 3, 64, 96, generator=g), torch.rand(1, 3, 64, 96, generator=g)


def test_auto_on_the_cpu_is_pruned_with_the_same_frames():
    from vsugsp.interpolator import build_interpolator

    net = _net()
    auto = build_interpolator(_settings(), net)
    assert auto.settings.mode == "pruned" and auto.calibrator is None  # the CPU is not measured
    pruned = build_interpolator(_settings(mode="pruned"), net)
    a, b = _pair()
    assert torch.equal(auto(a, b, 0.5)[0], pruned(a, b, 0.5)[0])


def test_auto_runs_dense_when_pruned_measures_slower(calibrated_cpu, monkeypatch):
    from vsugsp.interpolator import build_interpolator

    injected = {"pruned": [9.4, 9.5, 9.3], "dense": [5.0, 5.1, 5.2]}
    measured: list[int] = []

    def fake_measure(run, **kw):
        measured.append(1)
        return {m: list(v) for m, v in injected.items()}

    monkeypatch.setattr(calibrate, "measure", fake_measure)
    net = _net()
    a, b = _pair()
    interp = build_interpolator(_settings(), net)
    assert interp.calibrator is not None and interp.mode_for(a) == "pruned"  # not decided yet
    got = interp(a, b, 0.5)
    dense = build_interpolator(_settings(mode="dense"), net)(a, b, 0.5)
    assert torch.equal(got[0], dense[0]) and got[1] == got[2]  # dense: executed MACs = dense MACs
    assert interp.mode_for(a) == "dense" and len(measured) == 1
    interp(a, b, 0.5)
    assert len(measured) == 1  # decided once per size
    [d] = calibrate.decisions()
    assert (d.mode, d.pruned_ms, d.dense_ms, d.source, d.size) == ("dense", 9.4, 5.1, "measured", "96x64")
    assert "dense at 96x64" in calibrate.describe(d)

    # a new process (empty memory) reads the disk cache instead of measuring again
    monkeypatch.setattr(calibrate, "_memory", {})
    monkeypatch.setattr(calibrate, "_order", [])
    again = build_interpolator(_settings(), net)
    assert again.mode_for(a, lambda m: pytest.fail("measured again")) == "dense"
    assert calibrate.decisions()[0].source == "disk cache"
    on_disk = json.loads(calibrate.cache_path().read_text())
    assert calibrate.cache_path().is_relative_to(calibrated_cpu) and len(on_disk["entries"]) == 1
    assert [x.mode for x in calibrate.cached_decisions()] == ["dense"]

    # other settings are another key: measured afresh, here pruned faster
    injected.update(pruned=[2.0, 2.0, 2.0])
    other = build_interpolator(_settings(threshold=0.7), net)
    assert torch.equal(other(a, b, 0.5)[0], build_interpolator(_settings(mode="pruned", threshold=0.7), net)(a, b, 0.5)[0])
    assert other.mode_for(a) == "pruned" and len(measured) == 2


def test_auto_measures_for_real(calibrated_cpu):
    from vsugsp.interpolator import build_interpolator

    net = _net()
    a, b = _pair()
    interp = build_interpolator(_settings(), net)
    out = interp(a, b, 0.5)
    [d] = calibrate.decisions()
    assert d.source == "measured" and d.pruned_ms > 0 and d.dense_ms > 0
    assert d.mode == ("pruned" if d.pruned_ms < d.dense_ms else "dense")
    ref = build_interpolator(_settings(mode=d.mode), net)(a, b, 0.5)
    assert torch.equal(out[0], ref[0])


def test_unwritable_cache_still_decides(calibrated_cpu, monkeypatch):
    blocker = calibrated_cpu / "vsugsp"
    blocker.write_text("a file where the cache folder should be")
    c = Calibrator(torch.device("cpu"), _net(), _settings().to_dict())
    monkeypatch.setattr(calibrate, "measure", lambda run, **kw: {"pruned": [1.0], "dense": [2.0]})
    assert c.mode(1, 32, 32, lambda m: None) == "pruned"


def test_info_reports_the_cached_decisions(calibrated_cpu, monkeypatch):
    from vsugsp import info

    assert info.calibration() == []
    assert "none yet" in info.format_report({"calibration": []})
    monkeypatch.setattr(calibrate, "measure", lambda run, **kw: {"pruned": [9.4], "dense": [5.0]})
    Calibrator(torch.device("cpu"), _net(), _settings().to_dict()).mode(1, 1920, 1080, lambda m: None)
    [line] = info.calibration()
    assert line == "mode auto: dense at 1920x1080 on cpu (pruned 9.4 ms, dense 5.0 ms; measured)"
    assert line in info.format_report(info.gather(compile_check=False))


def test_bench_speed_marks_what_auto_runs():
    from vsugsp.bench.speed import _mark_preset_mode

    def rows():
        return [{"mode": "dense", "path": "forward", "status": "ok", "ms": 5.0},
                {"mode": "pruned", "path": "forward", "status": "ok", "ms": 9.4}]

    gpu = rows()
    _mark_preset_mode(gpu, "auto", torch.device("cuda"))
    assert [(r["mode"], r["preset_mode"], r["auto_pick"]) for r in gpu] == [("dense", True, "dense"),
                                                                           ("pruned", False, "dense")]
    cpu = rows()
    _mark_preset_mode(cpu, "auto", torch.device("cpu"))  # not measured there: pruned
    assert [r["preset_mode"] for r in cpu] == [False, True]


def test_bench_speed_times_auto_as_the_filter_runs_it():
    from vsugsp.bench.speed import run_speed

    data = run_speed(devices=["cpu"], sizes=["64x48"], presets=["balanced:refine=[fusion,rgb]"],
                     model="random:small", modes=["auto", "dense"], warmup=0, repeats=1, input_kind="random")
    rows = {r["mode"]: r for r in data["results"]}
    assert rows["auto"]["status"] == "ok" and rows["auto"]["auto_mode"] == "pruned"  # a CPU runs pruned
    assert rows["auto"]["preset_mode"] and not rows["dense"]["preset_mode"]
    assert rows["auto"]["backend"] == "tiles" and rows["auto"]["macs"] < rows["dense"]["macs"]
    with pytest.raises(ValueError, match="'pruned', 'dense' or 'auto'"):
        run_speed(devices=["cpu"], sizes=["64x48"], presets=["balanced"], modes=["sparse"])
