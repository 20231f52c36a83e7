"""The backward warp: OpenCV's remap on the CPU gives grid_sample's numbers, and is used only where it may be."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsugsp.model import opencv, warp  # noqa: E402

needs_exact_remap = pytest.mark.skipif(opencv.exact_remap() is None,
                                       reason="OpenCV missing or its remap rounds positions")


def _case(b=2, c=3, h=37, w=53, reach=12.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(b, c, h, w, generator=g)
    flow = (torch.rand(b, 2, h, w, generator=g) - 0.5) * 2 * reach  # many samples past the borders
    return img, flow


def _grid_sample(img, flow):
    return warp._sample(img, warp._grid(flow)).to(img.dtype)


@needs_exact_remap
@pytest.mark.parametrize("shape", [(2, 3, 37, 53), (1, 2, 144, 176), (3, 1, 8, 9), (1, 4, 20, 1)])
def test_opencv_warp_gives_grid_samples_numbers(shape, monkeypatch):
    b, c, h, w = shape
    img, flow = _case(b, c, h, w)
    calls = []
    real = warp._remap
    monkeypatch.setattr(warp, "_remap", lambda *a: calls.append(1) or real(*a))
    got = warp.backwarp(img, flow)
    assert calls, "the CPU warp did not take OpenCV's path"
    assert got.shape == (b, c, h, w) and got.dtype == img.dtype
    torch.testing.assert_close(got, _grid_sample(img, flow), atol=2e-5, rtol=0)


@needs_exact_remap
def test_opencv_warp_reads_integer_moves_exactly_and_replicates_borders():
    img = torch.arange(12.0).view(1, 1, 3, 4)
    flow = torch.zeros(1, 2, 3, 4)
    flow[:, 0] = 1.0  # one pixel right: the last column reads itself (border)
    out = warp.backwarp(img, flow)[0, 0]
    assert torch.equal(out, torch.tensor([[1.0, 2, 3, 3], [5, 6, 7, 7], [9, 10, 11, 11]]))
    flow[:, 0], flow[:, 1] = -0.25, -5.0  # above the frame: the first row, a quarter of the way left
    out = warp.backwarp(img, flow)[0, 0]
    torch.testing.assert_close(out, torch.tensor([0.0, 0.75, 1.75, 2.75]).expand(3, 4), atol=1e-6, rtol=0)


@needs_exact_remap
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_opencv_warp_keeps_a_half_precision_images_dtype(dtype):
    img, flow = _case()
    got = warp.backwarp(img.to(dtype), flow)
    assert got.dtype == dtype
    torch.testing.assert_close(got, _grid_sample(img.to(dtype), flow))


def test_grid_sample_serves_gradients_feature_maps_and_no_opencv(monkeypatch):
    img, flow = _case(c=3)
    monkeypatch.setattr(warp, "_remap", lambda *a: pytest.fail("OpenCV's warp used"))
    img.requires_grad_(True)
    out = warp.backwarp(img, flow)
    out.sum().backward()  # training: grid_sample, which has a gradient
    assert img.grad is not None and img.grad.abs().sum() > 0
    feats, _ = _case(c=warp.REMAP_MAX_CHANNELS + 1)
    with torch.no_grad():
        warp.backwarp(feats, flow)  # many channels: grid_sample weighs each pixel once for all
        monkeypatch.setattr(warp, "exact_remap", lambda: None)
        torch.testing.assert_close(warp.backwarp(img.detach(), flow), _grid_sample(img.detach(), flow))


def test_exact_remap_refuses_a_remap_that_rounds_positions(monkeypatch):
    cv2 = pytest.importorskip("cv2")
    real = cv2.remap

    def rounded(src, mx, my, *args, **kw):  # OpenCV 4's fixed-point tables: 1/32 pixel
        return real(src, np.round(mx * 32) / 32, np.round(my * 32) / 32, *args, **kw)

    check = opencv.exact_remap.__wrapped__
    if opencv.exact_remap() is not None:
        assert check() is cv2
    monkeypatch.setattr(cv2, "remap", rounded)
    assert check() is None
