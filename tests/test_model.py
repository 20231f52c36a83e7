"""UGSPNet: shapes, modes, masks, MAC accounting, weights files."""
import pytest
import torch

from vsugsp.model import ModelConfig, UGSPNet, load, save
from vsugsp.model.masks import forced_masks, labels_from_uncertainty
from vsugsp.sparse.backends import TileBackend

#: the tile backend with 4×4 tiles: several tiles even on the tests' small frames
TILES4 = TileBackend(4)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    n = UGSPNet(ModelConfig(width="small")).eval()
    # random init predicts near-zero flow; make mask logits decisive so masks are mixed
    with torch.no_grad():
        for blk in (n.dec16, n.dec8, n.dec4):
            blk.fuse.weight[-8:] *= 40
    return n


def _pair(b=2, h=37, w=53, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g), torch.rand(b, 3, h, w, generator=g)


@torch.no_grad()
def test_shapes_odd_sizes_and_range(net):
    a, b = _pair(2, 37, 53)
    for mode in ("dense", "pruned"):
        out = net(a, b, 0.5, mode=mode)
        assert out.image.shape == (2, 3, 37, 53)
        assert out.flow.shape == (2, 4, 37, 53)
        assert out.uncertainty.shape == (2, 1, 37, 53)
        assert 0.0 <= float(out.image.min()) and float(out.image.max()) <= 1.0
    assert len(net(a, b, 0.5, mode="pruned", backend=TILES4).masks) == 3


@torch.no_grad()
def test_time_scalar_or_per_sample(net):
    a, b = _pair(2)
    both = net(a, b, torch.tensor([0.25, 0.75]), mode="dense").image
    first = net(a[:1], b[:1], 0.25, mode="dense").image
    second = net(a[1:], b[1:], 0.75, mode="dense").image
    assert torch.allclose(both[0], first[0], atol=1e-5)
    assert torch.allclose(both[1], second[0], atol=1e-5)
    assert not torch.allclose(both[0], net(a[:1], b[:1], 0.75, mode="dense").image[0], atol=1e-4)


@torch.no_grad()
def test_pruned_with_all_on_masks_equals_dense(net):
    a, b = _pair(1, 64, 96)
    dense = net(a, b, 0.3, mode="dense")
    sizes = [(8, 12), (16, 24), (32, 48)]
    ones = [torch.ones(1, 1, *s, dtype=torch.bool) for s in sizes]
    for backend in ("reference", TILES4):
        pr = net(a, b, 0.3, mode="pruned", backend=backend, masks=ones)
        assert torch.allclose(pr.image, dense.image, atol=1e-5)
        assert pr.mask_macs == dense.dense_macs


@torch.no_grad()
def test_cpu_backend_equals_reference_on_predicted_masks(net):
    from vsugsp.model.masks import hard_mask, tile_union

    a, b = _pair(2, 64, 80, seed=3)
    ref = net(a, b, 0.5, mode="pruned", backend="reference", mask_tile=None)  # per pixel
    cpu = net(a, b, 0.5, mode="pruned", backend=TILES4, max_density=0.5)
    dens = [float(m.float().mean()) for m in cpu.masks]
    assert all(0.0 < d < 1.0 for d in dens), dens  # the masks really prune something
    # the CPU computes whole tiles, so its masks are widened to them ...
    for m in cpu.masks:
        assert torch.equal(tile_union(m, TILES4.tile), m)
    uncapped = net(a, b, 0.5, mode="pruned", backend=TILES4)
    assert torch.equal(ref.masks[0], hard_mask(ref.mask_logits[0], 0.5))
    assert torch.equal(uncapped.masks[0], tile_union(ref.masks[0], TILES4.tile))
    # ... and on those masks it computes exactly what the per-pixel reference computes
    same = net(a, b, 0.5, mode="pruned", backend="reference", masks=cpu.masks)
    assert torch.allclose(same.image, cpu.image, atol=1e-5)
    assert same.mask_macs == cpu.mask_macs <= cpu.macs < ref.dense_macs


