"""Training samples with the DIS flow prior attached, computed where the samples are made.

Wrapping the dataset puts OpenCV's DIS in the data workers, beside the rendering,
instead of in the training process between optimizer steps (on a GPU that would
leave the device waiting).  Every sample gets ``pair_flow`` (4×H×W, pixels: the
flows 0→1 and 1→0 of its two inputs, :mod:`vsugsp.model.prior`); the training loop
decides which samples of a batch use it.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch

from ..model.prior import pair_flow


def with_prior(sample: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``sample`` plus its ``pair_flow`` (from ``img0`` and ``img1``, 3×H×W in [0, 1])."""
    out = dict(sample)
    out["pair_flow"] = pair_flow(sample["img0"][None], sample["img1"][None])[0]
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
