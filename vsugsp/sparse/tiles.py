"""Tile plans: the CPU masked convolution's gather → dense compute → scatter (SBNet style).

A mask is cut into T×T tiles; a tile is *active* when any of its pixels is.  The
active tiles are gathered with a one-pixel halo from a padded channels-last
buffer, convolved as one dense batch (oneDNN does the arithmetic), multiplied by
the pixel mask and scattered back.  Results equal the reference backend exactly
(same per-pixel mask); only the active tiles cost time.

Buffers are *padded rows*: B×(Hp+2)×(Wp+2)×C, where Hp, Wp round H, W up to a
multiple of T and the border (and the round-up) is zero.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

#: Default tile side in pixels of the layer's own resolution.
TILE = 16


@dataclass
class TilePlan:
    """Active tiles of one B×1×H×W pixel mask."""

    batch: int
    height: int
    width: int
    tile: int
    b: torch.Tensor  # (n,) batch index of each active tile
    ty: torch.Tensor  # (n,) tile row
    tx: torch.Tensor  # (n,) tile column
    pixel_mask: torch.Tensor  # (n, 1, T, T) float: the pixel mask inside each active tile
    active: torch.Tensor  # () active pixels of the mask, on its device (counted without a host sync)
    halo_cache: dict = field(default_factory=dict, repr=False, compare=False)  # see halo_index

    @property
    def padded_hw(self) -> tuple[int, int]:
        t = self.tile
        return -(-self.height // t) * t, -(-self.width // t) * t

    @property
    def count(self) -> int:
        return int(self.b.numel())

    @property
    def total(self) -> int:
        hp, wp = self.padded_hw
        return self.batch * (hp // self.tile) * (wp // self.tile)

    @property
    def tile_density(self) -> float:
        return self.count / max(1, self.total)

    @property
    def active_pixels(self) -> int:
        """Active pixels of the mask (reading it syncs with the mask's device)."""
        return int(self.active)

    @property
    def executed_pixels(self) -> int:
        """Output pixels the tiles compute (what the CPU actually runs)."""
        return self.count * self.tile * self.tile


def tile_plan(mask: torch.Tensor, tile: int = TILE) -> TilePlan:
    """Plan the active tiles of a B×1×H×W bool mask."""
    bsz, _, h, w = mask.shape
    hp, wp = -(-h // tile) * tile, -(-w // tile) * tile
    m = mask[:, 0]
    if (hp, wp) != (h, w):
        m = F.pad(m, (0, wp - w, 0, hp - h))
    tiles = m.view(bsz, hp // tile, tile, wp // tile, tile)
    active = tiles.any(dim=4).any(dim=2)
    b, ty, tx = active.nonzero(as_tuple=True)
    pm = tiles.permute(0, 1, 3, 2, 4)[b, ty, tx].unsqueeze(1)
    return TilePlan(bsz, h, w, tile, b, ty, tx, pm, mask.sum())


def to_padded(x: "torch.Tensor | Sequence[Any]", plan: TilePlan) -> torch.Tensor:
    """B×C×H×W → padded rows B×(Hp+2)×(Wp+2)×C (one copy).

    ``x`` may be the channel parts of the input (what ``torch.cat(x, 1)`` would
    be, same dtype promotion): each is written into its channels directly, so
    the concatenated tensor is never made, and only the border is zeroed.  A part
    that is not a tensor (:class:`vsugsp.model.warp.Warp`: ``shape``, ``dtype``,
    ``at(index)``) is evaluated at the pixels the active tiles read only, which
    are the only rows of its channels that are written.
    """
    parts = [x] if isinstance(x, torch.Tensor) else list(x)
    hp, wp = plan.padded_hw
    b, _, h, w = parts[0].shape
    dtype = parts[0].dtype
    for part in parts[1:]:
        dtype = torch.promote_types(dtype, part.dtype)
    c = sum(part.shape[1] for part in parts)
    first = next(p for p in parts if isinstance(p, torch.Tensor))
    out = first.new_empty(b, hp + 2, wp + 2, c, dtype=dtype)
    out[:, 0].zero_()
    out[:, h + 1 :].zero_()
    out[:, 1 : h + 1, 0].zero_()
    out[:, 1 : h + 1, w + 1 :].zero_()
    start = 0
    for part in parts:
        end = start + part.shape[1]
        if isinstance(part, torch.Tensor):
            out[:, 1 : h + 1, 1 : w + 1, start:end] = part.permute(0, 2, 3, 1)
        else:
            rows, pixels = read_pixels(plan, out.shape, out.device)
            out.view(-1, c)[rows, start:end] = part.at(pixels).to(dtype)
        start = end
    return out


def read_pixels(plan: TilePlan, padded_shape: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The in-frame pixels the active tiles' halos read: (padded-row indices, flat B·H·W indices), sorted.

    Cached on the plan with :func:`halo_index`.
    """
    key = ("read", tuple(padded_shape[:3]), device)
    hit = plan.halo_cache.get(key)
    if hit is None:
        _, hp2, wp2 = padded_shape[:3]
        seen = torch.zeros(plan.batch * hp2 * wp2, dtype=torch.bool, device=device)
        seen[halo_index(plan, padded_shape, device)] = True
        rows = seen.nonzero().flatten()
        bb, rest = rows // (hp2 * wp2), rows % (hp2 * wp2)
        y, x = rest // wp2 - 1, rest % wp2 - 1
        inside = (y >= 0) & (y < plan.height) & (x >= 0) & (x < plan.width)
        rows, bb, y, x = rows[inside], bb[inside], y[inside], x[inside]
        hit = plan.halo_cache[key] = (rows, (bb * plan.height + y) * plan.width + x)
    return hit


def halo_index(plan: TilePlan, padded_shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Flat row indices (into a B·(Hp+2)·(Wp+2) × C view) of every active tile's halo pixels.

    Cached on the plan: every layer of a block gathers the same tiles.
    """
    key = (tuple(padded_shape[:3]), device)
    cache = plan.halo_cache
    idx = cache.get(key)
    if idx is None:
        t = plan.tile
        _, hp2, wp2 = padded_shape[:3]
        r = torch.arange(t + 2, device=device)
        corner = (plan.b.to(device) * hp2 + plan.ty.to(device) * t) * wp2 + plan.tx.to(device) * t
        idx = (corner.view(-1, 1, 1) + r.view(1, -1, 1) * wp2 + r.view(1, 1, -1)).reshape(-1)
        cache[key] = idx
    return idx


def gather(padded: torch.Tensor, plan: TilePlan) -> torch.Tensor:
    """Active tiles with a one-pixel halo: n×C×(T+2)×(T+2), channels-last memory.

    One ``index_select`` of whole C-channel rows (contiguous in padded rows), several
    times faster on the CPU than advanced indexing of an unfolded view.
    """
    t = plan.tile
    c = padded.shape[-1]
    rows = padded.reshape(-1, c).index_select(0, halo_index(plan, padded.shape, padded.device))
    return rows.view(-1, t + 2, t + 2, c).permute(0, 3, 1, 2)


def scatter(tiles: torch.Tensor, plan: TilePlan, pad: int = 1, out: torch.Tensor | None = None) -> torch.Tensor:
    """n×C×T×T tiles → B×(Hp+2p)×(Wp+2p)×C buffer, zero outside the active tiles.

    ``out``: a buffer of that shape from an earlier ``scatter`` with the same plan; only
    the active tiles are written, so the zeroing of the whole frame is paid once per
    plan rather than once per layer.
    """
    t = plan.tile
    hp, wp = plan.padded_hw
    c = tiles.shape[1]
    if out is None:
        out = tiles.new_zeros(plan.batch, hp + 2 * pad, wp + 2 * pad, c)
    inner = out[:, pad : pad + hp, pad : pad + wp, :]
    view = inner.unfold(1, t, t).unfold(2, t, t).permute(0, 1, 2, 4, 5, 3)
    view[plan.b, plan.ty, plan.tx] = tiles.permute(0, 2, 3, 1).to(out.dtype)
    return out


def padded_to_dense(padded: torch.Tensor, plan: TilePlan, pad: int = 1) -> torch.Tensor:
    """Padded rows → B×C×H×W view (channels-last memory)."""
    inner = padded[:, pad : pad + plan.height, pad : pad + plan.width, :]
    return inner.permute(0, 3, 1, 2)


def conv_tiles(
    padded: torch.Tensor,
    plan: TilePlan,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    prelu: torch.Tensor | None,
) -> torch.Tensor:
    """3×3 conv over the active tiles only → n×Co×T×T, zero at masked-off pixels."""
    if plan.count == 0:
        return padded.new_zeros(0, weight.shape[0], plan.tile, plan.tile)
    y = F.conv2d(gather(padded, plan), weight, bias)
    if prelu is not None:
        y = F.prelu(y, prelu)
    return y.mul_(plan.pixel_mask.to(y.dtype))
