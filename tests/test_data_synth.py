"""Synthetic triplet renderer: shapes, determinism and exactness of the ground-truth flow."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vsugsp.data.synth import KEYS, SynthConfig, SynthTriplets, make_heldout, render_triplet


def _pool(n: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Smooth random colour 'photos' (bilinear resampling is near exact on smooth texture)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = 200 + 40 * i, 260
        noise = (rng.random((h // 8, w // 8, 3)) * 255).astype(np.uint8)
        img = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
        out.append(cv2.GaussianBlur(img, (0, 0), 1.5))
    return out


def _backwarp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """I(x + F(x)) by bilinear sampling; img C x H x W, flow 2 x H x W in pixel-index coordinates."""
    c, h, w = img.shape
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    f = torch.from_numpy(flow)
    gx = (xx + f[0]) / (w - 1) * 2 - 1
    gy = (yy + f[1]) / (h - 1) * 2 - 1
    grid = torch.stack([gx, gy], dim=-1)[None]
    out = F.grid_sample(torch.from_numpy(img)[None], grid, mode="bilinear", align_corners=True,
                        padding_mode="border")
    return out[0].numpy()


def _erode(mask: np.ndarray, r: int = 2) -> np.ndarray:
    k = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), k).astype(bool)


def test_shapes_ranges_and_keys():
    cfg = SynthConfig(size=64)
    s = render_triplet(np.random.default_rng(1), _pool(), cfg)
    assert set(s) == set(KEYS)
    for k in ("img0", "img1", "gt"):
        assert s[k].shape == (3, 64, 64) and s[k].dtype == np.float32
        assert 0.0 <= s[k].min() and s[k].max() <= 1.0
    for k in ("flow_t0", "flow_t1"):
        assert s[k].shape == (2, 64, 64) and s[k].dtype == np.float32 and np.isfinite(s[k]).all()
    for k in ("valid", "vis0", "vis1"):
        assert s[k].shape == (1, 64, 64) and set(np.unique(s[k])) <= {0.0, 1.0}
    assert 0.0 < float(s["t"]) < 1.0


def test_deterministic_by_seed():
    pool = _pool()
    cfg = SynthConfig(size=48)
    a = render_triplet(np.random.default_rng(7), pool, cfg)
    b = render_triplet(np.random.default_rng(7), pool, cfg)
    c = render_triplet(np.random.default_rng(8), pool, cfg)
    for k in KEYS:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["img0"], c["img0"])

    d1 = list(SynthTriplets(pool, cfg, seed=3, length=3))
    d2 = list(SynthTriplets(pool, cfg, seed=3, length=3))
    d3 = list(SynthTriplets(pool, cfg, seed=4, length=3))
    assert len(d1) == 3
    for x, y in zip(d1, d2):
        for k in KEYS:
            assert torch.equal(x[k], y[k])
    assert not torch.equal(d1[0]["gt"], d3[0]["gt"])


@pytest.mark.parametrize("seed", range(6))
def test_flow_warps_frames_onto_ground_truth(seed):
    """Backward-warping img0 by flow_t0 (img1 by flow_t1) reproduces gt where the point is visible."""
    cfg = SynthConfig(size=96).clean()
    rng = np.random.default_rng(100 + seed)
    s = render_triplet(rng, _pool(seed=seed), cfg)
    # the motion is genuinely non-trivial (otherwise this test proves nothing)
    assert np.abs(s["flow_t0"]).max() > 1.0 or np.abs(s["flow_t1"]).max() > 1.0
    for img, flow, vis in (("img0", "flow_t0", "vis0"), ("img1", "flow_t1", "vis1")):
        warped = _backwarp(s[img], s[flow])
        m = _erode(s[vis][0] > 0)
        assert m.mean() > 0.3, f"too few visible pixels to test ({m.mean():.2f})"
        err = np.abs(warped - s["gt"]).mean(axis=0)[m]
        assert err.mean() < 0.02, f"{img}: mean abs error {err.mean():.4f}"
        assert (err < 0.05).mean() >= 0.9, f"{img}: only {(err < 0.05).mean():.2f} of pixels within 0.05"


def test_wrong_flow_is_detected():
    """The warp check has teeth: flipping the flow sign breaks it on moving content."""
    cfg = replace(SynthConfig(size=96).clean(), max_motion=20.0, motion_gamma=0.0, accel=0.0)
    s = render_triplet(np.random.default_rng(5), _pool(), cfg)
    m = _erode(s["vis0"][0] > 0)
    good = np.abs(_backwarp(s["img0"], s["flow_t0"]) - s["gt"]).mean(axis=0)[m].mean()
    bad = np.abs(_backwarp(s["img0"], -s["flow_t0"]) - s["gt"]).mean(axis=0)[m].mean()
    assert bad > 3 * good


def test_acceleration_makes_motion_nonlinear():
    """With acceleration, F_t0 and F_t1 are not the linear split -t*D, (1-t)*D of one displacement."""
    cfg = replace(SynthConfig(size=64, t=0.5).clean().static(), max_motion=16.0, accel=2.0, n_fg=(0, 0),
                  motion_gamma=0.3)
    # linear motion at t = 0.5 would give f0 == -f1 everywhere
    dev = [np.abs(s["flow_t0"] + s["flow_t1"]).max()
           for s in (render_triplet(np.random.default_rng(seed), _pool(), cfg) for seed in range(4))]
    assert max(dev) > 1.0


def test_slow_layers_barely_accelerate():
    """Acceleration scales with the layer's displacement: near-still frames have a near-still middle."""
    cfg = replace(SynthConfig(size=64, t=0.5).clean().static(), max_motion=0.5, accel=2.0, n_fg=(0, 0))
    for seed in range(4):
        s = render_triplet(np.random.default_rng(seed), _pool(), cfg)
        # |F_t0| at the middle of a 0.5 px move stays well under a pixel
        assert np.abs(s["flow_t0"]).max() < 0.6