@torch.no_grad()
def test_per_pixel_backends_compute_the_cpu_tiles(net):
    """A backend without tiles of its own (the CUDA kernels, the reference) gets the masks of the
    CPU's default tile backend, so a preset gives the same frames on every device (issue 22:
    per-pixel masks on CUDA cost the realtime preset up to 1.2 dB against the CPU)."""
    from vsugsp.model.masks import tile_union
    from vsugsp.sparse.backends import FastestBackend, ReferenceBackend

    a, b = _pair(1, 160, 192, seed=5)  # 1/8 level 20×24: 2×2 tiles of 16
    cpu = net(a, b, 0.5, mode="pruned", backend=TileBackend(), max_density=[0.5, 0.6, 0.6])
    dens = [float(m.float().mean()) for m in cpu.masks]
    assert all(0.0 < d < 1.0 for d in dens), dens  # the masks really prune something
    for backend in ("reference", FastestBackend([ReferenceBackend()], trials=1)):
        other = net(a, b, 0.5, mode="pruned", backend=backend, max_density=[0.5, 0.6, 0.6])
        for m, want in zip(other.masks, cpu.masks):
            assert torch.equal(m, want) and torch.equal(tile_union(m, TileBackend().tile), m)
        torch.testing.assert_close(other.image, cpu.image, atol=1e-5, rtol=0)


