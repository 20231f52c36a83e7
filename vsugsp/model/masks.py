"""Spatial masks: soft (Gumbel-softmax, training), hard (threshold, inference), caps, nesting, labels.

Mask logits have 2 channels per pixel: [skip, compute].  A mask value of 1 means
"compute this pixel".  Masks are hierarchical: a pixel pruned at a coarse level
stays pruned at every finer level (coarse masks are upsampled ×2 nearest and
multiplied in).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def compute_prob(logits: torch.Tensor) -> torch.Tensor:
    """Probability of "compute" (B×1×H×W) from B×2×H×W logits."""
    return torch.softmax(logits.float(), dim=1)[:, 1:2].to(logits.dtype)


def soft_mask(logits: torch.Tensor, tau: float = 1.0, gumbel: bool = True) -> torch.Tensor:
    """Differentiable mask in [0, 1] from logits (Gumbel-softmax when ``gumbel``)."""
    if gumbel:
        return F.gumbel_softmax(logits.float(), tau=tau, hard=False, dim=1)[:, 1:2].to(logits.dtype)
    return compute_prob(logits)


def hard_mask(logits: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Bool mask: compute where P(compute) > threshold (threshold in [0, 1))."""
    return compute_prob(logits) > threshold


def tile_union(mask: torch.Tensor, tile: int) -> torch.Tensor:
    """Every ``tile``×``tile`` tile (from the top-left corner) with a pixel on, all on.

    The CPU backend computes whole tiles; with the mask widened to them it computes
    (and keeps) every pixel it pays for, and still equals the per-pixel reference.
    """
    h, w = mask.shape[-2:]
    on = F.max_pool2d(mask.float(), tile, tile, ceil_mode=True) > 0
    return on.repeat_interleave(tile, 2).repeat_interleave(tile, 3)[..., :h, :w]


def cap_mask(mask: torch.Tensor, prob: torch.Tensor, cap: float, tile: int | None = None) -> torch.Tensor:
    """Keep at most ``cap`` (fraction in (0, 1]) of each image's pixels of a bool mask.

    Where ``mask`` (B×1×H×W bool) has more pixels on than ``cap`` allows, only
    those with the highest ``prob`` (B×1×H×W, P(compute)) stay on.  This bounds
    the work of a pruned level on any input, whatever the threshold lets through.
    ``tile``: count and choose whole tiles instead (the CPU backend's unit of work):
    at most ``cap`` of the tiles keep their pixels, those with the most probability
    mass on.
    """
    if not 0.0 < cap <= 1.0:
        raise ValueError(f"vsugsp: max_density={cap}; allowed: 0 < max_density <= 1")
    if cap >= 1.0:
        return mask
    if tile:
        h, w = mask.shape[-2:]
        mass = torch.where(mask, prob.float(), torch.zeros((), dtype=torch.float32, device=prob.device))
        sums = F.avg_pool2d(mass, tile, tile, ceil_mode=True)
        kept = cap_mask(sums > 0, sums, cap)
        return mask & kept.repeat_interleave(tile, 2).repeat_interleave(tile, 3)[..., :h, :w]
    b = mask.shape[0]
    flat = mask.reshape(b, -1)
    k = max(1, int(cap * flat.shape[1]))
    # Under the cap: the mask as it is.  On a GPU that check would wait for the device, and the
    # top-k below keeps the same pixels then (every pixel on outranks every pixel off).
    if not flat.is_cuda and int(flat.sum(1).max()) <= k:
        return mask
    score = torch.where(flat, prob.reshape(b, -1).float(), torch.full_like(flat, -1.0, dtype=torch.float32))
    top = score.topk(k, dim=1).indices
    keep = torch.zeros_like(flat).scatter_(1, top, True)
    return (keep & flat).view_as(mask)


def nest(mask: torch.Tensor, parent: torch.Tensor | None) -> torch.Tensor:
    """Restrict a mask to where its coarser parent (half resolution) is on."""
    if parent is None:
        return mask
    up = F.interpolate(parent.to(torch.float32), size=mask.shape[-2:], mode="nearest")
    if mask.dtype == torch.bool:
        return mask & (up > 0.5)
    return mask * up.to(mask.dtype)


def labels_from_uncertainty(
    log_scale: torch.Tensor, sizes: list[tuple[int, int]], rho: float | list[float]
) -> list[torch.Tensor]:
    """Nested "compute" labels from a per-pixel uncertainty map.

    log_scale: B×1×H×W (higher = harder).  sizes: level resolutions, coarse → fine.
    rho: fraction in (0, 1] of pixels marked "compute" per image at each level
    (before nesting).  Returns float {0,1} masks, coarse → fine, each nested in
    the previous one.
    """
    rhos = rho if isinstance(rho, (list, tuple)) else [rho] * len(sizes)
    out: list[torch.Tensor] = []
    parent = None
    for (h, w), r in zip(sizes, rhos):
        s = F.adaptive_avg_pool2d(log_scale.float(), (h, w)).flatten(1)
        k = max(1, min(s.shape[1], int(round(r * s.shape[1]))))
        thresh = s.topk(k, dim=1).values[:, -1:]
        lab = (s >= thresh).float().view(-1, 1, h, w)
        lab = nest(lab, parent)
        out.append(lab)
        parent = lab
    return out


def forced_masks(
    sizes: list[tuple[int, int]], batch: int, density: float, tile: int, generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """Tile-aligned random masks of a given density at each level (benchmarks).

    sizes: level resolutions coarse → fine, each twice the previous one.
    """
    out = []
    # one random choice of tiles on the coarsest level's grid; each coarse tile covers
    # whole tiles at the finer levels, so every level runs at ``density``
    ch, cw = sizes[0]
    gh, gw = -(-ch // tile), -(-cw // tile)
    n = gh * gw
    k = int(round(density * n))
    choice = torch.zeros(batch, n, dtype=torch.bool)
    for b in range(batch):
        choice[b, torch.randperm(n, generator=generator)[:k]] = True
    grid = choice.view(batch, 1, gh, gw).float()
    for i, (h, w) in enumerate(sizes):
        f = 2**i * tile
        m = grid.repeat_interleave(f, 2).repeat_interleave(f, 3)[:, :, :h, :w] > 0.5
        out.append(m.to(device))
    return out
