"""Score the network on test-set triplets (:mod:`vsugsp.eval.datasets`), as the VFI papers do.

The network is called directly, ``net(img0, img1, 0.5, mode=...)``, on
full-size RGB frames in [0, 1]; its output is rounded to 8 bits before
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


def evaluate_triplets(net, items: Sequence[Triplet], *, device: str = "cpu", mode: str = "pruned",
                      backend: Optional[str] = None, threshold: float = 0.5, scale: float = 1.0,
                      max_density=None, half: bool = False, max_items: Optional[int] = None, progress=None,
                      flow_prior: str = "none") -> dict:
    """Mean PSNR / SSIM / IE of ``net`` at t = 0.5 over ``items`` (first ``max_items`` only if given).

    ``backend``: masked-conv backend (default: "cuda" on a CUDA device, else "cpu");
    ``half``: run in fp16 (CUDA only); ``max_density``: pruned-level cap (see ``UGSPNet.forward``);
    ``flow_prior``: "none", "dis" or "auto" (:mod:`vsugsp.model.prior`).  Returns the means, the count, mean
    executed/dense MACs and density, seconds, and per-item scores.
    """
    import torch

    dev = torch.device(device)
    if half and dev.type != "cuda":
        raise ValueError("vsugsp: half precision is for CUDA devices only")
    dtype = torch.float16 if half else torch.float32
    backend = backend or ("cuda" if dev.type == "cuda" else "cpu")
    net = net.to(dev, dtype).eval()
    items = list(items)[:max_items] if max_items is not None else list(items)
    if not items:
        raise ValueError("vsugsp: no triplets to evaluate")
    from ..model import prior

    cap = {} if max_density is None else {"max_density": max_density}  # only networks that prune take it
    setting = prior.resolve(flow_prior, dev)
    per_item = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i, tr in enumerate(items):
            a, b, gt = read_rgb(tr.frame0), read_rgb(tr.frame1), read_rgb(tr.gt)
            if not (a.shape == b.shape == gt.shape):
                raise ValueError(f"vsugsp: triplet {tr.name} has frames of different sizes: "
                                 f"{a.shape}, {b.shape}, {gt.shape}")
            ta, tb = _tensor(a, dev, dtype), _tensor(b, dev, dtype)
            pf = prior.prior_for(setting, ta, tb)
            kw = cap if pf is None else {**cap, "pair_flow": pf}  # networks without a prior input take none
            out = net(ta, tb, 0.5, mode=mode, backend=backend, threshold=threshold, scale=scale, **kw)
            pred = to_uint8(out.image.float())
            per_item.append({"name": tr.name, "psnr": psnr(pred, gt), "ssim": ssim(pred, gt),
                             "ie": mean_abs_error(pred, gt), "macs": int(out.macs),
                             "dense_macs": int(out.dense_macs)})
            if progress is not None:
                progress(i + 1, len(items))
    seconds = time.perf_counter() - t0
    mean = lambda k: float(np.mean([r[k] for r in per_item]))  # noqa: E731
    macs, dense = mean("macs"), mean("dense_macs")
    return {"count": len(per_item), "psnr": mean("psnr"), "ssim": mean("ssim"), "ie": mean("ie"),
            "macs": macs, "dense_macs": dense, "density": macs / dense if dense else None,
            "seconds": seconds, "settings": {"device": str(dev), "mode": mode, "backend": backend,
                                             "threshold": threshold, "scale": scale,
                                             "max_density": max_density,
                                             "flow_prior": setting,
                                             "precision": "fp16" if half else "fp32"},
            "per_item": per_item}
