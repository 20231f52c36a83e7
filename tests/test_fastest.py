"""FastestBackend: per decoder level the fastest backend, timed once; results are the reference's."""
from __future__ import annotations

import pytest
import torch

from vsugsp.sparse.backends import FastestBackend, ReferenceBackend, TileBackend


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0


def _costly(base: type, name: str, seconds: float, clock: _Clock, calls: list[str]):
    """``base`` whose block (and conv) advances the fake clock by ``seconds``."""

    class Costly(base):
        inside = False  # a block's own convs are not counted again

        def run_block(self, block, x, plan):
            calls.append(name)
            clock.now += seconds
            self.inside = True
            try:
                return super().run_block(block, x, plan)
            finally:
                self.inside = False

        def conv(self, x, plan, weight, bias, prelu):
            if not self.inside:
                calls.append(name)
                clock.now += seconds
            return super().conv(x, plan, weight, bias, prelu)

    Costly.name = name
    return Costly()


def _block_and_input():
    from vsugsp.model.blocks import DecoderBlock

    torch.manual_seed(0)
    blk = DecoderBlock(10, 12, 2, 9).eval()
    x = torch.randn(2, 10, 40, 52)
    mask = torch.rand(2, 1, 40, 52) < 0.1
    return blk, x, mask


@pytest.mark.parametrize("tiles_s, ref_s, winner", [(0.002, 0.005, "tiles"), (0.009, 0.005, "reference")])
@torch.no_grad()
def test_each_level_keeps_the_faster_with_the_reference_result(tiles_s, ref_s, winner):
    clock, calls = _Clock(), []
    tiles = _costly(TileBackend, "tiles", tiles_s, clock, calls)
    ref = _costly(ReferenceBackend, "reference", ref_s, clock, calls)
    be = FastestBackend([tiles, ref], trials=2, clock=lambda: clock.now)
    blk, x, mask = _block_and_input()
    want, _ = blk.forward_pruned(x, mask, ReferenceBackend())
    got, n = blk.forward_pruned(x, mask, be)
    assert torch.allclose(got, want, atol=1e-5)
    assert calls == ["tiles"] * 3 + ["reference"] * 3  # warm-up + 2 timed each
    [(key, chosen)] = be.chosen.items()
    assert chosen.name == winner and key == ("cpu", 2, 40, 52)
    assert be.timings[key] == pytest.approx({"tiles": tiles_s * 1000, "reference": ref_s * 1000})
    # the reference computes every pixel: counted as dense, the tiles as their whole tiles
    assert n == (mask.numel() if winner == "reference" else TileBackend().executed_pixels(TileBackend().plan(mask)))
    calls.clear()
    again, _ = blk.forward_pruned(x, mask, be)  # decided: one run, no trials
    assert calls == [winner] and torch.allclose(again, want, atol=1e-5)
    calls.clear()
    other = torch.rand(1, 1, 24, 20) < 0.5  # another level size: timed afresh
    be.conv(torch.randn(1, 10, 24, 20), be.plan(other), blk.head.conv.weight, None, None)
    assert len(calls) == 6 and len(be.chosen) == 2


def test_the_tile_path_through_fastest_matches_the_reference_on_cpu_tensors():
    from vsugsp.sparse import masked_conv3x3

    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 7, 33, 49, generator=g)
    w, b, a = torch.randn(5, 7, 3, 3, generator=g), torch.randn(5, generator=g), torch.rand(5, generator=g)
    mask = torch.rand(1, 1, 33, 49, generator=g) < 0.2
    be = FastestBackend([TileBackend(8, dense_fallback=float("inf"))])
    got = masked_conv3x3(x, w, b, mask, prelu=a, backend=be)
    want = masked_conv3x3(x, w, b, mask, prelu=a, backend="reference")
    assert torch.allclose(got, want, atol=1e-5) and be.chosen[("cpu", 1, 33, 49)].name == "tiles"


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="at least one candidate"):
        FastestBackend([])
    with pytest.raises(ValueError, match="trials=0"):
        FastestBackend([ReferenceBackend()], trials=0)
