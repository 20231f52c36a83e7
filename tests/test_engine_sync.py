"""No host sync for the work counts during a pass, and t in fp32 whatever the network's dtype (issue 22).

On CUDA, turning a device tensor into a Python number waits for the device.  The
MAC accounting of a pruned pass (mask sums per decoder level) now stays on the
device and is read only when asked for; checked on CPU tensors by making every
tensor-to-host conversion fail during the pass.
"""
from __future__ import annotations

import contextlib
from fractions import Fraction

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsugsp.sparse import ReferenceBackend, TileBackend  # noqa: E402


@contextlib.contextmanager
def no_host_reads(monkeypatch):
    """Every read of a tensor's value on the host (int(), float(), bool(), .item(), .tolist()) fails."""
    def refuse(self, *args, **kw):
        raise AssertionError("a tensor read on the host during the pass")

    with monkeypatch.context() as m:
        for name in ("__int__", "__float__", "__bool__", "__index__", "item", "tolist"):
            m.setattr(torch.Tensor, name, refuse)
        yield


def _pair(h: int = 64, w: int = 96):
    g = torch.Generator().manual_seed(1)
    a = torch.rand(1, 3, h, w, generator=g)
    return a, torch.roll(a, 3, -1)


@pytest.mark.parametrize("backend", [TileBackend(), ReferenceBackend()], ids=["tiles", "reference"])
def test_a_pruned_pass_reads_no_count_on_the_host(net, backend, monkeypatch):
    a, b = _pair()
    with torch.inference_mode():
        with no_host_reads(monkeypatch):
            out = net(a, b, 0.5, mode="pruned", backend=backend, threshold=0.5)
        # the counts, read afterwards, are the masks' own: dense minus the pixels the masks skip
        per_px = [blk.macs_per_pixel() for blk in (net.dec8, net.dec4, net.dec2)]
        skipped = sum(int((~m.bool()).sum()) * p for m, p in zip(out.masks, per_px))
        assert out.mask_macs == out.dense_macs - skipped
        assert isinstance(out.macs, int) and isinstance(out.mask_macs, int)
        assert out.mask_macs <= out.macs <= out.dense_macs
        if isinstance(backend, ReferenceBackend):  # it computes exactly the masks' pixels
            assert out.macs == out.mask_macs


def test_tile_plan_counts_active_pixels_on_the_device(monkeypatch):
    from vsugsp.sparse.tiles import tile_plan

    mask = torch.zeros(1, 1, 40, 40, dtype=torch.bool)
    mask[0, 0, 3, 5] = mask[0, 0, 20, 30] = mask[0, 0, 21, 30] = True
    with no_host_reads(monkeypatch):
        plan = tile_plan(mask, 16)
    assert plan.active.dim() == 0 and plan.active_pixels == 3 and plan.executed_pixels == 2 * 256


def test_the_engine_gives_the_network_t_in_fp32(net):
    """A half network on the engine gets t as fp32 (fp16 would turn 0.4 into 0.39990234375)."""
    import dataclasses

    from vsugsp.engine import Engine
    from vsugsp.interpolator import build_interpolator
    from vsugsp.preset import load_preset

    interp = build_interpolator(load_preset("fast", device="cpu", flow_prior="none", mode="dense"), net)
    seen = []

    class Spy:
        """The interpolator, recording the t it is given."""

        def __getattr__(self, name):
            return getattr(interp, name)

        def encode(self, img):  # no network: features are not needed here
            return None

        def __call__(self, img0, img1, t, **kw):
            seen.append(t)
            return img0.float() * 0.5 + img1.float() * 0.5, 0, 0

    engine = Engine(dataclasses.replace(interp))
    engine.interp, engine.dtype = Spy(), torch.float16  # as on CUDA with precision fp16
    frame = np.zeros((3, 32, 48), np.float32)
    times = [Fraction(2, 5), Fraction(4, 5)]
    engine.interpolate(0, Fraction(2, 5), frame, frame, times)
    (t,) = seen
    assert t.dtype == torch.float32 and t.tolist() == [np.float32(0.4), np.float32(0.8)]


@pytest.mark.parametrize("tile", [None, 4])
def test_cap_mask_on_a_gpu_reads_nothing_on_the_host_and_keeps_the_same_pixels(tile, monkeypatch):
    """On CUDA tensors the under-the-cap shortcut (a host sync) is skipped: the top-k gives the same mask."""
    from vsugsp.model.masks import cap_mask

    g = torch.Generator().manual_seed(2)
    prob = torch.rand(2, 1, 24, 32, generator=g)
    for on in (0.05, 0.3, 0.9):  # under, near and over the cap
        mask = prob > 1 - on
        for cap in (0.25, 0.5):
            want = cap_mask(mask, prob, cap, tile)
            with no_host_reads(monkeypatch):
                monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
                got = cap_mask(mask, prob, cap, tile)
                monkeypatch.undo()
            assert torch.equal(got, want), (on, cap)


def test_a_dense_engine_pass_reads_nothing_on_the_host_before_its_download(net, monkeypatch):
    """realtime (dense) without a prior (CUDA where the prior pool falls behind): the frame and its
    work come out of a pass with no tensor read on the host."""
    from vsugsp.engine import Engine
    from vsugsp.interpolator import build_interpolator
    from vsugsp.preset import load_preset

    engine = Engine(build_interpolator(load_preset("realtime", device="cpu", flow_prior="none"), net))
    a, b = (x[0].numpy() for x in _pair())
    times = [Fraction(1, 2)]
    with no_host_reads(monkeypatch):
        image, spent = engine.render(0, times[0], a, b, times, host=False)
    assert image.shape == (3, 64, 96) and spent["executed_macs"] == spent["dense_macs"] > 0
