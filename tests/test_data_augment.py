"""Augmentations keep images, flows and masks consistent with each other."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vsugsp.data.augment import (augment, center_crop, empty_flow_fields, hflip, permute_channels, random_crop,
                                 temporal_swap, vflip)
from vsugsp.data.synth import KEYS, SynthConfig, render_triplet


def _pool() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    noise = [(rng.random((30, 40, 3)) * 255).astype(np.uint8) for _ in range(3)]
    return [cv2.GaussianBlur(cv2.resize(n, (320, 240), interpolation=cv2.INTER_CUBIC), (0, 0), 1.5) for n in noise]


def _backwarp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """I(x + F(x)), bilinear; flow 2 x H x W in pixel-index coordinates."""
    _, h, w = img.shape
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    f = torch.from_numpy(flow)
    grid = torch.stack([(xx + f[0]) / (w - 1) * 2 - 1, (yy + f[1]) / (h - 1) * 2 - 1], dim=-1)[None]
    return F.grid_sample(torch.from_numpy(img)[None], grid, align_corners=True, padding_mode="border")[0].numpy()


def _erode(mask: np.ndarray, r: int = 2) -> np.ndarray:
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)).astype(bool)


def _sample(seed: int = 0) -> dict:
    cfg = replace(SynthConfig(size=80).clean(), max_motion=12.0, motion_gamma=0.0)
    return render_triplet(np.random.default_rng(seed), _pool(), cfg)


def _warp_error(s: dict) -> float:
    errs = []
    for img, flow, vis in (("img0", "flow_t0", "vis0"), ("img1", "flow_t1", "vis1")):
        im, fl = np.ascontiguousarray(s[img]), np.ascontiguousarray(s[flow])
        m = _erode(np.ascontiguousarray(s[vis][0]) > 0)
        errs.append(np.abs(_backwarp(im, fl) - np.ascontiguousarray(s["gt"])).mean(axis=0)[m].mean())
    return max(errs)


@pytest.mark.parametrize("op", [hflip, vflip, temporal_swap, lambda s: permute_channels(s, (2, 0, 1)),
                                lambda s: center_crop(s, 48), lambda s: hflip(vflip(temporal_swap(s)))])
def test_ops_keep_flow_consistent(op):
    s = _sample()
    base = _warp_error(s)
    assert base < 0.02
    out = op(s)
    assert _warp_error(out) < 0.02
    for k in KEYS:                       # inputs untouched
        np.testing.assert_array_equal(s[k], _sample()[k])


def test_flip_wrongly_signed_flow_breaks_consistency():
    """Guard against a vacuous test: a flip that forgets to negate the flow is caught."""
    s = _sample()
    bad = hflip(s)
    bad["flow_t0"] = np.ascontiguousarray(s["flow_t0"][..., ::-1])   # flipped but not negated
    bad["flow_t1"] = np.ascontiguousarray(s["flow_t1"][..., ::-1])
    assert _warp_error(bad) > 0.02


def test_temporal_swap_values():
    s = _sample()
    r = temporal_swap(s)
    assert float(r["t"]) == pytest.approx(1.0 - float(s["t"]))
    np.testing.assert_array_equal(r["img0"], s["img1"])
    np.testing.assert_array_equal(r["flow_t0"], s["flow_t1"])
    np.testing.assert_array_equal(r["vis1"], s["vis0"])
    np.testing.assert_array_equal(r["gt"], s["gt"])


def test_random_crop_and_augment_shapes():
    s = _sample()
    rng = np.random.default_rng(0)
    c = random_crop(s, 32, rng)
    assert c["img0"].shape == (3, 32, 32) and c["flow_t0"].shape == (2, 32, 32) and c["valid"].shape == (1, 32, 32)
    a = augment(s, np.random.default_rng(1), crop_size=(40, 24))
    assert a["gt"].shape == (3, 40, 24) and a["gt"].flags.c_contiguous and a["gt"].dtype == np.float32
    assert _warp_error(augment(s, np.random.default_rng(2))) < 0.02
    # t stays 0-d whatever the swaps do, so augmented samples collate with synthetic ones
    for seed in range(4):
        assert augment({**s, "t": np.float32(0.25)}, np.random.default_rng(seed))["t"].shape == ()
    with pytest.raises(ValueError, match="vsugsp"):
        random_crop(s, 100, rng)


def test_empty_flow_fields():
    z = empty_flow_fields(5, 7)
    assert z["flow_t0"].shape == (2, 5, 7) and z["valid"].shape == (1, 5, 7)
    assert not any(v.any() for v in z.values())
