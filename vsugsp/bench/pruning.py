"""Does pruning save wall-clock time?  Whole network and per pruned layer, dense vs forced masks.

``python -m vsugsp.bench.pruning [--size 1280x720] [--width small] [--device cpu] [--json PATH]``

Masks are forced (random, tile-aligned, nested) at densities 1.0 / 0.75 / 0.5 / 0.25 so
the executed share is known; timings are the best of ``--repeat`` runs, measured in
one process, interleaved, against the dense network of the same size on the same
device.  Prints Markdown tables to stdout and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone

import torch
import torch.nn.functional as F

from ..model import ModelConfig, UGSPNet
from ..model.masks import forced_masks
from ..sparse.tiles import TILE, conv_tiles, scatter, tile_plan, to_padded

DENSITIES = (1.0, 0.75, 0.5, 0.25)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _best_pair(fa, fb, repeat: int, device: torch.device) -> tuple[float, float]:
    """Best times of two functions run alternately, so drift in machine load hits both alike."""
    fa(), fb()
    ta = tb = float("inf")
    for _ in range(repeat):
        for which, fn in ((0, fa), (1, fb)):
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            dt = time.perf_counter() - t
            if which:
                tb = min(tb, dt)
            else:
                ta = min(ta, dt)
    return ta, tb


def level_sizes(h: int, w: int) -> list[tuple[int, int]]:
    """Resolutions of the pruned levels (1/8, 1/4, 1/2) of an H×W frame padded to 16."""
    ph, pw = -(-h // 16) * 16, -(-w // 16) * 16
    return [(ph // 8, pw // 8), (ph // 4, pw // 4), (ph // 2, pw // 2)]


@torch.no_grad()
def run(size=(720, 1280), width="small", device="cpu", repeat=3, backend=None, seed=0) -> dict:
    from ..interpolator import build_interpolator
    from ..preset import load_preset

    torch.manual_seed(seed)
    # the filter's factory (backend choice and self-check included), untrained weights, no prior, fp32
    settings = load_preset("balanced", mode="pruned", device=device, backend=backend or "auto", precision="fp32",
                           flow_prior="none", refine=["flow", "fusion", "rgb"], max_density=None)
    pruned = build_interpolator(settings, UGSPNet(ModelConfig(width=width)))
    dense = build_interpolator(load_preset(settings, mode="dense"), pruned.net)
    net, dev, backend = pruned.net, pruned.device, pruned.backend.name
    h, w = size
    a, b = torch.rand(1, 3, h, w, device=dev), torch.rand(1, 3, h, w, device=dev)
    sizes = level_sizes(h, w)
    gen = torch.Generator().manual_seed(seed)
    masks = {d: forced_masks(sizes, 1, d, TILE, gen, dev) for d in DENSITIES}
    net_rows = []
    # round robin over dense and every density, best of `repeat` each, so load drift hits all alike
    runs = {"dense": lambda: dense(a, b, 0.5)}
    for d in DENSITIES:
        runs[d] = (lambda m: lambda: pruned(a, b, 0.5, masks=m))(masks[d])
    best = {k: float("inf") for k in runs}
    outs = {k: fn() for k, fn in runs.items()}  # warm-up, and the outputs for MAC counts
    for _ in range(repeat):
        for k, fn in runs.items():
            _sync(dev)
            t0 = time.perf_counter()
            fn()
            _sync(dev)
            best[k] = min(best[k], time.perf_counter() - t0)
    t_dense, dense_out = best["dense"], outs["dense"]
    for d in DENSITIES:
        t, out = best[d], outs[d]
        net_rows.append({"density": d, "seconds": t, "time_ratio": t / t_dense,
                         "mac_share": out[1] / dense_out[2], "gmacs": out[1] / 1e9})
    layer_rows = []
    for (blk, name), (lh, lw) in zip(((net.dec8, "1/8"), (net.dec4, "1/4"), (net.dec2, "1/2")), sizes):
        for j, conv in enumerate(blk.convs()[:2]):
            cin = conv.conv.in_channels
            x = torch.randn(1, cin, lh, lw, device=dev).contiguous(memory_format=torch.channels_last)
            wgt, bias, slope = conv.conv.weight, conv.conv.bias, conv.act.weight
            def dense_layer():
                return F.prelu(F.conv2d(x, wgt, bias, padding=1), slope)

            for d in DENSITIES[1:]:
                level = sizes.index((lh, lw))
                m = masks[d][level]
                plan = tile_plan(m, TILE)
                if plan.count == 0:  # too small a frame for a tile at this density
                    continue
                padded = to_padded(x, plan)
                # the layer's own work: gather, convolve, scatter.  Inputs arrive padded from the
                # previous layer and the output buffer is zeroed once per block (as in DecoderBlock).
                buf = scatter(conv_tiles(padded, plan, wgt, bias, slope), plan)
                td, ts = _best_pair(dense_layer, lambda: scatter(conv_tiles(padded, plan, wgt, bias, slope), plan, out=buf),
                                    repeat, dev)
                ideal = 1.0 / plan.tile_density
                layer_rows.append({"level": name, "layer": "head" if j == 0 else f"body{j}", "cin": cin,
                                   "cout": conv.conv.out_channels, "size": f"{lw}x{lh}", "density": plan.tile_density,
                                   "dense_s": td, "pruned_s": ts, "speedup": td / ts, "ideal": ideal,
                                   "efficiency": (td / ts) / ideal})
    return {
        "benchmark": "pruning", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": _cpu_name(), "threads": torch.get_num_threads(), "platform": platform.platform(),
                    "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None},
        "torch": torch.__version__, "width": width, "size": f"{w}x{h}", "device": str(dev), "backend": backend,
        "dense_seconds": t_dense, "dense_gmacs": dense_out[2] / 1e9, "network": net_rows, "layers": layer_rows,
    }


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def markdown(res: dict) -> str:
    lines = [f"Whole network, {res['width']} at {res['size']} on {res['device']} ({res['machine']['cpu']}, "
             f"{res['machine']['threads']} threads), {res['date'][:10]}: dense {res['dense_seconds']:.3f} s/frame, "
             f"{res['dense_gmacs']:.1f} GMAC",
             "", "| density | s/frame | time / dense | MACs / dense |", "|---|---|---|---|"]
    for r in res["network"]:
        lines.append(f"| {r['density']:.2f} | {r['seconds']:.3f} | {r['time_ratio']:.2f} | {r['mac_share']:.2f} |")
    lines += ["", "| level | layer | Cin→Cout | size | density | dense ms | pruned ms | speed-up | ideal | efficiency |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["layers"]:
        lines.append(f"| {r['level']} | {r['layer']} | {r['cin']}→{r['cout']} | {r['size']} | {r['density']:.2f} | "
                     f"{r['dense_s'] * 1e3:.1f} | {r['pruned_s'] * 1e3:.1f} | {r['speedup']:.2f} | {r['ideal']:.2f} | "
                     f"{r['efficiency']:.2f} |")
    return "\n".join(lines)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """Options of ``vsugsp bench pruning`` (shared with ``python -m vsugsp.bench.pruning``)."""
    ap.add_argument("--size", default="1280x720", help="WxH (default 1280x720)")
    ap.add_argument("--width", default="small", choices=("small", "base"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=5, help="timed rounds, the best is kept (default 5)")
    ap.add_argument("--json", help="write the results here")


def run_args(args: argparse.Namespace) -> int:
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ValueError(f"vsugsp: --size must be WxH such as 1280x720, got {args.size!r}") from None
    if w < 16 or h < 16 or args.repeat < 1:
        raise ValueError(f"vsugsp: --size must be at least 16x16 and --repeat at least 1, got {args.size}, {args.repeat}")
    res = run((h, w), args.width, args.device, args.repeat)
    print(markdown(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vsugsp.bench.pruning", description=__doc__.splitlines()[0])
    add_arguments(ap)
    try:
        return run_args(ap.parse_args(argv))
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
