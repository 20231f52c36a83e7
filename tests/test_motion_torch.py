"""The network's quadratic prior (issue 23 item 3): the torch path equals the numpy one; B×8 motion tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vsugsp.model import motion, prior

H, W = 20, 28


def _flow(seed: int, scale: float = 8.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((H, W, 2)) * scale).astype(np.float32)


def _t(f: "np.ndarray | None") -> "torch.Tensor | None":
    return None if f is None else torch.from_numpy(f.transpose(2, 0, 1).copy())[None]


@pytest.mark.parametrize("reading", motion.READINGS)
@pytest.mark.parametrize("sides", ["both", "left", "right", "none"])
@pytest.mark.parametrize("t", [0.0, 0.3, 0.5, 1.0])
def test_torch_quadratic_equals_numpy(reading, sides, t):
    f01, f10, f0m, f12 = _flow(0), _flow(1), _flow(2), _flow(3)
    f0m = f0m if sides in ("both", "left") else None
    f12 = f12 if sides in ("both", "right") else None
    want = np.concatenate(motion.quadratic_flows_at(f01, f10, f0m, f12, t, reading=reading), -1)
    got = motion.quadratic_flows_at_torch(_t(f01), _t(f10), _t(f0m), _t(f12), t, reading=reading)
    got = got[0].permute(1, 2, 0).numpy()
    # partly trusted accelerations: the test reaches the ramps, not only 0 and 1
    w = motion.accel_weight(motion.acceleration(f01, _flow(2)), None)
    assert 0.05 < ((w > 0) & (w < 1)).mean()
    np.testing.assert_allclose(got, want, atol=2e-4)


@pytest.mark.parametrize("sides", ["both", "none"])
def test_several_readings_at_once_are_each_reading_alone_bit_for_bit(sides):
    """The prior alone's ensemble reads the motion several ways from one acceleration estimate."""
    f01, f10, f0m, f12 = (_t(_flow(k)) for k in range(4))
    pair = torch.cat([f01, f10], 1)
    m = motion.motion_tensor(pair, torch.cat([f0m, f0m], 1), torch.cat([f12, f12], 1)) if sides == "both" else pair
    tt = torch.tensor([0.3, 0.6]).view(2, 1, 1, 1)
    m = m.expand(2, -1, -1, -1)
    order = ("trajectory", "both", "own", "mixed")
    got = prior.flows_at_readings(m, tt, order)
    assert len(got) == 4
    for reading, flows in zip(order, got):
        assert torch.equal(flows, prior.flows_at(m, tt, reading=reading)), reading
    assert not torch.equal(got[0], got[1])
    with pytest.raises(ValueError, match="reading='sideways'"):
        prior.flows_at_readings(m, tt, ("both", "sideways"))


def test_a_missing_neighbour_as_nan_reads_as_none():
    f01, f10, f0m, f12 = (_t(_flow(k)) for k in range(4))
    m = motion.motion_tensor(torch.cat([f01, f10], 1), None, torch.cat([f12, f12], 1))
    assert m.shape == (1, 8, H, W) and torch.isnan(m[:, 4:6]).all()
    tt = torch.full((1, 1, 1, 1), 0.4)
    want = motion.quadratic_flows_at_torch(f01, f10, None, f12, tt)
    assert torch.equal(prior.flows_at(m, tt), want)


def test_constant_velocity_motion_is_the_linear_prior_bit_for_bit():
    pair = torch.cat([_t(_flow(5)), _t(_flow(6))], 1)
    # neighbours moving at the same velocity: F(0→−1) = −F(0→1), F(1→2) = −F(1→0)
    left = torch.cat([-pair[:, 2:], -pair[:, :2]], 1)  # pair (−1, 0): its F(1→0) = −F(0→1)
    right = torch.cat([-pair[:, 2:], -pair[:, :2]], 1)  # pair (1, 2): its F(0→1) = −F(1→0)
    m = motion.motion_tensor(pair, left, right)
    assert torch.equal(m[:, 4:6], -pair[:, :2]) and torch.equal(m[:, 6:8], -pair[:, 2:])
    tt = torch.tensor([0.25, 0.5, 0.8]).view(3, 1, 1, 1)
    assert torch.equal(prior.flows_at(m.expand(3, -1, -1, -1), tt), prior.flows_at(pair.expand(3, -1, -1, -1), tt))
    # and an accelerating one is not the linear prior
    acc = motion.motion_tensor(pair, left + 1.5, right)
    assert not torch.allclose(prior.flows_at(acc, tt[:1]), prior.flows_at(pair, tt[:1]))


def test_swap_and_mirror_of_a_motion_are_the_swapped_and_mirrored_flows():
    m = motion.motion_tensor(torch.cat([_t(_flow(7)), _t(_flow(8))], 1),
                             torch.cat([_t(_flow(9)), _t(_flow(10))], 1), torch.cat([_t(_flow(11)), _t(_flow(12))], 1))
    tt = torch.full((1, 1, 1, 1), 0.3)
    f = prior.flows_at(m, tt)
    # the time-swapped pair at 1 − t: the same two flows, frame 1's first
    torch.testing.assert_close(prior.flows_at(prior.swap(m), 1 - tt), torch.cat([f[:, 2:], f[:, :2]], 1),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(prior.flows_at(prior.mirror(m), tt), prior.mirror(f), atol=1e-4, rtol=0)