def test_tile_union_and_tile_caps():
    from vsugsp.model.masks import cap_mask, tile_union

    m = torch.zeros(1, 1, 6, 10, dtype=torch.bool)
    m[0, 0, 0, 0] = m[0, 0, 5, 9] = True
    u = tile_union(m, 4)  # tiles [0:4, 0:4] and the partial edge tile [4:6, 8:10]
    assert u.shape == m.shape and int(u.sum()) == 16 + 4
    assert u[0, 0, :4, :4].all() and u[0, 0, 4:, 8:].all()
    # 4 of 6 tiles have pixels on; a cap of 1/3 keeps the 2 with the most probability mass
    mask = torch.zeros(1, 1, 8, 12, dtype=torch.bool)
    prob = torch.zeros(1, 1, 8, 12)
    for (y, x), n, p in [((0, 0), 1, 0.9), ((0, 4), 6, 0.6), ((4, 4), 3, 0.7), ((4, 8), 16, 0.55)]:
        i = torch.arange(n)
        mask[0, 0, y + i // 4, x + i % 4] = True
        prob[0, 0, y:y + 4, x:x + 4] = p
    capped = cap_mask(mask, prob, 1 / 3, tile=4)
    assert (capped <= mask).all()
    assert torch.equal(capped[0, 0, 4:8, 8:12], mask[0, 0, 4:8, 8:12])  # mass 16 x 0.55 = 8.8
    assert torch.equal(capped[0, 0, 0:4, 4:8], mask[0, 0, 0:4, 4:8])  # 6 x 0.6 = 3.6
    assert not capped[0, 0, 0:4, 0:4].any() and not capped[0, 0, 4:8, 4:8].any()  # 0.9 and 2.1
    assert torch.equal(cap_mask(mask, prob, 1.0, tile=4), mask)


@torch.no_grad()
def test_masks_are_nested(net):
    a, b = _pair(2, 64, 80, seed=4)
    m = net(a, b, 0.5, mode="pruned", backend=TILES4).masks
    for coarse, fine in zip(m, m[1:]):
        up = torch.nn.functional.interpolate(coarse.float(), size=fine.shape[-2:], mode="nearest") > 0.5
        assert not (fine & ~up).any()


@torch.no_grad()
def test_macs_scale_linearly_with_density(net):
    a, b = _pair(1, 128, 128)
    sizes = [(16, 16), (32, 32), (64, 64)]
    full = net(a, b, 0.5, mode="dense")
    macs = {}
    for d in (0.0, 0.25, 0.5, 1.0):
        ms = forced_masks(sizes, 1, d, tile=4, generator=torch.Generator().manual_seed(0))
        for m in ms:
            assert abs(float(m.float().mean()) - d) < 1e-6
        macs[d] = net(a, b, 0.5, mode="pruned", backend=TILES4, masks=ms).macs
    fixed = macs[0.0]
    prunable = full.dense_macs - fixed
    for d in (0.25, 0.5, 1.0):
        assert macs[d] - fixed == pytest.approx(d * prunable, rel=1e-9)


def test_base_dense_macs_at_paper_size():
    net = UGSPNet(ModelConfig(width="base"))
    with torch.no_grad():
        out = net(torch.rand(1, 3, 256, 448), torch.rand(1, 3, 256, 448), 0.5, mode="dense")
    # the paper's release: ~31.8 GMAC at 256x448
    assert 15e9 < out.dense_macs < 40e9, f"base dense MACs at 256x448: {out.dense_macs / 1e9:.2f} G"


def test_train_mode_gradients_reach_mask_logits():
    torch.manual_seed(1)
    net = UGSPNet(ModelConfig(width="small")).train()
    a, b = _pair(2, 64, 64)
    out = net(a, b, 0.5, mode="train")
    assert out.dense is not None and out.dense.image.shape == out.image.shape
    out.image.mean().backward()
    # the last 8 fuse outputs of each non-final block are the next level's mask logits
    for blk in (net.dec16, net.dec8, net.dec4):
        assert blk.fuse.weight.grad[-8:].abs().sum() > 0


@torch.no_grad()
def test_train_then_pruned_uses_the_same_weights():
    torch.manual_seed(2)
    net = UGSPNet(ModelConfig(width="small"))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    a, b = _pair(1, 32, 32)
    net.train()
    net(a, b, 0.5, mode="train")
    net.eval()
    net(a, b, 0.5, mode="pruned", backend=TILES4)
    after = net.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


@torch.no_grad()
def test_cached_features_give_identical_output(net):
    a, b = _pair(1, 40, 48)
    fa, fb = net.encode(a), net.encode(b)
    ts = torch.tensor([0.25, 0.5, 0.75])
    batched = net(a.expand(3, -1, -1, -1), b.expand(3, -1, -1, -1), ts, mode="pruned", backend=TILES4, feats0=fa, feats1=fb)
    for i, t in enumerate(ts):
        single = net(a, b, float(t), mode="pruned", backend=TILES4)
        assert torch.allclose(batched.image[i], single.image[0], atol=1e-5)


@torch.no_grad()
def test_scale_runs_smaller_and_returns_full_size(net):
    a, b = _pair(1, 96, 128)
    full = net(a, b, 0.5, mode="dense")
    half = net(a, b, 0.5, mode="dense", scale=0.5)
    assert half.image.shape == full.image.shape
    assert half.dense_macs < full.dense_macs / 3


def test_bad_arguments():
    net = UGSPNet(ModelConfig(width="small"))
    a, b = _pair(1, 32, 32)
    with pytest.raises(ValueError, match="mode='sparse'"):
        net(a, b, 0.5, mode="sparse")
    with pytest.raises(ValueError, match="scale=0"):
        net(a, b, 0.5, scale=0)
    with pytest.raises(ValueError, match="B×3×H×W"):
        net(a, b[:, :, :16], 0.5)
    with pytest.raises(ValueError, match="mask_tile=0"):
        net(a, b, 0.5, mask_tile=0)
    with pytest.raises(ValueError, match="width='huge'"):
        ModelConfig(width="huge")


def test_weights_roundtrip_and_errors(tmp_path, net):
    p = save(net, tmp_path / "w.pt", {"steps": 3})
    back = load(p)
    assert back.config == net.config and back.meta["steps"] == 3
    a, b = _pair(1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(back(a, b, 0.5).image, net(a, b, 0.5).image)
    with pytest.raises(ValueError, match="does not exist"):
        load(tmp_path / "missing.pt")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="corrupt"):
        load(bad)
    other = tmp_path / "other.pt"
    torch.save({"hello": torch.zeros(1)}, other)
    with pytest.raises(ValueError, match="not a vsugsp weights file"):
        load(other)
    payload = torch.load(p, weights_only=True)
    payload["config"]["width"] = "base"
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="does not match config"):
        load(tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="no packaged weights named 'nope'"):
        load("nope")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, net, value):
    payload = torch.load(save(net, tmp_path / "w.pt"), weights_only=True)
    key = sorted(payload["state_dict"])[3]
    payload["state_dict"][key].view(-1)[0] = value
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=rf"corrupt: tensor '{key}' has 1 non-finite"):
        load(tmp_path / "bad.pt")
    for k in payload["state_dict"]:  # every float NaN (the probe)
        if payload["state_dict"][k].is_floating_point():
            payload["state_dict"][k].fill_(value)
    torch.save(payload, tmp_path / "all.pt")
    with pytest.raises(ValueError, match="non-finite"):
        load(tmp_path / "all.pt")


