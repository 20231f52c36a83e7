"""How much a smarter blend of the prior's readings could gain, and what a small learned one does gain.

``python benchmarks/probe_reading_blend.py [--footage .cache/footage] [--tail 51] [--steps 900]``

``quality`` makes each frame the mean of four readings of the DIS prior's flows (eight
warps: each reading warps frame 0 and frame 1; :data:`vsugsp.model.net.PRIOR_ALONE_VIEWS`).
This probe asks, on the four training clips, whether a per-pixel choice among those eight
warps is where the missing dB are (issue 23: ``quality`` on carphone is 0.21 dB short of
``dis`` + 0.5):

* **oracles** (they look at the true frame, so no method reaches them): per block of
  16 px the best of the four readings, and per block of 16 / 4 / 1 px the best of the
  eight warps;
* **a learned blend**: a small U-Net (3 levels, 24/48/64 channels, 0.24 M weights) that
  sees the eight warps (less their mean), their mean, the first reading's flows from t and
  the forward-backward error of each frame's flow read at t, and gives softmax weights over
  the eight warps.  Its last conv starts at zero, so before training it *is* the mean of
  the readings; trained with MSE on 112-px crops (batch 16, AdamW, one-cycle lr 1e-3,
  random horizontal flips) of every triplet before each clip's tail.

Frames are the frame-drop protocol's on each clip's last ``--tail`` source frames (the
window of ``vsugsp bench quality --tail``): kept frames ``k, k + 2``, the dropped ``k + 1``
scored by PSNR on uint8 RGB, the quadratic path from the kept neighbours inside the window,
the static guard as in the filter (:meth:`vsugsp.model.net.UGSPNet.prior_frame`).  Training
triplets use only frames before the window.  Decoding is PyAV's RGB24 (no VapourSynth), so
the numbers are close to, not equal to, ``bench quality``'s.

Results: ``benchmarks/results/reading-blend-probe-cpu-DATE.{json,md}``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vsugsp.data.footage import DEFAULT_FOOTAGE, list_footage
from vsugsp.data.video import iter_frames
from vsugsp.eval.metrics import psnr as psnr_u8
from vsugsp.eval.metrics import to_uint8
from vsugsp.model.motion import fb_error, motion_tensor
from vsugsp.model.net import PRIOR_ALONE_VIEWS, UGSPNet, static_weight
from vsugsp.model.prior import pair_flow
from vsugsp.model.warp import backwarp

#: warps per frame: four readings × (frame 0, frame 1)
WARPS = 2 * len(PRIOR_ALONE_VIEWS[4])
CROP = 112
CROPS_PER_TRIPLET = 2


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """The protocol's PSNR (:func:`vsugsp.eval.metrics.psnr`: dB, peak 255, capped) of two 3×H×W
    frames in [0, 1], both rounded to uint8."""
    return psnr_u8(to_uint8(a), to_uint8(b))


def block_oracle(cands: torch.Tensor, target: torch.Tensor, block: int) -> torch.Tensor:
    """Per ``block``×``block`` tile, the candidate (N×3×H×W) closest to ``target`` (3×H×W) in
    squared error; returns the 3×H×W frame so assembled (ties: the first candidate)."""
    err = ((cands - target) ** 2).sum(1, keepdim=True)
    err = F.avg_pool2d(err, block, ceil_mode=True)
    best = err.argmin(0, keepdim=True).float()
    best = F.interpolate(best, scale_factor=block, mode="nearest")[..., :target.shape[-2], :target.shape[-1]]
    return torch.gather(cands, 0, best.long().expand(1, 3, -1, -1))[0]


class Triplet:
    """One frame-drop triplet's inputs, all fp32 on the CPU: ``warps`` 8×3×H×W (reading by reading,
    frame 0's warp then frame 1's), ``cues`` 6×H×W (the first reading's flows from t, then each
    frame's forward-backward error read at t, px), ``still`` 1×H×W (the static guard), ``avg``
    (the two kept frames' mean, what the guard blends to) and ``target`` 3×H×W."""

    def __init__(self, warps, cues, still, avg, target):
        self.warps, self.cues, self.still, self.avg, self.target = warps, cues, still, avg, target

    def guard(self, img: torch.Tensor) -> torch.Tensor:
        """``img`` with the filter's static guard applied, clamped to [0, 1]."""
        return torch.lerp(img, self.avg, self.still).clamp(0, 1)

    def readings(self) -> torch.Tensor:
        """The four readings' frames (4×3×H×W): each the mean of its two warps (t = 0.5)."""
        return 0.5 * (self.warps[0::2] + self.warps[1::2])

    def stack(self) -> torch.Tensor:
        """Everything as one (8·3 + 6 + 1 + 3 + 3)×H×W tensor (for crops and batches)."""
        return torch.cat([self.warps.flatten(0, 1), self.cues, self.still, self.avg, self.target], 0)

    @staticmethod
    def unstack(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """B×C×H×W batches of :meth:`stack` back into (warps B×8×3, cues, still, avg, target)."""
        n = 3 * WARPS
        w = x[:, :n].unflatten(1, (WARPS, 3))
        return w, x[:, n:n + 6], x[:, n + 6:n + 7], x[:, n + 7:n + 10], x[:, n + 10:n + 13]


def triplets(frames: list[torch.Tensor], lo: int, hi: int, step: int):
    """``frames``: 1×3×H×W uint8 RGB.  Yield (k, :class:`Triplet`) for kept pairs (k, k + 2), k = lo, lo + step, … inside [lo, hi),
    neighbours k − 2 and k + 4 where they lie inside [lo, hi)."""
    flows: dict[int, torch.Tensor] = {}

    def pf(k: int) -> torch.Tensor:
        if k not in flows:
            flows[k] = pair_flow(frames[k].float() / 255, frames[k + 2].float() / 255)
        return flows[k]

    t = torch.full((1, 1, 1, 1), 0.5)
    h, w = frames[0].shape[-2:]
    for k in range(lo, hi - 2, step):
        left = pf(k - 2) if k - 2 >= lo else None
        right = pf(k + 2) if k + 4 < hi else None
        reads = UGSPNet._prior_readings(motion_tensor(pf(k), left, right), t, (h, w), 1, PRIOR_ALONE_VIEWS[4])
        i0, i1 = frames[k].float() / 255, frames[k + 2].float() / 255
        warps = torch.cat([torch.cat([backwarp(i0, r[:, :2]), backwarp(i1, r[:, 2:])]) for r in reads])
        f01, f10 = (f.permute(1, 2, 0).numpy() for f in (pf(k)[0, :2], pf(k)[0, 2:]))
        fb0, fb1 = (torch.from_numpy(fb_error(a, b))[None, None] for a, b in ((f01, f10), (f10, f01)))
        cues = torch.cat([reads[0], backwarp(fb0, reads[0][:, :2]), backwarp(fb1, reads[0][:, 2:])], 1)
        yield k, Triplet(warps, cues[0], static_weight(i0, i1, reads[0])[0], (0.5 * (i0 + i1))[0],
                         frames[k + 1][0].float() / 255)
        for old in [j for j in flows if j < k - 2]:  # keep memory flat over long clips
            del flows[old]


def _conv(i: int, o: int, stride: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(i, o, 3, stride, 1), nn.PReLU(o))


class ReadingBlend(nn.Module):
    """Softmax weights over the eight warps from the warps, their mean and the motion cues."""

    def __init__(self, widths: tuple[int, int, int] = (24, 48, 64)) -> None:
        super().__init__()
        a, b, c = widths
        self.e1 = nn.Sequential(_conv(3 * WARPS + 3 + 6, a), _conv(a, a))
        self.e2 = nn.Sequential(_conv(a, b, 2), _conv(b, b))
        self.e3 = nn.Sequential(_conv(b, c, 2), _conv(c, c), _conv(c, c))
        self.d2 = nn.Sequential(_conv(c + b, b), _conv(b, b))
        self.d1 = nn.Sequential(_conv(b + a, a), _conv(a, a))
        self.head = nn.Conv2d(a, WARPS, 3, 1, 1)
        nn.init.zeros_(self.head.weight)  # uniform weights: the mean of the readings, before training
        nn.init.zeros_(self.head.bias)

    def forward(self, warps: torch.Tensor, cues: torch.Tensor) -> torch.Tensor:
        """warps B×8×3×H×W, cues B×6×H×W → B×3×H×W."""
        mean = warps.mean(1)
        x = torch.cat([(warps - mean[:, None]).flatten(1, 2), mean, cues[:, :4] / 16, torch.log1p(cues[:, 4:])], 1)
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % 4, 0, -h % 4), mode="replicate")
        x1 = self.e1(x)
        x2 = self.e2(x1)
        y = self.e3(x2)
        y = self.d2(torch.cat([F.interpolate(y, size=x2.shape[-2:], mode="bilinear"), x2], 1))
        y = self.d1(torch.cat([F.interpolate(y, size=x1.shape[-2:], mode="bilinear"), x1], 1))
        weights = torch.softmax(self.head(y)[..., :h, :w], 1)
        return (weights[:, :, None] * warps).sum(1)


def blended(net: ReadingBlend | None, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(guarded frames, targets) of a :meth:`Triplet.stack` batch; ``net`` None: the mean of the readings."""
    warps, cues, still, avg, target = Triplet.unstack(batch)
    img = warps.mean(1) if net is None else net(warps, cues)
    return torch.lerp(img, avg, still).clamp(0, 1), target


def train_blend(crops: torch.Tensor, steps: int, seed: int = 0, log=print) -> ReadingBlend:
    """:class:`ReadingBlend` trained ``steps`` steps on ``crops`` (N×C×CROP×CROP, fp16 stacks)."""
    torch.manual_seed(seed)
    net = ReadingBlend()
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 1e-3, total_steps=max(steps, 2), pct_start=max(0.05, 2 / max(steps, 2)))
    fx = [3 * WARPS, 3 * WARPS + 2]  # the flow cues' x components change sign under a horizontal flip
    gain = 0.0
    for step in range(1, steps + 1):
        x = crops[torch.randint(0, crops.shape[0], (16,))].float()
        if torch.rand(()) < 0.5:
            x = x.flip(-1)
            x[:, fx] = -x[:, fx]
        y, target = blended(net, x)
        loss = (y - target).square().mean()
        with torch.no_grad():
            base = (blended(None, x)[0] - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        gain = 0.98 * gain + 0.02 * (base - loss).item() * 255 ** 2
        if step % 100 == 0:
            log(f"  step {step}: MSE below the mean of the readings by {gain:+.3f} (uint8 levels², running)")
    return net.eval()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--footage", type=Path, default=DEFAULT_FOOTAGE)
    ap.add_argument("--tail", type=int, default=51, help="held-out source frames at each clip's end")
    ap.add_argument("--steps", type=int, default=900, help="training steps of the learned blend (0: oracles only)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    date = datetime.date.today().isoformat()
    out = args.out or Path(__file__).parent / "results" / f"reading-blend-probe-cpu-{date}"
    rng = np.random.default_rng(0)
    held: dict[str, list[Triplet]] = {}
    crops = []
    t0 = time.time()
    for path in list_footage(args.footage):
        frames = [torch.from_numpy(f).permute(2, 0, 1)[None].contiguous() for f in iter_frames(path)]
        cut = len(frames) - args.tail
        if cut < 0:
            raise SystemExit(f"{path.name}: {len(frames)} frames, fewer than --tail {args.tail}")
        for _, tr in triplets(frames, 0, cut, 1):  # every triplet before the window
            s = tr.stack()
            h, w = s.shape[-2:]
            for _ in range(CROPS_PER_TRIPLET):
                y, x = rng.integers(0, h - CROP + 1), rng.integers(0, w - CROP + 1)
                crops.append(s[:, y:y + CROP, x:x + CROP].half())
        held[path.stem] = [tr for _, tr in triplets(frames, cut, len(frames), 2)]
        print(f"{path.name}: {cut} frames before the window, {len(held[path.stem])} held-out triplets "
              f"({time.time() - t0:.0f} s)", flush=True)
    rows: dict[str, dict[str, float]] = {}

    def score(name: str, frame_of) -> None:
        rows[name] = {c: float(np.mean([psnr(tr.guard(frame_of(tr)), tr.target) for tr in held[c]])) for c in held}
        rows[name]["mean"] = float(np.mean([rows[name][c] for c in held]))
        print(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in rows[name].items()), flush=True)

    score("mean of four readings (quality)", lambda tr: tr.readings().mean(0))
    score("first reading alone", lambda tr: tr.readings()[0])
    score("oracle: best reading per 16 px", lambda tr: block_oracle(tr.readings(), tr.target, 16))
    for block in (16, 4, 1):
        score(f"oracle: best warp per {block} px", lambda tr, b=block: block_oracle(tr.warps, tr.target, b))
    train_s = 0.0
    if args.steps:
        t1 = time.time()
        net = train_blend(torch.stack(crops), args.steps)
        train_s = time.time() - t1
        with torch.no_grad():
            score(f"learned blend, {args.steps} steps",
                  lambda tr: net(tr.warps[None], tr.cues[None])[0])
    data = {"kind": "reading-blend-probe", "date": date, "machine": platform.processor() or platform.machine(),
            "python": sys.version.split()[0], "torch": torch.__version__, "tail": args.tail, "steps": args.steps,
            "train_crops": len(crops), "train_seconds": round(train_s, 1), "clips": list(held),
            "held_out_triplets": {c: len(v) for c, v in held.items()}, "psnr_db": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    cols = [*held, "mean"]
    md = [f"# Blends of the prior's readings, training clips' last {args.tail} frames ({date}, CPU)", "",
          f"`python benchmarks/probe_reading_blend.py --tail {args.tail} --steps {args.steps}`; "
          f"{len(crops)} training crops of {CROP} px from the frames before each window, "
          f"{train_s / 60:.0f} min of training. Oracles look at the true frame.", "",
          "| PSNR dB | " + " | ".join(cols) + " |", "| --- |" + " ---: |" * len(cols)]
    md += [f"| {name} | " + " | ".join(f"{r[c]:.2f}" for c in cols) + " |" for name, r in rows.items()]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(f"wrote {out}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
