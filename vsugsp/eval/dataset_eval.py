"""Score the network on test-set triplets (:mod:`vsugsp.eval.datasets`), as the VFI papers do.

The network runs as the filter runs it (an
:class:`~vsugsp.interpolator.Interpolator`), on full-size RGB frames in [0, 1]; its output is rounded to 8 bits before
scoring (PSNR with peak 255, capped at 99 dB; SSIM as in
:mod:`vsugsp.eval.metrics`; and the mean absolute error on 0..255, the
"IE" of the Middlebury tables).  The set's value is the mean over triplets.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .datasets import Triplet
from .metrics import mean_abs_error, psnr, ssim, to_uint8


def read_rgb(path: Path | str) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB (alpha dropped, grey expanded)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _tensor(img: np.ndarray, device, dtype):
    import torch

    return torch.from_numpy(img).permute(2, 0, 1)[None].to(device=device, dtype=dtype) / 255.0


def evaluate_triplets(interp, items: Sequence[Triplet], *, max_items: Optional[int] = None, progress=None) -> dict:
    """Mean PSNR / SSIM / IE at t = 0.5 over ``items`` (first ``max_items`` only if given).

    ``interp``: the network under its settings (:func:`vsugsp.interpolator.build_interpolator`),
    run as the filter runs it (mode, backend, pruning caps, ensemble, prior, precision).
    Returns the means, the count, mean executed/dense MACs and density, seconds, and
    per-item scores.
    """
    dev, dtype = interp.device, interp.dtype
    items = list(items)[:max_items] if max_items is not None else list(items)
    if not items:
        raise ValueError("vsugsp: no triplets to evaluate")
    per_item = []
    t0 = time.perf_counter()
    for i, tr in enumerate(items):
        a, b, gt = read_rgb(tr.frame0), read_rgb(tr.frame1), read_rgb(tr.gt)
        if not (a.shape == b.shape == gt.shape):
            raise ValueError(f"vsugsp: triplet {tr.name} has frames of different sizes: "
                             f"{a.shape}, {b.shape}, {gt.shape}")
        ta, tb = _tensor(a, dev, dtype), _tensor(b, dev, dtype)
        image, macs, dense = interp(ta, tb, 0.5, pair_flow=interp.prior(ta, tb))
        pred = to_uint8(image.float())
        per_item.append({"name": tr.name, "psnr": psnr(pred, gt), "ssim": ssim(pred, gt),
                         "ie": mean_abs_error(pred, gt), "macs": int(macs), "dense_macs": int(dense)})
        if progress is not None:
            progress(i + 1, len(items))
    seconds = time.perf_counter() - t0
    mean = lambda k: float(np.mean([r[k] for r in per_item]))  # noqa: E731
    macs, dense = mean("macs"), mean("dense_macs")
    s = interp.settings
    return {"count": len(per_item), "psnr": mean("psnr"), "ssim": mean("ssim"), "ie": mean("ie"),
            "macs": macs, "dense_macs": dense, "density": macs / dense if dense else None,
            "seconds": seconds, "settings": {"device": str(dev), "mode": s.mode, "backend": interp.backend.name,
                                             "threshold": s.threshold, "scale": s.scale,
                                             "max_density": s.max_density, "ensemble": s.ensemble,
                                             "flow_prior": interp.flow_prior, "precision": interp.precision},
            "per_item": per_item}
