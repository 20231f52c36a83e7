"""Training samples with the DIS flow prior attached, computed where the samples are made.

Wrapping the dataset puts OpenCV's DIS in the data workers, beside the rendering,
instead of in the training process between optimizer steps (on a GPU that would
leave the device waiting).  Every sample gets ``pair_flow`` (4×H×W, pixels: the
flows 0→1 and 1→0 of its two inputs, :mod:`vsugsp.model.prior`); the training loop
decides which samples of a batch use it.  A sample with its outer neighbours
(``img_prev``, ``img_next``: frames -1 and 2) gets the B×8 motion instead
(:func:`vsugsp.model.motion.motion_tensor`: the pair flow, then F(0→−1) and F(1→2), NaN
for a missing neighbour), and the neighbour images are dropped: the network never sees them.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch

from ..model.motion import motion_tensor
from ..model.prior import pair_flow


def _neighbour_flow(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
    """The 1×4 pair flow of images ``a``, ``b`` (3×H×W), None when either is missing (NaN)."""
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return None
    return pair_flow(a[None], b[None])


def with_prior(sample: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``sample`` plus its ``pair_flow`` (from ``img0`` and ``img1``, 3×H×W in [0, 1]): 4×H×W,
    or the 8×H×W motion when the sample holds ``img_prev`` / ``img_next`` (then dropped)."""
    out = dict(sample)
    pf = pair_flow(sample["img0"][None], sample["img1"][None])
    if "img_prev" in sample or "img_next" in sample:
        left = _neighbour_flow(out.pop("img_prev"), sample["img0"])
        right = _neighbour_flow(sample["img1"], out.pop("img_next"))
        pf = motion_tensor(pf, left, right)
    out["pair_flow"] = pf[0]
    return out


class PriorStream(torch.utils.data.IterableDataset):
    """An iterable dataset's samples with their DIS pair flow."""

    def __init__(self, base: torch.utils.data.IterableDataset) -> None:
        super().__init__()
        self.base = base

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for sample in self.base:
            yield with_prior(sample)


class PriorDataset(torch.utils.data.Dataset):
    """A map-style dataset's samples with their DIS pair flow."""

    def __init__(self, base: torch.utils.data.Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return with_prior(self.base[index])


def attach_prior(ds: torch.utils.data.Dataset) -> torch.utils.data.Dataset:
    """``ds`` with ``pair_flow`` added to every sample (iterable or map-style alike)."""
    if isinstance(ds, torch.utils.data.IterableDataset):
        return PriorStream(ds)
    return PriorDataset(ds)