def test_labels_from_uncertainty_top_fraction_and_nested():
    s = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(5))
    labels = labels_from_uncertainty(s, [(8, 8), (16, 16), (32, 32)], [0.5, 0.5, 0.5])
    assert float(labels[0].mean()) == pytest.approx(0.5, abs=0.02)
    for coarse, fine in zip(labels, labels[1:]):
        up = torch.nn.functional.interpolate(coarse, size=fine.shape[-2:], mode="nearest")
        assert (fine <= up).all()
        assert float(fine.mean()) < float(coarse.mean())
    # the most uncertain region is labelled "compute"
    s2 = torch.zeros(1, 1, 32, 32)
    s2[..., :8, :8] = 5.0
    lab = labels_from_uncertainty(s2, [(4, 4)], 1 / 16)[0]
    assert lab[0, 0, 0, 0] == 1 and lab.sum() == 1


def test_cap_mask_keeps_the_most_likely_pixels():
    from vsugsp.model.masks import cap_mask

    prob = torch.arange(20, dtype=torch.float32).view(1, 1, 4, 5) / 20
    mask = torch.ones(1, 1, 4, 5, dtype=torch.bool)
    mask[0, 0, 3, 4] = False  # the most likely pixel is off: a cap must not turn it on
    capped = cap_mask(mask, prob, 0.25)  # 5 of 20 pixels
    assert int(capped.sum()) == 5
    assert capped.flatten().nonzero().flatten().tolist() == [14, 15, 16, 17, 18]
    assert torch.equal(cap_mask(mask, prob, 1.0), mask)
    few = torch.zeros_like(mask)
    few[0, 0, 0, :2] = True  # already under the cap: unchanged
    assert torch.equal(cap_mask(few, prob, 0.25), few)
    with pytest.raises(ValueError, match="max_density=0"):
        cap_mask(mask, prob, 0)


@torch.no_grad()
def test_max_density_caps_each_level(net):
    a, b = _pair(2, 64, 96)
    free = net(a, b, 0.5, mode="pruned", backend=TILES4, threshold=0.0)
    dens = [float(m.float().mean()) for m in free.masks]
    assert dens[0] > 0.5  # the cap below must bite for the test to mean anything
    caps = [0.5, 0.4, 0.3]
    out = net(a, b, 0.5, mode="pruned", backend=TILES4, threshold=0.0, max_density=caps)
    for m, cap, d in zip(out.masks, caps, dens):
        per_image = m.flatten(1).float().mean(1)
        assert float(per_image.max()) <= cap + 1e-6
        assert float(m.float().mean()) <= d
    assert out.mask_macs < free.mask_macs
    for child, parent in zip(out.masks[1:], out.masks[:-1]):  # still nested
        up = torch.nn.functional.interpolate(parent.float(), size=child.shape[-2:], mode="nearest") > 0.5
        assert not bool((child & ~up).any())
    same = net(a, b, 0.5, mode="pruned", backend=TILES4, max_density=1.0)
    assert torch.equal(same.image, net(a, b, 0.5, mode="pruned", backend=TILES4).image)
    with pytest.raises(ValueError, match="max_density=\\[0.5, 0.5\\]"):
        net(a, b, 0.5, mode="pruned", backend=TILES4, max_density=[0.5, 0.5])
    with pytest.raises(ValueError, match="max_density=1.5"):
        net(a, b, 0.5, mode="pruned", backend=TILES4, max_density=1.5)


@torch.no_grad()
def test_ensemble_averages_the_symmetric_views(net):
    from vsugsp.model.ensemble import check_passes, ensemble_forward

    a, b = _pair(2, 40, 48)
    t = torch.tensor([0.25, 0.5])
    one = net(a, b, t, mode="dense")
    img1, macs1, dense1 = ensemble_forward(net, a, b, t, 1, mode="dense")
    assert torch.equal(img1, one.image) and macs1 == one.macs and dense1 == one.dense_macs
    swapped = net(b, a, 1 - t, mode="dense").image
    img2, macs2, _ = ensemble_forward(net, a, b, t, 2, mode="dense",
                                      feats0=net.encode(a), feats1=net.encode(b))
    assert torch.allclose(img2, (one.image + swapped) / 2, atol=1e-6)
    assert macs2 == 2 * one.macs
    mirrored = net(a.flip(-1), b.flip(-1), t, mode="dense").image.flip(-1)
    both = net(b.flip(-1), a.flip(-1), 1 - t, mode="dense").image.flip(-1)
    img4, macs4, _ = ensemble_forward(net, a, b, t, 4, mode="dense")
    assert torch.allclose(img4, (one.image + swapped + mirrored + both) / 4, atol=1e-6)
    assert macs4 == 4 * one.macs
    assert not torch.allclose(img4, one.image, atol=1e-4)  # the views do differ
    for bad in (0, 3, True, "2"):
        with pytest.raises(ValueError, match="ensemble="):
            check_passes(bad)


