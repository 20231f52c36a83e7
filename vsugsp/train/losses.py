"""Training losses (pure tensor functions)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def charbonnier(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt(x * x + eps * eps)


def _gauss_down(x: torch.Tensor) -> torch.Tensor:
    k = x.new_tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    k = (k[:, None] * k[None, :]) / 256.0
    k = k.expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=x.shape[1])[..., ::2, ::2]


def laplacian_l1(pred: torch.Tensor, target: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """Sum over a Laplacian pyramid of the per-level mean L1 (IFRNet-style reconstruction loss)."""
    total = pred.new_zeros(())
    a, b = pred.float(), target.float()
    for _ in range(levels):
        if min(a.shape[-2:]) < 8:
            break
        da, db = _gauss_down(a), _gauss_down(b)
        ua = F.interpolate(da, size=a.shape[-2:], mode="bilinear", align_corners=False)
        ub = F.interpolate(db, size=b.shape[-2:], mode="bilinear", align_corners=False)
        total = total + ((a - ua) - (b - ub)).abs().mean()
        a, b = da, db
    return total + (a - b).abs().mean()


def flow_loss(flow: torch.Tensor, gt0: torch.Tensor, gt1: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Robust (Charbonnier) end-point loss of a B×4×h×w flow against full-res ground truth.

    The ground truth (B×2×H×W each, pixels) is area-resized to the flow's size and its
    vectors scaled; ``valid`` (B×1×H×W) weights pixels, pooled the same way.
    """
    h, w = flow.shape[-2:]
    gt = torch.cat([gt0, gt1], 1).float()
    wgt = valid.float()
    if gt.shape[-2:] != (h, w):
        sy, sx = h / gt.shape[-2], w / gt.shape[-1]
        gt = F.adaptive_avg_pool2d(gt, (h, w)) * gt.new_tensor([sx, sy, sx, sy]).view(1, 4, 1, 1)
        wgt = (F.adaptive_avg_pool2d(wgt, (h, w)) > 0.99).float()
    err = charbonnier(flow.float() - gt).view(flow.shape[0], 2, 2, h, w).pow(2).sum(2).sqrt()
    return (err * wgt).sum() / (2 * wgt.sum()).clamp_min(1.0)


def occlusion_loss(occ_logit: torch.Tensor, vis0: torch.Tensor, vis1: torch.Tensor) -> torch.Tensor:
    """BCE on pixels visible in exactly one input: the blend weight of frame 0 should be vis0."""
    sel = (vis0 != vis1).float()
    if sel.sum() < 1:
        return occ_logit.sum() * 0.0
    bce = F.binary_cross_entropy_with_logits(occ_logit.float(), vis0.float(), reduction="none")
    return (bce * sel).sum() / sel.sum()


def uncertainty_nll(log_scale: torch.Tensor, pred: torch.Tensor, target: torch.Tensor, clamp: float = 6.0) -> torch.Tensor:
    """Laplacian NLL mean(exp(−s)·|Î − I| + 2s); the error is detached so s learns to predict it."""
    s = log_scale.float().clamp(-clamp, clamp)
    err = (pred.detach().float() - target.float()).abs().mean(1, keepdim=True)
    return (torch.exp(-s) * err + 2 * s).mean()


def _ternary(x: torch.Tensor) -> torch.Tensor:
    """Census-like local structure: normalised differences to the 8 neighbours (B·C×8×H×W)."""
    b, c, h, w = x.shape
    patches = F.unfold(F.pad(x.reshape(b * c, 1, h, w), (1, 1, 1, 1), mode="replicate"), 3)
    patches = patches.view(b * c, 9, h, w)
    d = patches - x.reshape(b * c, 1, h, w)
    d = torch.cat([d[:, :4], d[:, 5:]], 1)
    return d / torch.sqrt(0.81 + d * d)


def census_loss(feat: torch.Tensor, ref: torch.Tensor, channels: int | None = None) -> torch.Tensor:
    """Soft Hamming distance between the ternary transforms of two feature maps (ref detached).

    ``channels``: score a random subset of this many channels (the same for both
    maps) instead of all: an unbiased estimate of the all-channel mean at a
    fraction of the cost, which is what dominates a pruned training step.
    """
    if channels is not None and channels < feat.shape[1]:
        pick = torch.randperm(feat.shape[1], device=feat.device)[:channels]
        feat, ref = feat.index_select(1, pick), ref.index_select(1, pick)
    a, b = _ternary(feat.float()), _ternary(ref.detach().float())
    d = (a - b) ** 2
    return (d / (0.1 + d)).mean()


def mask_density(masks: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """Cost-weighted mean of soft masks (the expected executed share of prunable work)."""
    total = sum(weights)
    return sum(m.float().mean() * (wt / total) for m, wt in zip(masks, weights))


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of [0, 1] images (B,)."""
    mse = ((pred.float() - target.float()) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return -10 * torch.log10(mse)
