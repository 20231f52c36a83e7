"""Test-time ensembles: average the network's frame over symmetric views of the same pair.

Interpolating ``(a, b)`` at ``t`` is the same task as ``(b, a)`` at ``1 - t``,
and as the mirrored pair at ``t``; a network is not exactly equivariant to
either, so its errors in the views are partly independent and their mean is
closer to the truth (the ``ensemble`` option of RIFE-style interpolators).

``passes`` (views averaged): 1 (plain), 2 (+ time-swapped), 4 (+ both mirrored).  The
prior alone (no network) gives the same frame in each of these views; it averages
``readings`` readings of the prior's flows instead (:data:`vsugsp.model.net.PRIOR_ALONE_VIEWS`).
The time-swapped view reuses the cached encoder features of the two frames;
the mirrored views encode the mirrored frames.
"""
from __future__ import annotations

from typing import Any

import torch

from .net import REFINE, Features, UGSPNet, prior_alone

PASSES = (1, 2, 4)


def check_passes(passes: object) -> int:
    """``passes`` validated: one of :data:`PASSES`."""
    if isinstance(passes, bool) or passes not in PASSES:
        raise ValueError(f"vsugsp: ensemble={passes!r}; allowed: {', '.join(map(str, PASSES))}")
    return int(passes)


def ensemble_forward(
    net: UGSPNet,
    img0: torch.Tensor,
    img1: torch.Tensor,
    t: float | torch.Tensor,
    passes: int = 1,
    *,
    feats0: Features | None = None,
    feats1: Features | None = None,
    pair_flow: torch.Tensor | None = None,
    readings: int = 1,
    **kw: Any,
) -> tuple[torch.Tensor, int, int]:
    """Mean image (B×3×H×W in [0, 1]) over ``passes`` views, executed MACs, dense MACs.

    ``t``: a number or a B-vector in (0, 1).  ``feats0``/``feats1``: cached
    :meth:`UGSPNet.encode` results (used by the plain and time-swapped views).
    ``pair_flow``: flow prior of the pair (:mod:`vsugsp.model.prior`), swapped and
    mirrored along with the views.
    ``kw``: the other :meth:`UGSPNet.forward` arguments (mode, backend, threshold,
    scale, max_density).  MACs add up over the views.  The prior's frame alone (``refine``
    empty, with a prior) would be the same in every view; it is the mean of ``readings``
    (1, 2, 4) readings of the prior's flows instead (:meth:`UGSPNet.prior_frame`).
    """
    passes = check_passes(passes)
    if prior_alone(pair_flow, kw.get("refine", REFINE), kw.get("mode", "pruned")):
        out = net.prior_frame(img0, img1, t, pair_flow, kw.get("scale", 1.0), views=readings)
        return out.image, int(out.macs), int(out.dense_macs)
    tt = t if isinstance(t, torch.Tensor) else torch.full((img0.shape[0],), float(t), device=img0.device)
    pf = pair_flow
    sw = mi = mis = None
    if pf is not None:
        from . import prior

        sw = prior.swap(pf)
        if passes == 4:
            mi = prior.mirror(pf)
            mis = prior.swap(mi)
    views = [(img0, img1, tt, feats0, feats1, pf, False)]
    if passes >= 2:
        views.append((img1, img0, 1 - tt, feats1, feats0, sw, False))
    if passes == 4:
        m0, m1 = img0.flip(-1), img1.flip(-1)
        views += [(m0, m1, tt, None, None, mi, True), (m1, m0, 1 - tt, None, None, mis, True)]
    total, macs, dense = None, 0, 0
    for a, b, tv, fa, fb, pv, mirrored in views:
        out = net(a, b, tv, feats0=fa, feats1=fb, pair_flow=pv, **kw)
        img = out.image.flip(-1) if mirrored else out.image
        total = img if total is None else total + img
        macs += int(out.macs)
        dense += int(out.dense_macs)
    return total / len(views), macs, dense
