"""Scene adaptation: fine-tune a copy of the network on triplets cut from the clip itself.

The clip being interpolated is the best training data there is: ``adapt(clip)``
cuts windows ``i, i+g`` from the frames it is given (ground truth: a frame strictly
inside, at t = j/g), skips windows across a scene cut or without motion, and runs
a few hundred seeded optimizer steps with the same losses as training
(:func:`vsugsp.train.loop.compute_losses`, image losses only: real footage has no
ground-truth flow).  A share of the samples get the DIS flow prior, as at
inference.  It never reads a frame the caller did not pass: in the frame-drop
protocol it sees the kept even frames, never the ones being scored.

The result is a plain :class:`~vsugsp.model.UGSPNet`, usable as
``interpolate(clip, model=net)`` or saved with :func:`vsugsp.model.save`.
"""
from __future__ import annotations

import copy
import hashlib
import random
import sys
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["AdaptSettings", "adapt", "adapt_for", "clip_triplets", "triplet_loss"]

# the last adapted networks, by (model, settings, frames read): a script or a benchmark that
# builds several graphs on the same clip adapts once
_CACHE: "OrderedDict[tuple, Any]" = OrderedDict()
_CACHE_SIZE = 2

#: what the fine-tuning may change: every weight, or all but the encoder
TRAINABLE = ("all", "decoders")