def test_zero_motion_gives_still_frames():
    cfg = SynthConfig(size=64).clean().static()
    s = render_triplet(np.random.default_rng(3), _pool(), cfg)
    np.testing.assert_allclose(s["flow_t0"], 0.0, atol=1e-3)
    np.testing.assert_allclose(s["flow_t1"], 0.0, atol=1e-3)
    np.testing.assert_allclose(s["gt"], s["img0"], atol=1e-5)
    np.testing.assert_allclose(s["gt"], s["img1"], atol=1e-5)
    assert s["vis0"].mean() == s["valid"].mean() > 0.5


def test_t_zero_and_one_reproduce_inputs():
    pool = _pool()
    s0 = render_triplet(np.random.default_rng(4), pool, SynthConfig(size=64, t=0.0).clean())
    np.testing.assert_allclose(s0["gt"], s0["img0"], atol=1e-5)
    np.testing.assert_allclose(s0["flow_t0"], 0.0, atol=1e-3)
    assert np.abs(s0["gt"] - s0["img1"]).mean() > 1e-3
    s1 = render_triplet(np.random.default_rng(4), pool, SynthConfig(size=64, t=1.0).clean())
    np.testing.assert_allclose(s1["gt"], s1["img1"], atol=1e-5)
    np.testing.assert_allclose(s1["flow_t1"], 0.0, atol=1e-3)


def test_fixed_t_and_degradations_touch_inputs_only():
    cfg = replace(SynthConfig(size=64, t=0.5), p_noise=1.0, p_jpeg=1.0, p_blur=0.0, p_lighting=0.0)
    clean = render_triplet(np.random.default_rng(9), _pool(), cfg.clean())
    dirty = render_triplet(np.random.default_rng(9), _pool(), cfg)
    assert float(clean["t"]) == float(dirty["t"]) == 0.5
    # the scene is drawn first, so the ground truth is identical and only the inputs change
    np.testing.assert_array_equal(clean["gt"], dirty["gt"])
    np.testing.assert_array_equal(clean["flow_t0"], dirty["flow_t0"])
    assert np.abs(clean["img0"] - dirty["img0"]).mean() > 1e-3


