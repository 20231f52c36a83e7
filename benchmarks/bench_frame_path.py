"""Time per output frame outside the network: the filter with a network that returns a blend.

The frame path (source planes → RGB tensors → network → the input's format) is
run twice, alternately in one process, so both see the same machine load:

- ``rgbs``: the path before issue 22 (VapourSynth's resize to RGBS, NumPy
  arrays, resize back: :func:`vsugsp.colors.to_rgb` / :func:`~vsugsp.colors.from_rgb`);
- ``device``: the source planes go to the device in their own format and are
  converted there (:mod:`vsugsp.device_frames`), one download per output frame.

The network is replaced by a blend ``(1 − t)·I0 + t·I1`` (no prior), so what
is timed is everything around it: VapourSynth requests, Python, allocations,
format conversions.  Output: JSON and Markdown (``--out`` stem)::

    python benchmarks/bench_frame_path.py --size 1920x1080 --frames 24 --rounds 3 \
        --out benchmarks/results/frame-path-cpu-2026-12-07
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

PATHS = ("rgbs", "device")


@dataclass
class BlendInterpolator:
    """What :class:`vsugsp.engine.Engine` needs of an Interpolator, with a blend for the network."""

    device: Any
    settings: Any
    flow_prior: str = "none"
    net: Any = field(default=None)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        import torch

        from vsugsp.allocator import retain_freed_memory

        retain_freed_memory()  # as the real network's loader does on a CPU
        self.net = torch.nn.Linear(1, 1)  # only its dtype is read

    @property
    def dtype(self):
        import torch

        return torch.float32

    def encode(self, img):
        return None

    def prior(self, a, b):
        return None

    def __call__(self, img0, img1, t, **kw):
        start = time.perf_counter()
        t = t.view(-1, 1, 1, 1)
        out = img0 * (1 - t) + img1 * t
        self.seconds += time.perf_counter() - start  # the "network": subtracted from the totals
        return out, 0, 0


def source(width: int, height: int, frames: int, fmt: Any):
    """A smooth pattern moving 8 px a frame (no cut, no identical neighbours), frames precomputed."""
    import vapoursynth as vs

    core = vs.core
    vf = core.get_video_format(fmt)
    rng = np.random.default_rng(0)
    base = core.std.BlankClip(width=width, height=height, format=fmt, length=frames, fpsnum=24000, fpsden=1001)
    peak = (1 << vf.bits_per_sample) - 1
    planes = []
    for p in range(vf.num_planes):
        h = height >> (vf.subsampling_h if p else 0)
        w = width >> (vf.subsampling_w if p else 0)
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        k = rng.uniform(0.01, 0.05, 2)
        planes.append(0.5 + 0.4 * np.sin(k[0] * x) * np.cos(k[1] * y))
    cache: dict[int, list[np.ndarray]] = {}

    def fill(n: int, f):
        out = f.copy()
        if n not in cache:
            cache[n] = [np.round(np.roll(pl, 8 * n >> (vf.subsampling_w if p else 0), axis=1) * peak).astype(
                np.asarray(out[p]).dtype) for p, pl in enumerate(planes)]
        for p in range(vf.num_planes):
            np.copyto(np.asarray(out[p]), cache[n][p])
        return out

    return core.std.ModifyFrame(base, base, fill)


def run_once(src, path: str, preset: str = "realtime") -> tuple[float, float, int]:
    """Seconds to render every output frame of a 2× run of ``src``, the blend's share of them, the frame count."""
    import torch

    from vsugsp import filter as vf
    from vsugsp.engine import Engine
    from vsugsp.preset import load_preset
    from vsugsp.timing import RateMap

    cfg = load_preset(preset, device="cpu", flow_prior="none")
    blend = BlendInterpolator(torch.device("cpu"), cfg)
    engine = Engine(blend)
    rmap = RateMap(src.num_frames, Fraction(2))
    out = vf._build_graph(src, rmap, Fraction(24000, 1001), cfg, engine, frame_path=path)
    start = time.perf_counter()
    for _ in out.frames():
        pass
    return time.perf_counter() - start, blend.seconds, out.num_frames


