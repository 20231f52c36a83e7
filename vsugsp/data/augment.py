"""Augmentations shared by every training dataset (pure functions on numpy sample dicts).

A sample dict holds float32 numpy arrays with the keys of :data:`vsugsp.data.KEYS`:
images C x H x W, flows 2 x H x W (x then y, px), masks 1 x H x W, ``t`` 0-d.
Functions never modify their input; they return a new dict (arrays may be views).
"""
from __future__ import annotations

import numpy as np

__all__ = ["crop", "random_crop", "center_crop", "hflip", "vflip", "permute_channels", "temporal_swap", "augment",
           "empty_flow_fields"]

_IMAGES = ("img0", "img1", "gt", "img_prev", "img_next")  # the last two: outer neighbours, when present
_FLOWS = ("flow_t0", "flow_t1")
_MASKS = ("valid", "vis0", "vis1")


def _spatial_keys(sample: dict) -> list[str]:
    return [k for k in (*_IMAGES, *_FLOWS, *_MASKS) if k in sample]


def _size(sample: dict) -> tuple[int, int]:
    h, w = sample["img0"].shape[-2:]
    return int(h), int(w)


def empty_flow_fields(h: int, w: int) -> dict[str, np.ndarray]:
    """Flows and masks for data without ground-truth flow: all zeros (``valid`` 0 = do not supervise)."""
    z2 = np.zeros((2, h, w), np.float32)
    z1 = np.zeros((1, h, w), np.float32)
    return {"flow_t0": z2, "flow_t1": z2.copy(), "valid": z1, "vis0": z1.copy(), "vis1": z1.copy()}


def crop(sample: dict, y: int, x: int, h: int, w: int) -> dict:
    """The window [y, y+h) x [x, x+w) of every spatial array (flows are translation invariant)."""
    out = dict(sample)
    for k in _spatial_keys(sample):
        out[k] = sample[k][..., y:y + h, x:x + w]
    return out


def random_crop(sample: dict, size: int | tuple[int, int], rng: np.random.Generator) -> dict:
    """A random size x size (or (h, w)) window; raises ValueError if the sample is smaller."""
    ch, cw = (size, size) if isinstance(size, int) else size
    h, w = _size(sample)
    if ch > h or cw > w:
        raise ValueError(f"vsugsp: crop size {(ch, cw)} is larger than the sample {(h, w)}")
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    return crop(sample, y, x, ch, cw)


def center_crop(sample: dict, size: int | tuple[int, int]) -> dict:
    ch, cw = (size, size) if isinstance(size, int) else size
    h, w = _size(sample)
    if ch > h or cw > w:
        raise ValueError(f"vsugsp: crop size {(ch, cw)} is larger than the sample {(h, w)}")
    return crop(sample, (h - ch) // 2, (w - cw) // 2, ch, cw)


def hflip(sample: dict) -> dict:
    """Mirror left-right; the x component of the flows changes sign."""
    out = dict(sample)
    for k in _spatial_keys(sample):
        out[k] = sample[k][..., ::-1]
    for k in _FLOWS:
        if k in sample:
            f = out[k].copy()
            f[0] *= -1.0
            out[k] = f
    return out


def vflip(sample: dict) -> dict:
    """Mirror top-bottom; the y component of the flows changes sign."""
    out = dict(sample)
    for k in _spatial_keys(sample):
        out[k] = sample[k][..., ::-1, :]
    for k in _FLOWS:
        if k in sample:
            f = out[k].copy()
            f[1] *= -1.0
            out[k] = f
    return out


def permute_channels(sample: dict, perm: tuple[int, int, int] | np.ndarray) -> dict:
    """Reorder the colour channels of every image alike."""
    out = dict(sample)
    idx = np.asarray(perm)
    for k in _IMAGES:
        if k in sample:
            out[k] = sample[k][idx]
    return out


def temporal_swap(sample: dict) -> dict:
    """Play the triplet backwards: img0 <-> img1, t -> 1 - t, flow_t0 <-> flow_t1, vis0 <-> vis1,
    and the outer neighbours img_prev <-> img_next when present."""
    out = dict(sample)
    out["img0"], out["img1"] = sample["img1"], sample["img0"]
    if "img_prev" in sample or "img_next" in sample:
        out["img_prev"], out["img_next"] = sample["img_next"], sample["img_prev"]
    if "t" in sample:
        out["t"] = np.float32(1.0 - float(sample["t"]))
    if "flow_t0" in sample:
        out["flow_t0"], out["flow_t1"] = sample["flow_t1"], sample["flow_t0"]
    if "vis0" in sample:
        out["vis0"], out["vis1"] = sample["vis1"], sample["vis0"]
    return out


def augment(sample: dict, rng: np.random.Generator, crop_size: int | tuple[int, int] | None = None,
            flip_h: bool = True, flip_v: bool = True, channels: bool = True, temporal: bool = True) -> dict:
    """Random crop (when crop_size is given), then each enabled flip/permutation/swap with probability 1/2.

    Returns contiguous float32 arrays, ready for ``torch.from_numpy``.
    """
    s = random_crop(sample, crop_size, rng) if crop_size is not None else sample
    if flip_h and rng.random() < 0.5:
        s = hflip(s)
    if flip_v and rng.random() < 0.5:
        s = vflip(s)
    if channels and rng.random() < 0.5:
        s = permute_channels(s, rng.permutation(3))
    if temporal and rng.random() < 0.5:
        s = temporal_swap(s)
    # np.ascontiguousarray would turn the 0-d ``t`` into shape (1,), and then batches
    # mixing these samples with others fail to collate
    return {k: np.asarray(v, dtype=np.float32).copy(order="C") for k, v in s.items()}
