"""Speed anchor: a RIFE 4.25-shaped network (IFNet, random weights) timed per frame, eager PyTorch.

Users with a GPU compare us with vs-rife's RIFE 4.25.  Its weights are not ours
to ship, and speed does not depend on them, so this is our own module with the
same layer shapes as Practical-RIFE's v4.25 IFNet (``IFNet_HDv3``): a feature
head (3→16 /2, 16→16, 16→16, transposed 16→4 ×2) per frame; five IFBlocks at
scales 16, 8, 4, 2, 1 with widths 192, 128, 96, 64, 32, each two stride-2 convs,
eight residual 3×3 convs (LeakyReLU 0.2, learned per-channel scale) and a 4×4
transposed conv to 4·13 channels then a pixel shuffle ×2 (flow 4, mask 1,
features 8); backward warps (``grid_sample``) of the frames and features between
blocks.  One frame at t = 0.5, as vs-rife runs it (fp16 on CUDA by default).

    PYTHONPATH=. python3 benchmarks/rife_anchor.py --device cuda --json out.json

Prints one line and, with ``--json``, writes ms and fps per frame.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1, pad: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, bias=True), nn.LeakyReLU(0.2, True))


class ResConv(nn.Module):
    """3×3 conv, times a learned per-channel scale, plus the input; LeakyReLU."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones(1, c, 1, 1))
        self.relu = nn.LeakyReLU(0.2, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) * self.beta + x)


class IFBlock(nn.Module):
    """One coarse-to-fine step: flow residual, mask logit and 8 feature channels at full size."""

    def __init__(self, cin: int, c: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv(cin, c // 2, 3, 2, 1), _conv(c // 2, c, 3, 2, 1))
        self.convblock = nn.Sequential(*(ResConv(c) for _ in range(8)))
        self.lastconv = nn.Sequential(nn.ConvTranspose2d(c, 4 * 13, 4, 2, 1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None, scale: float):
        x = F.interpolate(x, scale_factor=1.0 / scale, mode="bilinear", align_corners=False)
        if flow is not None:
            flow = F.interpolate(flow, scale_factor=1.0 / scale, mode="bilinear", align_corners=False) / scale
            x = torch.cat((x, flow), 1)
        tmp = self.lastconv(self.convblock(self.conv0(x)))
        tmp = F.interpolate(tmp, scale_factor=scale, mode="bilinear", align_corners=False)
        return tmp[:, :4] * scale, tmp[:, 4:5], tmp[:, 5:]


class Head(nn.Module):
    """Per-frame features: 4 channels at full size."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn0 = nn.Conv2d(3, 16, 3, 2, 1)
        self.cnn1 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn2 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn3 = nn.ConvTranspose2d(16, 4, 4, 2, 1)
        self.relu = nn.LeakyReLU(0.2, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.cnn0(x))
        x = self.relu(self.cnn1(x))
        x = self.relu(self.cnn2(x))
        return self.cnn3(x)


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp of ``x`` by ``flow`` (pixels), bilinear, border padding."""
    b, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype),
                            torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype), indexing="ij")
    grid = torch.stack((xs, ys), -1).unsqueeze(0)
    f = torch.stack((flow[:, 0] * (2.0 / max(w - 1, 1)), flow[:, 1] * (2.0 / max(h - 1, 1))), -1)
    return F.grid_sample(x, grid + f, mode="bilinear", padding_mode="border", align_corners=True)


class IFNet(nn.Module):
    """RIFE 4.25-shaped interpolation network (random weights: for timing only)."""

    SCALES = (16, 8, 4, 2, 1)

    def __init__(self) -> None:
        super().__init__()
        self.encode = Head()
        self.blocks = nn.ModuleList([IFBlock(7 + 8, 192), IFBlock(8 + 4 + 8 + 8, 128), IFBlock(8 + 4 + 8 + 8, 96),
                                     IFBlock(8 + 4 + 8 + 8, 64), IFBlock(8 + 4 + 8 + 8, 32)])

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, t: float = 0.5) -> torch.Tensor:
        f0, f1 = self.encode(img0), self.encode(img1)
        tt = img0.new_full((img0.shape[0], 1, *img0.shape[2:]), t)
        flow = mask = feat = None
        w0, w1 = img0, img1
        for block, scale in zip(self.blocks, self.SCALES):
            if flow is None:
                flow, mask, feat = block(torch.cat((img0, img1, f0, f1, tt), 1), None, scale)
            else:
                wf0, wf1 = warp(f0, flow[:, :2]), warp(f1, flow[:, 2:4])
                fd, mask, feat = block(torch.cat((w0, w1, wf0, wf1, tt, mask, feat), 1), flow, scale)
                flow = flow + fd
            w0, w1 = warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4])
        m = torch.sigmoid(mask)
        return w0 * m + w1 * (1 - m)


def time_anchor(device: str, width: int, height: int, half: bool, warmup: int, repeats: int) -> dict:
    """Median ms per frame of :class:`IFNet` on two random frames (the anchor's row)."""
    if width % 32 or height % 32:
        raise ValueError(f"rife_anchor: {width}x{height}: both sides must be multiples of 32 (vs-rife pads to them)")
    dev = torch.device(device)
    dtype = torch.float16 if half else torch.float32
    torch.manual_seed(0)
    net = IFNet().eval().to(dev, dtype)
    g = torch.Generator().manual_seed(1)
    a, b = (torch.rand(1, 3, height, width, generator=g).to(dev, dtype) for _ in range(2))
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            net(a, b)
        sync()
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = net(a, b)
            sync()
            times.append((time.perf_counter() - t0) * 1000.0)
    assert out.shape == a.shape and torch.isfinite(out).all()
    ms = statistics.median(times)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else (platform.processor() or platform.machine())
    return {"kind": "rife-anchor", "network": "RIFE 4.25-shaped IFNet, random weights, eager", "device": device,
            "device_name": name, "width": width, "height": height, "precision": "fp16" if half else "fp32",
            "ms": ms, "fps": 1000.0 / ms, "repeats": repeats, "torch": torch.__version__,
            "params": sum(p.numel() for p in net.parameters())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", help="cuda or cpu (default: cuda when present)")
    p.add_argument("--width", type=int, default=1920)
    p.add_argument("--height", type=int, default=1088)
    p.add_argument("--fp32", action="store_true", help="fp32 instead of fp16 (fp16 needs CUDA; a CPU runs fp32)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--json", type=Path, help="write the row as JSON here")
    args = p.parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("rife_anchor: --device cuda needs a CUDA GPU", file=sys.stderr)
        return 2
    try:
        row = time_anchor(device, args.width, args.height, half=device.startswith("cuda") and not args.fp32,
                          warmup=args.warmup, repeats=args.repeats)
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 2
    print(f"RIFE 4.25-shaped anchor on {row['device_name']}: {row['width']}x{row['height']} {row['precision']} "
          f"{row['ms']:.2f} ms per frame = {row['fps']:.1f} fps")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(row, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
