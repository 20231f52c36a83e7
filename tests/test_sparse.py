"""Masked 3×3 convolution: every backend equals the reference definition."""
import pytest
import torch
import torch.nn.functional as F

from vsugsp.sparse import masked_conv3x3
from vsugsp.sparse.tiles import tile_plan


def _masks(b, h, w, gen):
    yield "random", torch.rand(b, 1, h, w, generator=gen) > 0.5
    yield "empty", torch.zeros(b, 1, h, w, dtype=torch.bool)
    yield "full", torch.ones(b, 1, h, w, dtype=torch.bool)
    single = torch.zeros(b, 1, h, w, dtype=torch.bool)
    single[-1, 0, h // 2, w - 1] = True
    yield "single", single
    border = torch.zeros(b, 1, h, w, dtype=torch.bool)
    border[:, :, 0, :] = border[:, :, -1, :] = border[:, :, :, 0] = border[:, :, :, -1] = True
    yield "border", border
    sparse = torch.rand(b, 1, h, w, generator=gen) > 0.97
    yield "sparse", sparse


@pytest.mark.parametrize("shape", [(1, 3, 8, 8), (2, 5, 13, 17), (3, 4, 33, 40), (2, 6, 1, 1)])
@pytest.mark.parametrize("tile", [4, 16])
def test_tiles_equal_reference(shape, tile):
    from vsugsp.sparse.backends import TileBackend

    tiles = TileBackend(tile, dense_fallback=float("inf"))  # tiles even where the mask is full

    gen = torch.Generator().manual_seed(sum(shape))
    b, c, h, w = shape
    x = torch.randn(b, c, h, w, generator=gen)
    wt = torch.randn(7, c, 3, 3, generator=gen)
    bias = torch.randn(7, generator=gen)
    slopes = torch.rand(7, generator=gen)
    for name, m in _masks(b, h, w, gen):
        for prelu, bb in ((None, bias), (slopes, None), (slopes, bias)):
            ref = masked_conv3x3(x, wt, bb, m, prelu=prelu, backend="reference")
            got = tiles.conv(x, tiles.plan(m), wt, bb, prelu)
            assert got.shape == ref.shape
            assert torch.allclose(got, ref, atol=1e-5), f"{name} prelu={prelu is not None}"
            assert (got[~m.expand_as(got)] == 0).all(), name


def test_reference_is_masked_dense_conv():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 9, 11, generator=gen)
    w = torch.randn(4, 3, 3, 3, generator=gen)
    m = torch.rand(2, 1, 9, 11, generator=gen) > 0.4
    y = masked_conv3x3(x, w, None, m)
    dense = F.conv2d(x, w, None, padding=1)
    assert torch.allclose(y, dense * m)


def test_channels_last_input_gives_same_result():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 8, 20, 24, generator=gen)
    w = torch.randn(8, 8, 3, 3, generator=gen)
    m = torch.rand(2, 1, 20, 24, generator=gen) > 0.5
    a = masked_conv3x3(x, w, None, m, backend="cpu")
    b = masked_conv3x3(x.contiguous(memory_format=torch.channels_last), w, None, m, backend="cpu")
    assert torch.allclose(a, b, atol=1e-6)


def test_tile_plan_counts():
    m = torch.zeros(2, 1, 20, 35, dtype=torch.bool)
    m[0, 0, 0, 0] = True  # tile (0, 0) of image 0
    m[1, 0, 19, 34] = True  # last (partial) tile of image 1
    m[1, 0, 17, 18] = True  # tile (1, 1) of image 1
    plan = tile_plan(m, 16)
    assert plan.total == 2 * 2 * 3
    assert plan.count == 3
    assert plan.active_pixels == 3
    assert plan.executed_pixels == 3 * 256
    assert sorted(zip(plan.b.tolist(), plan.ty.tolist(), plan.tx.tolist())) == [(0, 0, 0), (1, 1, 1), (1, 1, 2)]


@pytest.mark.parametrize(
    "args, match",
    [
        (((2, 3, 8, 8), (7, 3, 3, 3), (2, 1, 8, 9)), "does not match"),
        (((2, 3, 8, 8), (7, 4, 3, 3), (2, 1, 8, 8)), "is not Co×3×3×3"),
        (((2, 3, 8, 8), (7, 3, 3, 3), (2, 2, 8, 8)), "mask B×1×H×W"),
    ],
)
def test_bad_shapes_are_named(args, match):
    xs, ws, ms = args
    with pytest.raises(ValueError, match=match):
        masked_conv3x3(torch.zeros(xs), torch.zeros(ws), None, torch.zeros(ms, dtype=torch.bool))


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown masked-conv backend 'gpu'"):
        masked_conv3x3(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3), None,
                       torch.ones(1, 1, 4, 4, dtype=torch.bool), backend="gpu")


def test_warps_evaluated_only_where_the_tiles_read_give_the_dense_block_output():
    """The tile backend warps the features at the pixels its tiles read (Warp parts): same block output."""
    from vsugsp.model import ModelConfig, UGSPNet
    from vsugsp.model.warp import Warp
    from vsugsp.sparse.backends import TileBackend

    torch.manual_seed(0)
    net = UGSPNet(ModelConfig("small")).eval()
    block = net.dec4
    c_feat = block.convs()[0].conv.in_channels - 2 * 36 - 4
    h, w = 45, 70  # not a multiple of the tile: the round-up rows must stay zero
    feat = torch.randn(2, c_feat, h, w)
    img0, img1 = torch.randn(1, 36, h, w).expand(2, -1, -1, -1), torch.randn(2, 36, h, w)
    flow = torch.randn(2, 4, h, w) * 6
    mask = torch.rand(2, 1, h, w) < 0.15
    be = TileBackend(dense_fallback=float("inf"))
    plan = be.plan(mask)
    w0, w1 = Warp(img0, flow[:, :2]), Warp(img1, flow[:, 2:])
    with torch.inference_mode():
        lazy = be.run_block(block.weights(), [feat, w0, w1, flow], plan)
        dense = be.run_block(block.weights(), torch.cat([feat, w0.dense(), w1.dense(), flow], 1), plan)
    assert torch.equal(lazy, dense)