def main() -> int:
    import vapoursynth as vs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=24, help="source frames (output: twice as many)")
    ap.add_argument("--rounds", type=int, default=3, help="alternations of the paths")
    ap.add_argument("--format", default="YUV420P8")
    ap.add_argument("--threads", type=int, default=2, help="VapourSynth threads")
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--out", help="stem of the .json and .md results")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    vs.core.num_threads = args.threads
    fmt = getattr(vs, args.format)
    paths = args.paths.split(",")
    src = source(w, h, args.frames, fmt)
    run_once(src[:3], paths[0])  # warm-up (imports, first allocations)
    times: dict[str, list[float]] = {p: [] for p in paths}
    totals: dict[str, list[float]] = {p: [] for p in paths}
    n_out = 0
    for r in range(args.rounds):
        for p in (paths if r % 2 == 0 else paths[::-1]):
            sec, net, n_out = run_once(src, p)
            times[p].append((sec - net) / n_out * 1000)
            totals[p].append(sec / n_out * 1000)
            print(f"round {r} {p}: {totals[p][-1]:.2f} ms per output frame "
                  f"({times[p][-1]:.2f} minus the blend's time)", flush=True)
    res = {
        "what": "ms per output frame of a 2x run with a blend for the network (no prior): the filter's own "
                "cost; 'minus_blend' subtracts the blend's time (an underestimate where other threads "
                "convert frames while the blend runs, as VapourSynth's resize does on the rgbs path)",
        "size": f"{w}x{h}", "format": args.format, "source_frames": args.frames, "output_frames": n_out,
        "vs_threads": args.threads, "load_average_at_start": [round(v, 1) for v in os.getloadavg()],
        "machine": platform.processor() or platform.machine(),
        "ms_per_frame": {p: {"runs": [round(v, 2) for v in t], "median": round(statistics.median(t), 2)}
                         for p, t in totals.items()},
        "ms_per_frame_minus_blend": {p: {"runs": [round(v, 2) for v in t], "median": round(statistics.median(t), 2)}
                                     for p, t in times.items()},
    }
    if len(paths) == 2:  # per round (the two paths ran back to back), then the median
        for key, src in (("", totals), ("_minus_blend", times)):
            res["ratios" + key] = [round(x / y, 2) for x, y in zip(src[paths[0]], src[paths[1]])]
            res["ratio" + key] = round(statistics.median(res["ratios" + key]), 2)
    print(json.dumps(res, indent=1))
    if args.out:
        stem = Path(args.out)
        stem.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
        lines = [f"# Frame path, {res['size']} {args.format}, {n_out} output frames (2x), blend network",
                 "", f"{args.rounds} rounds, paths alternating; VapourSynth threads {args.threads}; load average at "
                 f"the start (other jobs on the machine): {res['load_average_at_start']}.", "",
                 "| path | ms per output frame, blend network (runs) | median | minus the blend's time, median |",
                 "| --- | --- | ---: | ---: |"]
        for p, t in res["ms_per_frame"].items():
            lines.append(f"| {p} | {', '.join(str(v) for v in t['runs'])} | {t['median']} | "
                         f"{res['ms_per_frame_minus_blend'][p]['median']} |")
        if "ratio" in res:
            lines += ["", f"{paths[0]} / {paths[1]} per round: {res['ratios']}; median {res['ratio']}x "
                      f"(minus the blend: {res['ratios_minus_blend']}; median {res['ratio_minus_blend']}x).",
                      "", "Minus the blend undercounts the rgbs path: VapourSynth's resize converts frames "
                      "in other threads while the blend runs, and the blend's own time grows with it."]
        stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
