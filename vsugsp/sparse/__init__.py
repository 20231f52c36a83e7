"""Masked 3×3 convolution: one interface, several backends with identical results.

``masked_conv3x3(x, weight, bias, mask, prelu=..., backend=...)`` returns
``(conv3x3(x) + bias → PReLU) * mask`` as a dense B×Co×H×W tensor.  Backends
(objects in :mod:`vsugsp.sparse.backends`, which also run whole decoder blocks):

- ``reference``: dense convolution times the mask (training, tests);
- ``tiles`` (also ``cpu``): gather the active 16×16 tiles, one dense conv, scatter;
  plain torch, any device;
- ``cuda``: CuPy kernels over the active pixels (:mod:`vsugsp.sparse.cuda`).

The input is read as it is: a neighbour that is inactive contributes whatever
``x`` holds there; inside the network those values are already zero because
the previous masked layer wrote zeros, exactly as in training.
"""
from __future__ import annotations

import torch

from .backends import (
    BACKEND_NAMES,
    CudaBackend,
    MaskedBackend,
    ReferenceBackend,
    TileBackend,
    get_backend,
    resolve_backend,
)

#: Backend names (kept for callers of the old tuple).
BACKENDS = BACKEND_NAMES


def masked_conv3x3(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor,
    *,
    prelu: torch.Tensor | None = None,
    backend: "str | MaskedBackend" = "reference",
) -> torch.Tensor:
    """Masked 3×3 convolution (stride 1, padding 1), one call: the mask is planned each time.

    x: B×C×H×W float; weight: Co×C×3×3; bias: Co or None; mask: B×1×H×W bool;
    prelu: Co slopes or None; backend: a name in :data:`BACKENDS` or a backend.
    Returns B×Co×H×W, zero where ``mask`` is off.
    """
    if x.dim() != 4 or mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"vsugsp: masked_conv3x3 needs x B×C×H×W and mask B×1×H×W, got {tuple(x.shape)} and {tuple(mask.shape)}")
    if mask.shape[0] != x.shape[0] or mask.shape[2:] != x.shape[2:]:
        raise ValueError(f"vsugsp: mask {tuple(mask.shape)} does not match x {tuple(x.shape)}")
    if tuple(weight.shape[1:]) != (x.shape[1], 3, 3):
        raise ValueError(f"vsugsp: weight {tuple(weight.shape)} is not Co×{x.shape[1]}×3×3")
    be = get_backend(backend)
    return be.conv(x, be.plan(mask.bool()), weight, bias, prelu)


__all__ = ["masked_conv3x3", "BACKENDS", "MaskedBackend", "ReferenceBackend", "TileBackend", "CudaBackend",
           "get_backend", "resolve_backend"]