def test_heldout_is_fixed():
    pool = _pool()
    a = make_heldout(pool, 3, size=32, seed=1)
    b = make_heldout(pool, 3, size=32, seed=1)
    assert a["img0"].shape == (3, 3, 32, 32) and a["t"].shape == (3,)
    for k in KEYS:
        assert torch.equal(a[k], b[k])


def test_dataloader_workers_differ():
    ds = SynthTriplets(_pool(), SynthConfig(size=32), seed=0, length=2)
    dl = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    batches = list(dl)
    assert len(batches) == 2 and batches[0]["img0"].shape == (2, 3, 32, 32)
    assert not torch.equal(batches[0]["img0"], batches[1]["img0"])


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="vsugsp"):
        SynthConfig(size=4)
    with pytest.raises(ValueError, match="vsugsp"):
        SynthConfig(t=1.5)
    with pytest.raises(ValueError, match="vsugsp"):
        SynthTriplets([np.zeros((10, 10), np.float32)])


def test_lighting_change_is_linear_in_time():
    cfg = replace(SynthConfig(size=48).clean().static(), p_lighting=1.0, max_gain=0.3, max_offset=0.05)
    s = render_triplet(np.random.default_rng(11), _pool(), cfg)
    t = float(s["t"])
    assert np.abs(s["img0"] - s["img1"]).mean() > 1e-3          # brightness did change
    inner = (s["img0"] > 0.02) & (s["img0"] < 0.98) & (s["img1"] > 0.02) & (s["img1"] < 0.98)
    blend = (1 - t) * s["img0"] + t * s["img1"]
    assert np.abs(blend - s["gt"])[inner].max() < 2e-3


def test_motion_blur_smooths_moving_frames_only():
    def grad_energy(img):
        return float(np.abs(np.diff(img, axis=-1)).mean() + np.abs(np.diff(img, axis=-2)).mean())

    base = replace(SynthConfig(size=64, t=0.5).clean(), n_fg=(0, 0), max_motion=20.0, motion_gamma=0.0,
                   accel=0.0, bg_rot=0.0, bg_zoom=0.0, max_exposure=1.0)
    sharp = render_triplet(np.random.default_rng(12), _pool(), base)
    blurred = render_triplet(np.random.default_rng(12), _pool(), replace(base, p_blur=1.0))
    assert grad_energy(blurred["gt"]) < 0.9 * grad_energy(sharp["gt"])
    np.testing.assert_array_equal(sharp["flow_t0"], blurred["flow_t0"])
    still = replace(base.static(), p_blur=1.0)
    a = render_triplet(np.random.default_rng(13), _pool(), still)
    np.testing.assert_allclose(a["gt"], a["img0"], atol=1e-5)


def test_cubic_resampling_keeps_the_triplet_equally_sharp():
    """Bilinear warps blur by a sub-pixel-phase-dependent amount; cubic keeps frames alike."""
    rng = np.random.default_rng(0)
    sharp = [(rng.random((300, 300, 3)) * 255).astype(np.uint8) for _ in range(3)]

    def spread(interp: str) -> float:
        cfg = replace(SynthConfig(size=64, t=0.5, interp=interp).clean(), n_fg=(0, 0), bg_scale=(1.0, 1.0),
                      bg_rot=0.0, bg_zoom=0.0, max_motion=6.0)
        ratios = []
        for seed in range(8):
            s = render_triplet(np.random.default_rng(seed), sharp, cfg)
            energy = [np.abs(cv2.Laplacian(s[k].transpose(1, 2, 0), cv2.CV_32F)).mean() for k in ("img0", "gt", "img1")]
            ratios.append(max(energy) / min(energy))
        return float(np.mean(ratios))

    assert spread("cubic") < spread("linear")
    with pytest.raises(ValueError, match="interp='nearest'"):
        SynthConfig(interp="nearest")