@torch.no_grad()
def test_cpu_tiles_never_report_more_than_dense(net):
    blk = net.dec8
    cin = next(iter(blk.convs())).conv.in_channels
    x = torch.rand(1, cin, 18, 22)
    mask = torch.zeros(1, 1, 18, 22, dtype=torch.bool)
    mask[0, 0, 0, 0] = mask[0, 0, 0, 20] = True  # 2 tiles of 4×4: 32 pixels of 396
    y, done = blk.forward_pruned(x, mask, TILES4)
    assert done == 32
    ref, _ = blk.forward_pruned(x, mask, "reference")
    assert torch.allclose(y[..., 0, 0], ref[..., 0, 0], atol=1e-5)
    # tile 16 on an 18×22 frame: the 2 active tiles cover 512 pixels > 396 → dense fallback
    y16, done16 = blk.forward_pruned(x, mask, TileBackend(16))
    assert done16 == mask.numel()
    assert torch.allclose(y16[..., 0, 20], ref[..., 0, 20], atol=1e-5)


def test_isolated_mask_logits_train_only_the_logit_rows():
    """With isolate_mask_logits a loss on the mask logits reaches the fuse's logit rows and
    nothing upstream; the forward values are the same either way."""
    torch.manual_seed(0)
    net = UGSPNet(ModelConfig(width="small")).train()
    a, b = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)

    def grads(isolate: bool):
        net.zero_grad(set_to_none=True)
        net.isolate_mask_logits = isolate
        torch.manual_seed(1)  # same Gumbel noise
        out = net(a, b, 0.5, mode="train")
        sum(l.sum() for l in out.mask_logits).backward()
        return out, {n: p.grad for n, p in net.named_parameters()}

    free_out, free = grads(False)
    iso_out, iso = grads(True)
    assert torch.equal(free_out.image, iso_out.image)
    for lg_free, lg_iso in zip(free_out.mask_logits, iso_out.mask_logits):
        assert torch.equal(lg_free, lg_iso)
    assert free["dec8.head.conv.weight"].abs().sum() > 0  # the trunk is trained without isolation
    assert free["encoder.stages.0.0.conv.weight"].abs().sum() > 0
    for name, g in iso.items():
        if name.endswith("fuse.weight") and not name.startswith("dec2"):
            k = g.shape[0] - 8
            assert g[:k].abs().sum() == 0 and g[k:].abs().sum() > 0, name
        elif name == "dec16.fuse.bias":
            assert g[:-8].abs().sum() == 0 and g[-8:].abs().sum() > 0
        else:
            assert g is None or g.abs().sum() == 0, name


def test_backwarp_keeps_subpixel_accuracy_in_half_precision():
    """A bf16/fp16 sampling grid is off by up to 2.5 px on a 1280-px row: half-precision
    features must still be sampled at the fp32 position."""
    from vsugsp.model.warp import backwarp

    x = torch.arange(1280, dtype=torch.float32)
    img = torch.sin(x * 0.5).expand(1, 1, 4, 1280).contiguous()
    flow = torch.zeros(1, 2, 4, 1280)
    flow[:, 0] = 0.3
    want = 0.7 * torch.sin(x[:-1] * 0.5) + 0.3 * torch.sin((x[:-1] + 1) * 0.5)  # bilinear between x and x+1
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        out = backwarp(img.to(dtype), flow.to(dtype))
        assert out.dtype == dtype
        err = (out[0, 0, 0, :-1].float() - want).abs().max()
        assert err < 0.02, (dtype, float(err))


def test_static_weight_guards_only_still_windows():
    from vsugsp.model.net import STATIC_RADIUS, static_weight

    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, 96, 96, generator=g)
    b = a.clone()
    b[..., 40:48, 40:48] += 0.2                        # something changed here
    zero = torch.zeros(1, 4, 96, 96)
    w = static_weight(a, b, zero)
    assert w[..., 0, 0] == 1 and w[..., 95, 95] == 1   # far from the change: static
    assert (w[..., 40 - STATIC_RADIUS:48 + STATIC_RADIUS, 40:48] == 0).all()  # the window reaches it
    fast = zero.clone()
    fast[:, 0] = STATIC_RADIUS                         # a flow that reaches out of the window
    assert static_weight(a, a, fast).max() == 0
    assert (static_weight(a, a + 0.9 / 255, zero) == 1).all()       # within half the tolerance
    assert (static_weight(a, a + 3.0 / 255, zero) == 0).all()       # beyond 1.5 tolerances
    # the frames' part made once serves every flow (the prior alone's readings)
    from vsugsp.model.net import static_agreement

    agree = static_agreement(a, b)
    for flow in (zero, fast, zero + 3.5):
        assert torch.equal(static_weight(a, b, flow, agree=agree), static_weight(a, b, flow))


