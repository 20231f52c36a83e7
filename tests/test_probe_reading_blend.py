"""benchmarks/probe_reading_blend.py: the oracle picks per block, the learned blend starts as the mean."""
from __future__ import annotations

import pytest
import torch
from script_modules import load_script


@pytest.fixture(scope="module")
def probe():
    return load_script("benchmarks/probe_reading_blend.py")


def test_block_oracle_takes_the_closest_candidate_per_block(probe):
    torch.manual_seed(0)
    target = torch.rand(3, 20, 24)
    noise = torch.rand(3, 3, 20, 24) * 0.2
    cands = target + noise
    # candidate 1 is exact in the top-left 8×8 block, candidate 2 in the bottom-right (partial) block
    cands[1, :, :8, :8] = target[:, :8, :8]
    cands[2, :, 16:, 16:] = target[:, 16:, 16:]
    out = probe.block_oracle(cands, target, 8)
    assert torch.equal(out[:, :8, :8], target[:, :8, :8])
    assert torch.equal(out[:, 16:, 16:], target[:, 16:, 16:])
    # elsewhere each block is one whole candidate, the one with the least squared error there
    err = ((cands[:, :, 8:16, 8:16] - target[:, 8:16, 8:16]) ** 2).sum((1, 2, 3))
    assert torch.equal(out[:, 8:16, 8:16], cands[int(err.argmin()), :, 8:16, 8:16])
    # per pixel it can never be worse than any single candidate
    per_px = probe.block_oracle(cands, target, 1)
    assert ((per_px - target) ** 2).mean() <= min(((c - target) ** 2).mean() for c in cands)


def test_learned_blend_starts_as_the_mean_and_stack_round_trips(probe):
    torch.manual_seed(1)
    h, w = 18, 22  # not a multiple of the U-Net's stride 4: padded and cropped back
    warps = torch.rand(probe.WARPS, 3, h, w)
    tr = probe.Triplet(warps, torch.randn(6, h, w).abs(), torch.rand(1, h, w), torch.rand(3, h, w), torch.rand(3, h, w))
    batch = tr.stack()[None]
    back = probe.Triplet.unstack(batch)
    for a, b in zip(back, (warps, tr.cues, tr.still, tr.avg, tr.target)):
        assert torch.equal(a[0], b)
    net = probe.ReadingBlend().eval()
    with torch.no_grad():
        learned, target = probe.blended(net, batch)
        mean, _ = probe.blended(None, batch)
    assert torch.equal(target[0], tr.target)
    assert torch.allclose(learned, mean, atol=1e-6)
    assert torch.allclose(mean[0], tr.guard(tr.readings().mean(0)), atol=1e-6)
    # a trained head moves it: the weights are a softmax, so the output stays inside the warps' range
    with torch.no_grad():
        net.head.bias[3] = 5.0
        moved, _ = probe.blended(net, batch)
    assert not torch.allclose(moved, mean, atol=1e-3)
    assert torch.allclose(net(warps[None], tr.cues[None])[0], warps[3], atol=0.05)
