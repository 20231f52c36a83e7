"""scripts/gpu_check.sh: the GPU run's steps, its summary, and the script itself end to end on the CPU at tiny sizes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from script_modules import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def _driver():
    return load_script("scripts/gpu_check.py")


def test_the_gpu_run_has_every_step_within_eight_minutes(tmp_path):
    gc = _driver()
    steps = gc.plan_steps("cuda", tiny=False, out=tmp_path, py="python3")
    cmd = {s.name: " ".join(s.argv) for s in steps}
    assert "-m pytest -m gpu" in cmd["pytest-gpu"]
    assert "bench_kernels.py --device cuda" in cmd["kernels"]
    for size in ("1080p", "720p"):
        assert f"--sizes {size}" in cmd[f"speed-{size}"] and "--e2e" in cmd[f"speed-{size}"]
        assert "realtime,fast,balanced,quality" in cmd[f"speed-{size}"]
        assert "--modes pruned,dense,auto" in cmd[f"speed-{size}"]  # auto: what the filter runs
    assert "bench mpv --cases 1080p:cuda" in cmd["mpv"]
    q = cmd["quality"]
    assert "--device cuda" in q and "--peers dis" in q and "realtime,fast,balanced,quality" in q
    # item 4: the network (not the prior alone every preset runs) in fp16 beside fp32 ...
    assert "quality:refine=[fusion,rgb]," in q and "quality:refine=[fusion,rgb]+precision=fp16" in q
    assert "quality:refine=[fusion,rgb]" in cmd["quality-fp32-exact"]
    assert dict(next(s for s in steps if s.name == "quality-fp32-exact").env) == {"NVIDIA_TF32_OVERRIDE": "0"}  # ... and exact fp32
    assert "rife_anchor.py --device cuda" in cmd["rife"]  # 1920x1088 fp16 by default
    assert sum(s.timeout_s for s in steps) <= 480  # eight minutes even if every step runs to its limit
    tiny = gc.plan_steps("cpu", tiny=True, out=tmp_path, py="python3")
    assert [s.name for s in tiny] == ["pytest-gpu", "kernels", "speed", "mpv", "quality", "rife"]
    assert all("cuda" not in " ".join(s.argv) for s in tiny)


def test_a_step_past_its_limit_is_ended_and_the_budget_skips_the_rest(tmp_path):
    gc = _driver()
    slow = gc.Step("sleepy", (sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"), 60)
    rec = gc.run_step(slow, budget_left=6, cwd=ROOT, out=tmp_path)
    assert rec["status"] == "timeout" and rec["seconds"] < 30 and "started" in rec["log_tail"]
    assert gc.run_step(slow, budget_left=2, cwd=ROOT, out=tmp_path)["status"] == "skipped"
    bad = gc.Step("bad", (sys.executable, "-c", "raise SystemExit(3)"), 30)
    assert gc.run_step(bad, budget_left=30, cwd=ROOT, out=tmp_path)["status"] == "failed"


def test_headlines_and_summary():
    gc = _driver()
    assert gc.headline("pytest-gpu", None, "== 69 passed, 2 skipped in 50.1s ==") == "69 passed, 2 skipped"
    speed = {"kind": "speed", "results": [
        {"status": "ok", "path": "forward", "preset": "balanced", "mode": "dense", "ms": 10.7},
        {"status": "ok", "path": "vapoursynth 2x", "preset": "balanced", "fps": 9.5},
        {"status": "error", "path": "forward", "preset": "quality", "mode": "pruned"}]}
    assert gc.headline("speed-1080p", speed, "") == "balanced dense 10.7 ms; balanced e2e 9.5 fps"
    assert gc.headline("rife", {"width": 1920, "height": 1088, "precision": "fp16", "ms": 10.8, "fps": 92.6}, "") \
        == "1920x1088 fp16: 10.80 ms = 92.6 fps"
    assert gc.headline("mpv", {"results": [{"size": "1080p", "device": "cuda", "sustained_fps": 18.5,
                                            "output_fps": 59.94, "keeps_up": False}]}, "") \
        == "1080p cuda: sustained 18.5 fps for 59.94, keeps up: no"
    assert gc.headline("quality", None, "") == "no results"
    assert gc.headline("mpv", {"results": []}, "").startswith("unreadable results")
    assert gc.slug("NVIDIA H200") == "nvidia-h200"
    report = {"device": "cuda", "device_model": "NVIDIA H200", "date": "2026-12-07", "tiny": False,
              "budget_s": 470, "seconds": 400, "steps": [
                  {"name": "rife", "status": "ok", "seconds": 9.0, "headline": "10.8 ms"},
                  {"name": "mpv", "status": "timeout", "seconds": 45.0, "headline": "no results", "log_tail": "boom"}]}
    md = gc.to_markdown(report)
    assert "| rife | ok | 9.0 | 10.8 ms |" in md and "## mpv: timeout" in md and "boom" in md


def _run(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, dict]:
    full_env = {**os.environ, "GPU_CHECK_DEVICE": "cpu", "GPU_CHECK_TINY": "1", "GPU_CHECK_OUT": str(tmp_path),
                "PYTHON": sys.executable, "GPU_CHECK_WHEELS": str(tmp_path / "no-wheels"), **env}
    proc = subprocess.run(["bash", str(SCRIPT)], env=full_env, capture_output=True, text=True, timeout=600)
    [js] = tmp_path.glob("gpu-cpu-*.json")
    assert js.with_suffix(".md").is_file()
    return proc, json.loads(js.read_text())


def test_the_script_runs_a_step_on_the_cpu(tmp_path):
    proc, report = _run(tmp_path, GPU_CHECK_ONLY="kernels")
    assert proc.returncode == 0, proc.stderr[-2000:]
    [step] = report["steps"]
    assert step["status"] == "ok" and step["data"]["meta"]["backends"] == ["dense", "reference", "tiles"]
    assert report["device_model"] == "cpu" and report["tiny"] is True
    assert "| kernels | ok |" in proc.stdout


def test_bad_settings_exit_2(tmp_path):
    env = {**os.environ, "GPU_CHECK_DEVICE": "tpu", "PYTHON": sys.executable, "GPU_CHECK_OUT": str(tmp_path)}
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "GPU_CHECK_DEVICE='tpu'" in proc.stderr


@pytest.mark.slow
def test_the_whole_script_end_to_end_on_the_cpu(tmp_path):
    """Every step at tiny sizes on the CPU (about 3 minutes on 2 shared cores: marked slow)."""
    proc, report = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert [s["name"] for s in report["steps"]] == ["pytest-gpu", "kernels", "speed", "mpv", "quality", "rife"]
    assert all(s["status"] == "ok" for s in report["steps"]), [(s["name"], s["status"]) for s in report["steps"]]
    by = {s["name"]: s for s in report["steps"]}
    assert {r["preset"] for r in by["speed"]["data"]["results"]} == {"realtime", "fast", "balanced", "quality"}
    assert any(r["path"] == "vapoursynth 2x" and r["status"] == "ok" for r in by["speed"]["data"]["results"])
    assert {r["method"] for r in by["quality"]["data"]["results"] if r["status"] == "ok"} >= {
        "dis", "ugsp:realtime", "ugsp:fast", "ugsp:balanced", "ugsp:quality", "ugsp:quality:precision=fp16"}
    assert by["mpv"]["data"]["results"][0]["sustained_fps"] > 0 and by["rife"]["data"]["fps"] > 0