@dataclass(frozen=True)
class AdaptSettings:
    """How a network is adapted to one clip.

    steps: optimizer steps, >= 1.  lr: AdamW learning rate (constant after a 10 %
    warm-up, cosine to lr/10).  crop: side of the random square crops in px (a
    multiple of 16; clamped to the frame).  batch: crops per step.  gaps: window
    lengths g >= 2 in source frames (the ground truth is frame i+j, t = j/g).
    prior: share [0, 1] of samples given the DIS flow prior.  trainable: "all" or
    "decoders" (encoder frozen).  freeze_heads: keep the mask logits and the
    uncertainty channel as shipped (the masks stay calibrated).  max_frames: at most
    this many source frames are read (evenly spread).  seed: crops, flips, prior
    draws and window order.
    """

    steps: int = 300
    lr: float = 5e-5
    crop: int = 256
    batch: int = 4
    gaps: tuple[int, ...] = (2,)
    prior: float = 0.75
    trainable: str = "all"
    freeze_heads: bool = True
    max_frames: int = 200
    seed: int = 0
    cut_threshold: float = 40.0  # mean |Δ| (0-255) of 32×32 thumbnails above which a window holds a cut
    min_motion: float = 0.5      # windows whose end frames differ less are skipped

    def __post_init__(self) -> None:
        def bad(key: str, allowed: str) -> ValueError:
            return ValueError(f"vsugsp: adapt {key}={getattr(self, key)!r}; allowed: {allowed}")

        for key in ("steps", "batch", "max_frames"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < (3 if key == "max_frames" else 1):
                raise bad(key, "an int >= 3" if key == "max_frames" else "an int >= 1")
        if isinstance(self.crop, bool) or not isinstance(self.crop, int) or self.crop < 32 or self.crop % 16:
            raise bad("crop", "a multiple of 16, >= 32")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            raise bad("lr", "a number in (0, 1)")
        gaps = tuple(self.gaps)
        if not gaps or any(isinstance(g, bool) or not isinstance(g, int) or g < 2 for g in gaps):
            raise bad("gaps", "a non-empty list of ints >= 2")
        object.__setattr__(self, "gaps", gaps)
        if isinstance(self.prior, bool) or not isinstance(self.prior, (int, float)) or not 0 <= self.prior <= 1:
            raise bad("prior", "a number in [0, 1]")
        if self.trainable not in TRAINABLE:
            raise bad("trainable", " | ".join(TRAINABLE))


# ---------------------------------------------------------------------------- data
def _thumb(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(img.transpose(1, 2, 0), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)


def clip_triplets(frames: Sequence[np.ndarray], gaps: Sequence[int], cut_threshold: float = 40.0,
                  min_motion: float = 0.5) -> list[tuple[int, int, int]]:
    """Windows ``(i, j, i+g)`` of a frame list: inputs i and i+g, ground truth i+j (0 < j < g).

    frames: 3×H×W uint8 RGB.  A window is skipped when neighbouring frames in it differ
    by more than ``cut_threshold`` (a scene cut) or its end frames by less than
    ``min_motion`` (nothing to learn), both as mean |Δ| of 32×32 thumbnails on 0-255.
    """
    thumbs = [_thumb(f) for f in frames]
    steps = [float(np.abs(a - b).mean()) for a, b in zip(thumbs[:-1], thumbs[1:])]
    out = []
    for g in sorted(set(gaps)):
        for i in range(len(frames) - g):
            if max(steps[i:i + g]) > cut_threshold:
                continue
            if float(np.abs(thumbs[i] - thumbs[i + g]).mean()) < min_motion:
                continue
            out += [(i, j, i + g) for j in range(1, g)]
    return out


def frame_indices(n: int, max_frames: int) -> list[int]:
    """The sorted source indices :func:`read_frames` reads of an ``n``-frame clip: all of them
    when ``n <= max_frames``, else evenly spread runs of 8 consecutive frames (windows need
    neighbours)."""
    if n <= max_frames:
        return list(range(n))
    run = min(8, max_frames)
    starts = np.linspace(0, n - run, max(1, max_frames // run)).round().astype(int)
    return sorted({int(s) + k for s in starts for k in range(run)})


def read_frames(clip: Any, max_frames: int) -> tuple[list[int], list[np.ndarray]]:
    """(indices, 3×H×W uint8 RGB frames) of up to ``max_frames`` consecutive runs of ``clip``.

    At most ``max_frames`` frames are read: the whole clip when it is that short, else
    evenly spread runs of consecutive frames (windows need neighbours).
    """
    from .colors import to_rgb

    idx = frame_indices(clip.num_frames, max_frames)
    rgb = to_rgb(clip)
    frames = []
    for i in idx:
        f = rgb.get_frame(i)
        a = np.stack([np.asarray(f[p]) for p in range(3)])
        frames.append(np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8))
    return idx, frames


def _runs(idx: list[int]) -> list[list[int]]:
    """Split sorted frame indices into runs of consecutive numbers (positions in ``idx``)."""
    runs: list[list[int]] = []
    for pos, i in enumerate(idx):
        if runs and idx[runs[-1][-1]] == i - 1:
            runs[-1].append(pos)
        else:
            runs.append([pos])
    return runs


def _batch(frames, windows, s: AdaptSettings, rng: np.random.Generator):
    import torch

    from .data.augment import augment, empty_flow_fields

    h, w = frames[0].shape[-2:]
    ch, cw = min(s.crop, h // 16 * 16 or h), min(s.crop, w // 16 * 16 or w)
    samples = []
    for k in rng.integers(0, len(windows), s.batch):
        i, j, e = windows[int(k)]
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        g = e - i

        def cut(a: np.ndarray) -> np.ndarray:
            return a[:, y:y + ch, x:x + cw].astype(np.float32) * np.float32(1 / 255)

        sample = {"img0": cut(frames[i]), "gt": cut(frames[i + j]), "img1": cut(frames[e]),
                  "t": np.float32(j / g), **empty_flow_fields(ch, cw)}
        samples.append(augment(sample, rng))
    return {k: torch.from_numpy(np.stack([sm[k] for sm in samples])) for k in samples[0]}


# ---------------------------------------------------------------------------- training
def _trainable(net, s: AdaptSettings) -> list:
    """The parameters the adaptation may change (``trainable``)."""
    if s.trainable == "decoders":
        for p in net.encoder.parameters():
            p.requires_grad_(False)
    return [p for p in net.parameters() if p.requires_grad]


def _zero_head_grads(net) -> None:
    """``freeze_heads``: no gradient reaches the mask-logit rows or the uncertainty channel."""
    for block in (net.dec16, net.dec8, net.dec4):
        rows = block.logit_rows
        for p in (block.fuse.weight, block.fuse.bias):
            if rows and p is not None and p.grad is not None:
                p.grad[-rows:] = 0
    # the transposed conv's last output channel is the log-scale (uncertainty)
    if net.up.weight.grad is not None:
        net.up.weight.grad[:, -1] = 0
    if net.up.bias.grad is not None:
        net.up.bias.grad[-1] = 0


def _lr(s: AdaptSettings, k: int) -> float:
    import math

    warm = max(1, s.steps // 10)
    if k < warm:
        return s.lr * (k + 1) / warm
    q = (k - warm) / max(1, s.steps - warm)
    return s.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * q)))


def triplet_loss(net, frames, windows, n: int = 8, seed: int = 1234, prior: bool = True) -> float:
    """Mean L1 (0-1 scale) of ``net`` on ``n`` fixed centre-cropped windows (a yardstick for tests)."""
    import torch

    from .model.prior import pair_flow

    rng = np.random.default_rng(seed)
    pick = [windows[int(k)] for k in rng.integers(0, len(windows), n)]
    total = 0.0
    net.eval()
    with torch.inference_mode():
        for i, j, e in pick:
            a, gt, b = (torch.from_numpy(frames[q].astype(np.float32) / 255)[None] for q in (i, i + j, e))
            pf = pair_flow(a, b) if prior else None
            out = net(a, b, j / (e - i), mode="dense", pair_flow=pf)
            total += float((out.image - gt).abs().mean())
    return total / n


def adapt(clip: Any, steps: int | None = None, *, model: Any = None,
          settings: AdaptSettings | None = None, device: str | None = "cpu",
          progress: Callable[[int, int], None] | None = None, **overrides: Any):
    """Fine-tune a copy of ``model`` on triplets cut from ``clip``; returns the adapted ``UGSPNet``.

    clip: a VapourSynth clip (any constant format, >= 3 frames); only its own frames
    are read.  steps: optimizer steps (default :class:`AdaptSettings`).  model:
    weights name, ``.pt`` path or ``UGSPNet`` (None: the packaged default); it is
    copied, never changed.  settings / overrides: :class:`AdaptSettings` fields.
    device: "cpu", "cuda", "auto".  progress: called as ``progress(done, steps)``.
    Deterministic for the same clip, model, settings and machine.
    """
    import torch

    from .engine import resolve_device
    from .hardware import cpu_bf16
    from .model import UGSPNet, load
    from .train.loop import compute_losses
    from .train.recipe import Stage

    s = settings or AdaptSettings()
    changes = dict(overrides, **({"steps": steps} if steps is not None else {}))
    if changes:
        unknown = set(changes) - {f for f in asdict(s)}
        if unknown:
            raise ValueError(f"vsugsp: adapt got unknown argument(s) {sorted(unknown)}; "
                             f"allowed: {', '.join(asdict(s))}")
        s = AdaptSettings(**{**asdict(s), **changes})
    if clip.format is None or clip.width == 0 or clip.height == 0:
        raise ValueError("vsugsp: adapt clip must have a constant format and size")
    if clip.num_frames < 3:
        raise ValueError(f"vsugsp: adapt clip has {clip.num_frames} frames; it needs at least 3")
    # a gap g needs g + 1 consecutive frames: say so before any frame is read
    # (else "no usable window" would blame cuts or stillness)
    longest = max(len(run) for run in _runs(frame_indices(clip.num_frames, s.max_frames)))
    if min(s.gaps) >= longest:
        n = clip.num_frames
        have = (f"the clip has {n}" if n <= s.max_frames else
                f"adapt reads runs of {longest} of the clip's {n} (max_frames {s.max_frames})")
        raise ValueError(f"vsugsp: adapt gaps {list(s.gaps)}: a gap g needs g + 1 consecutive frames and "
                         f"{have}; use gaps from 2 to {longest - 1}")
    dev = resolve_device(device)
    if model is None:
        model = "small"
    idx, frames = read_frames(clip, s.max_frames)
    digest = hashlib.sha1()
    for f in frames:
        digest.update(f.tobytes())
    key = (id(model) if isinstance(model, UGSPNet) else str(model), tuple(sorted(asdict(s).items())),
           str(dev), digest.hexdigest())
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return copy.deepcopy(_CACHE[key])
    net = copy.deepcopy(model) if isinstance(model, UGSPNet) else load(model)
    net = net.float().to(dev)

    windows = []
    for run in _runs(idx):
        sub = [frames[p] for p in run]
        # positions in ``frames``: a run is contiguous there, so i + j is the ground truth
        windows += [(run[a], j, run[e]) for a, j, e in clip_triplets(sub, s.gaps, s.cut_threshold, s.min_motion)]
    if not windows:
        raise ValueError(f"vsugsp: adapt found no usable window in the clip ({len(frames)} frames read, gaps "
                         f"{list(s.gaps)}): every window holds a scene cut or no motion")

    torch.manual_seed(s.seed)
    random.seed(s.seed)
    rng = np.random.default_rng(s.seed)
    params = _trainable(net, s)
    # no weight decay: frozen rows (zero gradients) must stay exactly as shipped
    opt = torch.optim.AdamW(params, lr=s.lr, weight_decay=0.0)
    stage = Stage(name="adapt", mode="dense", steps=s.steps, lr=s.lr, prior=float(s.prior), w_flow=0.0,
                  w_uncertainty=0.0 if s.freeze_heads else Stage.w_uncertainty)
    bf16 = dev.type == "cpu" and cpu_bf16()

    def autocast():
        return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)

    net.train()
    gen_state = torch.random.get_rng_state()
    for k in range(s.steps):
        for g in opt.param_groups:
            g["lr"] = _lr(s, k)
        batch = {key: v.to(dev) for key, v in _batch(frames, windows, s, rng).items()}
        loss, _ = compute_losses(net, batch, stage, k, autocast)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if s.freeze_heads:
            _zero_head_grads(net)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if progress is not None:
            progress(k + 1, s.steps)
    torch.random.set_rng_state(gen_state)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(True)
    net = net.cpu()
    _CACHE[key] = copy.deepcopy(net)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return net


def adapt_for(clip: Any, steps: int, kwargs: dict[str, Any], **settings: Any):
    """The adapted network for ``clip`` with the model/device that ``kwargs`` (interpolate's) name.

    Used by ``vsugsp adapt`` and ``vsugsp interpolate --adapt``.  Draws a progress bar on
    stderr (steps).
    """
    from .preset import load_preset
    from .progress import Progress

    if steps < 0:
        raise ValueError(f"vsugsp: --adapt must be >= 0 steps, got {steps}")
    cfg = load_preset(kwargs.get("preset", "balanced"))
    model = kwargs.get("model") or cfg.model
    device = kwargs.get("device") or cfg.device
    print(f"vsugsp: adapting {model} to the clip ({steps} steps)", file=sys.stderr)
    return adapt(clip, steps, model=model, device=device, progress=Progress(unit="steps"), **settings)
