"""Every masked 3×3 convolution backend against the dense convolution, in one run, per layer shape.

For each pruned layer shape of the UGSP decoders on a 1920×1080 frame (the 3×3
convs of the 1/8, 1/4 and 1/2 blocks), each dtype and each mask density, it
times on the device (CUDA events on a GPU, the wall clock on a CPU; after
warm-up, median of repeats):

- ``dense``: ``conv2d + bias`` then ``prelu`` (cuDNN on channels-last input with
  ``cudnn.benchmark``; fp32 uses TF32 as torch does unless ``--no-tf32``; oneDNN
  on a CPU), the work the dense network runs: every row's base;
- ``reference``: the dense conv times the mask (what ``FastestBackend`` may keep);
- ``tiles``: :class:`vsugsp.sparse.backends.TileBackend`, the active 16×16 tiles
  gathered, one dense conv (cuDNN / oneDNN), scattered back (tiles forced: no
  dense fallback);
- ``cuda`` (GPU with CuPy only): :func:`vsugsp.sparse.cuda.conv3x3_compact` with a
  prebuilt plan into a preallocated output; ``cuda-e2e``: one isolated
  ``masked_conv3x3(..., backend="cuda")`` call (plan with its host sync included).

Per row: ``plan_ms`` (building the backend's plan, shared by a level's convs),
``conv_ms``, the speed-up ``dense / conv``, the ideal ``1 / density``, their
ratio (efficiency), and the max abs difference from the dense result × mask.
``best`` rows name the fastest backend per layer, dtype and density.
Masks are smooth blobs (like the network's masks) at exactly the density asked,
or ``--mask random`` for scattered pixels (worst case for locality).

From the repository root (a GPU: every backend; a CPU: those that run there):

    PYTHONPATH=. python3 benchmarks/bench_kernels.py --out benchmarks/results/kernels.json

Quicker: ``--iters 20 --repeats 2 --dtypes fp16``; ``--tiny`` shrinks every layer
8× per side and in channels (a smoke run; tests use it on the CPU).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

try:
    import vsugsp  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vsugsp.sparse import cuda as sc  # noqa: E402
from vsugsp.sparse import masked_conv3x3  # noqa: E402
from vsugsp.sparse.backends import TileBackend  # noqa: E402

#: (name, H, W, C_in, C_out) of the pruned 3×3 convs at 1920×1080 (IFRNet-base-like widths:
#: head conv of each block takes the concatenated inputs, body convs keep the width).
LAYERS = [
    ("1/8 head", 135, 240, 220, 216),
    ("1/8 body", 135, 240, 216, 216),
    ("1/4 head", 270, 480, 148, 144),
    ("1/4 body", 270, 480, 144, 144),
    ("1/2 head", 540, 960, 100, 96),
    ("1/2 body", 540, 960, 96, 96),
    ("1/2 small", 540, 960, 48, 48),
]
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
#: Backends timed against dense, in the order of the rows.
BACKENDS = ("reference", "tiles", "cuda", "cuda-e2e")


def tiny(layers: list[tuple[str, int, int, int, int]]) -> list[tuple[str, int, int, int, int]]:
    """Each layer 8× smaller per side and in channels (at least 4): a smoke run."""
    return [(n, max(8, h // 8), max(8, w // 8), max(4, c // 8), max(4, co // 8)) for n, h, w, c, co in layers]


def backends_for(dev: torch.device) -> list[str]:
    """What runs on ``dev``: the CuPy kernels on a GPU with CuPy only."""
    return list(BACKENDS) if dev.type == "cuda" and sc.is_available() else ["reference", "tiles"]


def blob_mask(b: int, h: int, w: int, density: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """B×1×H×W bool mask of smooth blobs with exactly round(density·H·W) active pixels per image."""
    low = torch.rand(b, 1, h // 16 + 2, w // 16 + 2, generator=gen).to(device)
    field = F.interpolate(low, size=(h, w), mode="bicubic", align_corners=False).flatten(1)
    return _top_fraction(field, density).view(b, 1, h, w)


def random_mask(b: int, h: int, w: int, density: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """B×1×H×W bool mask of independently scattered pixels at exactly the density asked."""
    field = torch.rand(b, h * w, generator=gen).to(device)
    return _top_fraction(field, density).view(b, 1, h, w)


def _top_fraction(field: torch.Tensor, density: float) -> torch.Tensor:
    n = field.shape[1]
    k = round(density * n)
    mask = torch.zeros_like(field, dtype=torch.bool)
    if k > 0:
        mask.scatter_(1, field.topk(k, dim=1).indices, True)
    return mask


def time_ms(fn: Callable[[], object], warmup: int, iters: int, repeats: int, dev: torch.device | None = None) -> float:
    """Median over ``repeats`` of the mean time of ``iters`` back-to-back calls, in ms
    (CUDA events on a GPU, the wall clock elsewhere)."""
    cuda = dev is None or dev.type == "cuda"
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    runs = []
    for _ in range(repeats):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                fn()
            end.record()
            end.synchronize()
            runs.append(start.elapsed_time(end) / iters)
        else:
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
            runs.append((time.perf_counter() - t0) * 1000.0 / iters)
    return statistics.median(runs)


def bench_layer(name, h, w, c, co, dtype, densities, args, gen, dev, backends=BACKENDS) -> list[dict]:
    """Rows (one per density and backend, plus a ``best`` row per density) for one layer shape."""
    x = torch.randn(args.batch, c, h, w, generator=gen).to(dev, dtype).contiguous(memory_format=torch.channels_last)
    weight = (torch.randn(co, c, 3, 3, generator=gen) / math.sqrt(9 * c)).to(dev, dtype)
    bias = torch.randn(co, generator=gen).to(dev, dtype)
    slope = (torch.rand(co, generator=gen) * 0.3).to(dev, dtype)
    tiles = TileBackend(dense_fallback=float("inf"))

    def dense():
        return F.prelu(F.conv2d(x, weight, bias, padding=1), slope)

    def timed(fn):
        return time_ms(fn, args.warmup, args.iters, args.repeats, dev)

    t_dense = timed(dense)
    ref = dense().float()
    make_mask = blob_mask if args.mask == "blobs" else random_mask
    rows = []
    for d in densities:
        mask = make_mask(args.batch, h, w, d, gen, dev)
        want = ref * mask
        found = []
        for be in backends:
            t_plan = 0.0
            if be == "reference":
                def run():
                    return masked_conv3x3(x, weight, bias, mask, prelu=slope, backend="reference")
                executed = mask.numel()
            elif be == "tiles":
                plan = tiles.plan(mask)
                t_plan = timed(lambda: tiles.plan(mask))
                executed = tiles.executed_pixels(plan)

                def run(plan=plan):
                    return tiles.conv(x, plan, weight, bias, slope)
            elif be == "cuda":
                wp = sc.pack_weight(weight, dtype)
                plan = sc.build_plan(mask)
                t_plan = timed(lambda: sc.build_plan(mask))
                out = torch.empty(args.batch, co, h, w, dtype=dtype, device=dev, memory_format=torch.channels_last).zero_()
                executed = plan.count

                def run(plan=plan, wp=wp, out=out):
                    sc.conv3x3_compact(x, plan, wp, bias, slope, dense_out=out)
                    return out
            elif be == "cuda-e2e":
                executed = int(mask.sum())

                def run():
                    return masked_conv3x3(x, weight, bias, mask, prelu=slope, backend="cuda")
            else:
                raise ValueError(f"bench_kernels: unknown backend {be!r}")
            t_conv = timed(run)
            err = (run().float() - want).abs().max().item()
            speedup = t_dense / t_conv
            found.append((be, t_conv))
            rows.append({
                "layer": name, "height": h, "width": w, "c_in": c, "c_out": co, "batch": args.batch,
                "dtype": str(dtype).removeprefix("torch."), "mask": args.mask, "density": d, "backend": be,
                "active_pixels": int(mask.sum()), "executed_pixels": executed,
                "dense_ms": t_dense, "plan_ms": t_plan, "conv_ms": t_conv, "speedup": speedup,
                "ideal_speedup": 1.0 / d, "efficiency": speedup * d,
                "dense_tflops": 2 * args.batch * h * w * c * co * 9 / t_dense / 1e9,
                "conv_tflops": 2 * executed * c * co * 9 / t_conv / 1e9,
                "max_abs_err": err,
            })
        best, t_best = min(found, key=lambda f: f[1])
        rows.append({"layer": name, "height": h, "width": w, "c_in": c, "c_out": co, "batch": args.batch,
                     "dtype": str(dtype).removeprefix("torch."), "mask": args.mask, "density": d,
                     "backend": "best", "best": best, "dense_ms": t_dense, "conv_ms": t_best,
                     "speedup": t_dense / t_best, "ideal_speedup": 1.0 / d, "efficiency": t_dense / t_best * d})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--device", choices=("cuda", "cpu"), help="default: cuda when present, else cpu")
    p.add_argument("--dtypes", help="comma list of fp16, bf16, fp32 (default: fp16,fp32 on cuda, fp32 on cpu)")
    p.add_argument("--densities", default="1.0,0.75,0.5,0.25", help="comma list in (0, 1]")
    p.add_argument("--layers", default="", help="only layers whose name contains this text")
    p.add_argument("--mask", choices=("blobs", "random"), default="blobs")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tiny", action="store_true", help="layers 8x smaller per side and in channels (smoke run)")
    p.add_argument("--no-tf32", action="store_true", help="dense fp32 without TF32 (exact fp32, like our kernel)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        print("bench_kernels: --device cuda needs a CUDA GPU (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    dev = torch.device(device)
    try:
        dtypes = [DTYPES[t.strip()] for t in (args.dtypes or ("fp16,fp32" if device == "cuda" else "fp32")).split(",")
                  if t.strip()]
    except KeyError as e:
        print(f"bench_kernels: --dtypes {args.dtypes!r}: unknown {e}; allowed: {', '.join(DTYPES)}", file=sys.stderr)
        return 2
    densities = [float(v) for v in args.densities.split(",") if v.strip()]
    if any(not 0.0 < d <= 1.0 for d in densities):
        print(f"bench_kernels: densities must be in (0, 1], got {densities}", file=sys.stderr)
        return 2
    layers = [layer for layer in (tiny(LAYERS) if args.tiny else LAYERS) if args.layers in layer[0]]
    backends = backends_for(dev)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = not args.no_tf32
    gen = torch.Generator().manual_seed(args.seed)

    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    print(f"# {name}, torch {torch.__version__}, backends: dense, {', '.join(backends)}"
          + (f", cudnn {torch.backends.cudnn.version()}" if dev.type == "cuda" else f", {torch.get_num_threads()} threads"))
    print(f"{'layer':<10} {'H×W':>9} {'C→Co':>9} {'dtype':>8} {'dens':>5} {'backend':>9} {'dense ms':>9} "
          f"{'plan ms':>8} {'conv ms':>8} {'speedup':>8} {'ideal':>6} {'eff':>5} {'maxerr':>8}")
    results = []
    started = time.time()
    with torch.no_grad():
        for lname, h, w, c, co in layers:
            for dtype in dtypes:
                for r in bench_layer(lname, h, w, c, co, dtype, densities, args, gen, dev, backends):
                    results.append(r)
                    be = r["backend"] if r["backend"] != "best" else f"={r['best']}"
                    print(f"{r['layer']:<10} {h:>4}×{w:<4} {c:>4}→{co:<4} {r['dtype']:>8} {r['density']:>5.2f} "
                          f"{be:>9} {r['dense_ms']:>9.3f} {r.get('plan_ms', 0.0):>8.3f} {r['conv_ms']:>8.3f} "
                          f"{r['speedup']:>8.2f} {r['ideal_speedup']:>6.2f} {r['efficiency']:>5.2f} "
                          f"{r.get('max_abs_err', 0.0):>8.1e}", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "device": name, "device_type": dev.type, "torch": torch.__version__, "backends": ["dense", *backends],
            "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None,
            "python": platform.python_version(), "tf32_dense_fp32": not args.no_tf32,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "seconds": round(time.time() - started, 1),
        }
        if "cuda" in backends:
            import cupy

            meta["cupy"] = cupy.__version__
        args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
        print(f"# wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