def test_refine_nothing_is_the_prior_through_a_linear_blend(net):
    """refine=() with a prior: warps by the prior's linear-motion flows, blended (1 − t)·I0 + t·I1."""
    from vsugsp.model.prior import flows_at
    from vsugsp.model.warp import backwarp

    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(1, 3, 48, 64, generator=g), torch.rand(1, 3, 48, 64, generator=g)
    pf = torch.zeros(1, 4, 48, 64)
    pf[:, 0], pf[:, 2] = 2.0, -2.0                     # everything moves 2 px right
    t = torch.tensor([0.25])
    out = net(a, b, t, mode="dense", pair_flow=pf, refine=())
    fl = flows_at(pf, t.view(1, 1, 1, 1))
    want = (0.75 * backwarp(a, fl[:, :2]) + 0.25 * backwarp(b, fl[:, 2:])).clamp(0, 1)
    assert torch.allclose(out.image, want, atol=1e-5)
    assert not torch.allclose(net(a, b, t, mode="dense", pair_flow=pf).image, want, atol=1e-3)
    with pytest.raises(ValueError, match="refine"):
        net(a, b, t, refine=("colour",))


def test_the_tile_size_is_not_part_of_the_weights(tmp_path):
    # Weights written before the tile size moved to the backend carry config "tile":
    # they still load; new files no longer write it.
    from vsugsp.model.config import ModelConfig

    assert ModelConfig.from_dict({"width": "small", "body": 2, "decoder_mult": 2, "tile": 16, "extra": {}}) \
        == ModelConfig("small")
    assert "tile" not in ModelConfig("small").to_dict()
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({"width": "small", "tiles": 16})
    net = UGSPNet(ModelConfig("small"))
    save(net, tmp_path / "w.pt")
    assert "tile" not in torch.load(tmp_path / "w.pt", weights_only=True)["config"]
    assert load(tmp_path / "w.pt").config == net.config


@pytest.mark.parametrize("shape", [(1, 1, 45, 64), (2, 1, 5, 7), (1, 1, 33, 34), (1, 1, 1, 1)])
@pytest.mark.parametrize("radius", [0, 1, 2, 5, 16])
def test_window_max_is_the_max_pool_it_replaces(shape, radius):
    import torch.nn.functional as F

    from vsugsp.model.net import window_max

    d = torch.rand(shape, generator=torch.Generator().manual_seed(radius))
    got = window_max(window_max(d, radius, -1), radius, -2)
    k = 2 * radius + 1
    # max_pool2d pads with -inf; for x >= 0 that is the 0 window_max pads with
    padded = F.pad(d, (radius, radius, radius, radius))
    want = F.max_pool2d(F.max_pool2d(padded, (1, k), 1), (k, 1), 1)
    assert torch.equal(got, want)


@pytest.mark.parametrize("mode", ["dense", "pruned"])
def test_a_half_precision_network_runs_with_the_prior(mode):
    """What CUDA runs under precision fp16: the fp32 flow used to join fp16 features, and the convs
    refused it ('Input type (float) and bias type (c10::Half) should be the same')."""
    import copy

    from vsugsp.model.prior import pair_flow

    torch.manual_seed(0)
    net32 = UGSPNet(ModelConfig("small")).eval()
    net16 = copy.deepcopy(net32).half()
    a, b = torch.rand(1, 3, 64, 96), torch.rand(1, 3, 64, 96)
    pf = pair_flow(a, b)
    with torch.inference_mode():
        half = net16(a.half(), b.half(), 0.5, mode=mode, backend="tiles", pair_flow=pf, max_density=0.4)
        full = net32(a, b, 0.5, mode=mode, backend="tiles", pair_flow=pf, max_density=0.4)
    assert torch.isfinite(half.image).all()
    assert float((half.image.float() - full.image).abs().mean()) < 0.005
