"""Masked 3×3 convolution (vsugsp cuda backend) against cuDNN's dense convolution.

For each pruned layer shape of the UGSP decoders on a 1920×1080 frame (the 3×3
convs of the 1/8, 1/4 and 1/2 blocks), each dtype and each mask density, it
times on the GPU (torch.cuda.Event, after warm-up, median of repeats):

- ``dense``: cuDNN ``conv2d + bias`` then ``prelu`` on channels-last input
  (``torch.backends.cudnn.benchmark = True``; fp32 uses TF32 as torch does by
  default unless ``--no-tf32``), the work the dense network runs;
- ``conv``: :func:`vsugsp.sparse.cuda.conv3x3_compact` with a prebuilt plan,
  writing into a preallocated dense output: the per-layer cost when the
  convolutions of a level share one plan;
- ``e2e``: ``vsugsp.sparse.masked_conv3x3(..., backend="cuda")`` (plan with its host
  sync, zero-filled output, convolution): the cost of one isolated call;
- ``plan``: :func:`vsugsp.sparse.cuda.build_plan` alone.

and reports the speed-up ``dense / conv``, the ideal speed-up ``1 / density``
and their ratio (efficiency; 1.0 = the saving in FLOPs fully turned into time).
Masks are smooth blobs (like the network's masks) at exactly the density asked,
or ``--mask random`` for scattered pixels (worst case for locality).

One command on a GPU machine, from the repository root (needs torch with CUDA
and cupy-cuda13x; prints the table, writes the JSON):

    PYTHONPATH=. python3 benchmarks/bench_kernels.py --out benchmarks/results/kernels.json

Quicker: ``--iters 20 --repeats 2 --dtypes fp16``.  Also checks each masked
output against the dense one (max abs difference, in the JSON).
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
DTYPES = {"fp16": torch.float16, "fp32": torch.float32}


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


def time_ms(fn: Callable[[], object], warmup: int, iters: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean GPU time of ``iters`` back-to-back calls, in ms."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    runs = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        runs.append(start.elapsed_time(end) / iters)
    return statistics.median(runs)


def bench_layer(name, h, w, c, co, dtype, densities, args, gen, dev) -> list[dict]:
    x = torch.randn(args.batch, c, h, w, generator=gen).to(dev, dtype).contiguous(memory_format=torch.channels_last)
    weight = (torch.randn(co, c, 3, 3, generator=gen) / math.sqrt(9 * c)).to(dev, dtype)
    bias = torch.randn(co, generator=gen).to(dev, dtype)
    slope = (torch.rand(co, generator=gen) * 0.3).to(dev, dtype)
    wp = sc.pack_weight(weight, dtype)

    def dense():
        return F.prelu(F.conv2d(x, weight, bias, padding=1), slope)

    t_dense = time_ms(dense, args.warmup, args.iters, args.repeats)
    ref = dense().float()
    make_mask = blob_mask if args.mask == "blobs" else random_mask
    rows = []
    for d in densities:
        mask = make_mask(args.batch, h, w, d, gen, dev)
        plan = sc.build_plan(mask)
        out = torch.empty(args.batch, co, h, w, dtype=dtype, device=dev, memory_format=torch.channels_last).zero_()
        t_conv = time_ms(
            lambda: sc.conv3x3_compact(x, plan, wp, bias, slope, dense_out=out), args.warmup, args.iters, args.repeats
        )
        t_e2e = time_ms(
            lambda: masked_conv3x3(x, weight, bias, mask, prelu=slope, backend="cuda"), args.warmup, args.iters, args.repeats
        )
        t_plan = time_ms(lambda: sc.build_plan(mask), args.warmup, args.iters, args.repeats)
        got = masked_conv3x3(x, weight, bias, mask, prelu=slope, backend="cuda").float()
        err = (got - ref * mask).abs().max().item()
        ideal = 1.0 / d
        speedup = t_dense / t_conv
        rows.append(
            {
                "layer": name,
                "height": h,
                "width": w,
                "c_in": c,
                "c_out": co,
                "batch": args.batch,
                "dtype": str(dtype).removeprefix("torch."),
                "mask": args.mask,
                "density": d,
                "active_pixels": plan.count,
                "dense_ms": t_dense,
                "conv_ms": t_conv,
                "e2e_ms": t_e2e,
                "plan_ms": t_plan,
                "speedup": speedup,
                "e2e_speedup": t_dense / t_e2e,
                "ideal_speedup": ideal,
                "efficiency": speedup / ideal,
                "dense_tflops": 2 * args.batch * h * w * c * co * 9 / t_dense / 1e9,
                "conv_tflops": 2 * plan.count * c * co * 9 / t_conv / 1e9,
                "max_abs_err": err,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--dtypes", default="fp16,fp32", help="comma list of fp16, fp32")
    p.add_argument("--densities", default="1.0,0.75,0.5,0.25", help="comma list in (0, 1]")
    p.add_argument("--layers", default="", help="only layers whose name contains this text")
    p.add_argument("--mask", choices=("blobs", "random"), default="blobs")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-tf32", action="store_true", help="dense fp32 without TF32 (exact fp32, like our kernel)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    if not sc.is_available():
        print("bench_kernels: needs a CUDA GPU and CuPy (pip install 'vsugsp[cuda]')", file=sys.stderr)
        return 2
    dtypes = [DTYPES[t.strip()] for t in args.dtypes.split(",") if t.strip()]
    densities = [float(v) for v in args.densities.split(",") if v.strip()]
    if any(not 0.0 < d <= 1.0 for d in densities):
        print(f"bench_kernels: densities must be in (0, 1], got {densities}", file=sys.stderr)
        return 2
    layers = [layer for layer in LAYERS if args.layers in layer[0]]
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = not args.no_tf32
    dev = torch.device("cuda")
    gen = torch.Generator().manual_seed(args.seed)

    header = (
        f"{'layer':<10} {'H×W':>9} {'C→Co':>9} {'dtype':>7} {'dens':>5} {'dense ms':>9} {'conv ms':>8} "
        f"{'e2e ms':>8} {'plan ms':>8} {'speedup':>8} {'ideal':>6} {'eff':>5} {'maxerr':>8}"
    )
    print(f"# {torch.cuda.get_device_name(dev)}, torch {torch.__version__}, cudnn {torch.backends.cudnn.version()}")
    print(header)
    results = []
    started = time.time()
    with torch.no_grad():
        for name, h, w, c, co in layers:
            for dtype in dtypes:
                for r in bench_layer(name, h, w, c, co, dtype, densities, args, gen, dev):
                    results.append(r)
                    print(
                        f"{r['layer']:<10} {h:>4}×{w:<4} {c:>4}→{co:<4} {r['dtype']:>7} {r['density']:>5.2f} "
                        f"{r['dense_ms']:>9.3f} {r['conv_ms']:>8.3f} {r['e2e_ms']:>8.3f} {r['plan_ms']:>8.3f} "
                        f"{r['speedup']:>8.2f} {r['ideal_speedup']:>6.2f} {r['efficiency']:>5.2f} {r['max_abs_err']:>8.1e}",
                        flush=True,
                    )
    if args.out:
        import cupy

        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "device": torch.cuda.get_device_name(dev),
            "torch": torch.__version__,
            "cupy": cupy.__version__,
            "cudnn": torch.backends.cudnn.version(),
            "python": platform.python_version(),
            "tf32_dense_fp32": not args.no_tf32,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "seconds": round(time.time() - started, 1),
        }
        args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
        print(f"# wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
