"""Training on the quadratic-motion prior (issue 23, item 4): the outer neighbours (frames -1
and 2) rendered beside synthetic triplets and cut beside real ones, the B×8 motion the data
workers attach, and how a stage's ``quad`` share hands it to the network."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from vsugsp.data.augment import temporal_swap
from vsugsp.data.prior import with_prior
from vsugsp.data.synth import KEYS, NEIGHBOUR_KEYS, SynthConfig, render_triplet
from vsugsp.model.prior import flows_at
from vsugsp.train.loop import sample_prior
from vsugsp.train.recipe import load_recipe


def _photos(n: int = 3, size: int = 96) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = []
    for _ in range(n):
        # smooth random texture: DIS needs structure to track
        small = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        big = np.kron(small, np.ones((8, 8, 1), np.uint8)).astype(np.float32)
        noise = rng.normal(0, 12, big.shape).astype(np.float32)
        out.append(np.clip(big + noise, 0, 255).astype(np.uint8))
    return out


CFG = SynthConfig(size=64, motion_gamma=1.0, interp="cubic").clean()


def test_neighbours_leave_the_triplet_unchanged():
    photos = _photos()
    plain = render_triplet(np.random.default_rng(3), photos, CFG)
    both = render_triplet(np.random.default_rng(3), photos, replace(CFG, neighbours=True))
    assert set(plain) == set(KEYS) and set(both) == set(KEYS) | set(NEIGHBOUR_KEYS)
    for k in KEYS:
        np.testing.assert_array_equal(plain[k], both[k])
    assert both["img_prev"].shape == both["img0"].shape and np.isfinite(both["img_next"]).all()


def test_static_scene_neighbours_equal_the_inputs():
    s = render_triplet(np.random.default_rng(4), _photos(), replace(CFG.static(), neighbours=True))
    np.testing.assert_allclose(s["img_prev"], s["img0"], atol=1e-6)
    np.testing.assert_allclose(s["img_next"], s["img1"], atol=1e-6)


def _translation_scene(acc: float) -> dict:
    """One background layer translating by 3 px + acc/2 per interval along x (no foreground)."""
    cfg = replace(CFG, n_fg=(0, 0), bg_rot=0.0, bg_zoom=0.0, neighbours=True)
    rng = np.random.default_rng(11)
    import vsugsp.data.synth as synth

    real = synth._motion

    def fixed(rng_, max_disp, cfg_):  # velocity and acceleration chosen here, not drawn
        real(rng_, max_disp, cfg_)
        return np.array([3.0, 0.0]), np.array([acc, 0.0])

    synth._motion = fixed
    try:
        return render_triplet(rng, _photos(1, 160), cfg)
    finally:
        synth._motion = real


@pytest.mark.parametrize("acc", [0.0, 4.0])
def test_neighbours_sit_on_the_quadratic_path(acc):
    # frame -1 and frame 2 of a layer at x(τ) = 3τ + acc·τ²/2: frame k shows the scene shifted
    # by x(k), so frame -1 is frame 0 moved by x(-1) = -3 + acc/2 (whole pixels here)
    s = _translation_scene(acc)
    shift_prev = int(round(-3 + acc / 2))
    shift_next = int(round(6 + 2 * acc - (3 + acc / 2)))  # x(2) - x(1): frame 2 from frame 1
    a, b = s["img_prev"][:, 16:48, 16:48], np.roll(s["img0"], shift_prev, axis=2)[:, 16:48, 16:48]
    c, d = s["img_next"][:, 16:48, 16:48], np.roll(s["img1"], shift_next, axis=2)[:, 16:48, 16:48]
    assert np.abs(a - b).mean() < 0.01 and np.abs(c - d).mean() < 0.01
    # and a one-pixel error in the path would show
    assert np.abs(a - np.roll(s["img0"], shift_prev + 1, axis=2)[:, 16:48, 16:48]).mean() > 0.03


def test_with_prior_builds_the_motion_and_drops_the_neighbours():
    s = render_triplet(np.random.default_rng(5), _photos(), replace(CFG, neighbours=True))
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in s.items()}
    out = with_prior(t)
    assert not set(NEIGHBOUR_KEYS) & set(out)
    pf = out["pair_flow"]
    assert pf.shape == (8, 64, 64) and torch.isfinite(pf).all()
    linear = with_prior({k: v for k, v in t.items() if k not in NEIGHBOUR_KEYS})["pair_flow"]
    torch.testing.assert_close(pf[:4], linear)  # the pair's own flows are the linear prior's
    t["img_next"] = torch.full_like(t["img_next"], float("nan"))  # no frame 2 (a cut, the clip's end)
    pf = with_prior(t)["pair_flow"]
    assert torch.isfinite(pf[:6]).all() and torch.isnan(pf[6:]).all()


def test_temporal_swap_swaps_the_neighbours():
    s = {"img0": np.zeros((3, 4, 4)), "img1": np.ones((3, 4, 4)), "t": np.float32(0.25),
         "img_prev": np.full((3, 4, 4), -1.0), "img_next": np.full((3, 4, 4), 2.0)}
    w = temporal_swap(s)
    assert w["img_prev"][0, 0, 0] == 2.0 and w["img_next"][0, 0, 0] == -1.0 and float(w["t"]) == 0.75


def _motion_batch(b: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, 8, 16, 16, generator=g) * 3


def test_sample_prior_quad_shares():
    img = torch.zeros(6, 3, 16, 16)
    given = _motion_batch()
    assert sample_prior(img, img, 1.0, given, 0.0).shape[1] == 4  # quad 0: the linear prior only
    torch.manual_seed(0)
    full = sample_prior(img, img, 1.0, given, 1.0)
    torch.testing.assert_close(full, given)  # every sample keeps its prior and its neighbours
    torch.manual_seed(1)
    part = sample_prior(img, img, 0.5, given, 0.5)
    kept = part[:, :4].flatten(1).abs().sum(1) > 0
    quadratic = torch.isfinite(part[:, 4:]).flatten(1).all(1)
    assert not (quadratic & ~kept).any()  # no neighbours without a prior
    for i in range(6):
        if not kept[i]:
            # a sample without a prior must stay the plain network: zero flows at any t
            assert flows_at(part[i:i + 1], torch.full((1, 1, 1, 1), 0.3)).abs().max() == 0
        elif quadratic[i]:
            torch.testing.assert_close(part[i], given[i])
        else:
            assert torch.isnan(part[i, 4:]).all()
            torch.testing.assert_close(part[i, :4], given[i, :4])
    # the share is honoured over many batches
    torch.manual_seed(2)
    big = _motion_batch(400)
    p = sample_prior(torch.zeros(400, 3, 1, 1), torch.zeros(400, 3, 1, 1), 0.75, big, 0.8)
    kept = p[:, :4].flatten(1).abs().sum(1) > 0
    quad = torch.isfinite(p[:, 4:]).flatten(1).all(1)
    assert 0.68 < kept.float().mean() < 0.82 and 0.72 < quad[kept].float().mean() < 0.88


def test_recipe_quad_checks(tmp_path):
    r = load_recipe("small-cpu-quad")
    assert [(s.prior, s.quad) for s in r.stages] == [(0.75, 0.8), (0.75, 0.8)]
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: small-cpu\nname: bad\nstages:\n  - {name: d, quad: 0.5}\n")
    with pytest.raises(ValueError, match=r"quad=0.5 .*needs prior > 0"):
        load_recipe(bad)
    bad.write_text("base: small-cpu\nname: bad\ndata: {source: vimeo}\nstages:\n  - {name: d, prior: 1, quad: 0.5}\n")
    with pytest.raises(ValueError, match="vimeo has none"):
        load_recipe(bad)
    bad.write_text("base: small-cpu\nname: bad\nstages:\n  - {name: d, prior: 1, quad: 1.5}\n")
    with pytest.raises(ValueError, match="quad"):
        load_recipe(bad)


# ------------------------------------------------------------------ a scaled network's prior

def test_scaled_network_builds_the_quadratic_path_on_its_own_grid():
    from vsugsp.model.motion import motion_tensor
    from vsugsp.model.net import UGSPNet
    from vsugsp.model.warp import resize_flow

    h, w = 64, 96
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    smooth = torch.stack([torch.sin(xs / 17) * 3 + 4, torch.cos(ys / 13) * 2 - 1])[None]
    pair = torch.cat([smooth, -smooth], 1)                       # F01, F10
    accel = torch.full_like(smooth, 2.0)                          # a constant acceleration, 2 px
    motion = motion_tensor(pair, torch.cat([-smooth + accel, -(-smooth + accel)], 1),  # left pair: F(0→−1) = −v + a/2
                           torch.cat([smooth + accel, -(smooth + accel)], 1))
    tt = torch.full((1, 1, 1, 1), 0.3)
    net_size, padded = (32, 48), (32, 48)
    half = UGSPNet._prior_pyramid(motion, tt, net_size, padded, 1)[1]
    full = resize_flow(UGSPNet._prior_pyramid(motion, tt, (h, w), (h, w), 1)[1], net_size)
    assert (half - full).abs().max() < 0.05  # the same path, computed on a quarter of the pixels
    lin = UGSPNet._prior_pyramid(pair, tt, net_size, padded, 1)[1]
    assert (half - lin).abs().max() > 0.2    # and the acceleration is there
    # without neighbours the scaled motion is the linear prior's numbers
    bare = motion_tensor(pair, None, None)
    torch.testing.assert_close(UGSPNet._prior_pyramid(bare, tt, net_size, padded, 1)[1], lin)
    # the limits follow the scale: an acceleration trusted at full size is trusted at half size
    big = torch.full_like(smooth, 20.0)  # 20 px: between max_accel (16) and twice it, partly trusted
    motion = motion_tensor(pair, torch.cat([-smooth + big, smooth - big], 1), torch.cat([smooth + big, -smooth - big], 1))
    half = UGSPNet._prior_pyramid(motion, tt, net_size, padded, 1)[1]
    full = resize_flow(UGSPNet._prior_pyramid(motion, tt, (h, w), (h, w), 1)[1], net_size)
    assert (half - full).abs().max() < 0.05


# ------------------------------------------------------------------ the prior alone (refine: [])

def _tiny_net():
    from vsugsp.model.config import ModelConfig
    from vsugsp.model.net import UGSPNet

    torch.manual_seed(0)
    return UGSPNet(ModelConfig.from_dict({"width": "small"})).eval()


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_prior_only_is_the_full_pass_without_corrections_and_runs_no_network(scale, monkeypatch):
    from vsugsp.model import net as netmod
    from vsugsp.model.motion import motion_tensor

    monkeypatch.setitem(netmod.PRIOR_ALONE_VIEWS, 1, ("mixed",))  # the network's reading, for the equality
    net = _tiny_net()
    g = torch.Generator().manual_seed(1)
    img0, img1 = torch.rand(2, 3, 48, 80, generator=g), torch.rand(2, 3, 48, 80, generator=g)
    pair = torch.randn(2, 4, 48, 80, generator=g) * 3
    motion = motion_tensor(pair, torch.randn(2, 4, 48, 80, generator=g), None)
    t = torch.tensor([0.3, 0.7])
    with torch.no_grad():
        # the full pass with every correction off: the rgb head zeroed and only "rgb" applied
        # is the decoders' path with a zero residual, i.e. what refine=[] computed before
        full = _tiny_net()
        full.up.weight[:, 5:8] = 0
        full.up.bias[5:8] = 0
        want = full(img0, img1, t, mode="dense", scale=scale, pair_flow=motion, refine=["rgb"])
        calls = []
        for part in (net.encoder, net.dec16, net.dec8, net.dec4, net.dec2, net.up):
            part.register_forward_pre_hook(lambda *a: calls.append(1))
        got = net(img0, img1, t, mode="pruned", scale=scale, pair_flow=motion, refine=[])
    assert not calls and got.macs == 0 and got.dense_macs == 0  # nothing of the network ran
    torch.testing.assert_close(got.image, want.image, atol=1e-6, rtol=0)
    torch.testing.assert_close(got.flow, want.flow, atol=1e-5, rtol=0)


@pytest.mark.parametrize("linear", [True, False])
def test_prior_alone_reads_both_frames_flows(linear):
    from vsugsp.model import motion as mo
    from vsugsp.model.net import PRIOR_ALONE_READING
    from vsugsp.model.prior import flows_at

    assert PRIOR_ALONE_READING == "both"
    g = torch.Generator().manual_seed(4)
    img0, img1 = torch.rand(1, 3, 40, 64, generator=g), torch.rand(1, 3, 40, 64, generator=g)
    pair = torch.randn(1, 4, 40, 64, generator=g) * 3
    pf = pair if linear else mo.motion_tensor(pair, torch.randn(1, 4, 40, 64, generator=g), None)
    t = torch.full((1, 1, 1, 1), 0.3)
    with torch.no_grad():
        got = _tiny_net()(img0, img1, 0.3, pair_flow=pf, refine=[])
    own, both = flows_at(pf, t, reading="mixed"), flows_at(pf, t, reading="both")
    torch.testing.assert_close(got.flow, both, atol=1e-5, rtol=0)
    assert (got.flow - own).abs().max() > 0.1  # not the network's reading
    if linear:  # "both" under linear motion: the mean of t·F10 and −t·F01 (and of (1−t)·F01 and −(1−t)·F10)
        want = torch.cat([0.5 * 0.3 * (pair[:, 2:] - pair[:, :2]), 0.5 * 0.7 * (pair[:, :2] - pair[:, 2:])], 1)
        torch.testing.assert_close(both, want, atol=1e-6, rtol=0)


def test_prior_alone_setting_without_a_prior_runs_the_whole_network():
    net = _tiny_net()
    g = torch.Generator().manual_seed(3)
    img0, img1 = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    with torch.no_grad():
        a = net(img0, img1, 0.5, mode="dense", refine=[])
        b = net(img0, img1, 0.5, mode="dense")  # every correction
        c = net(img0, img1, 0.5, mode="dense", refine=["flow"])
    torch.testing.assert_close(a.image, b.image)
    assert (a.image - c.image).abs().max() > 1e-4  # not the flow alone


def test_without_a_prior_the_network_flow_is_used_whatever_refine_says():
    net = _tiny_net()
    g = torch.Generator().manual_seed(2)
    img0, img1 = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    with torch.no_grad():
        a = net(img0, img1, 0.5, mode="dense", refine=["fusion", "rgb"])
        b = net(img0, img1, 0.5, mode="dense")  # every correction
    torch.testing.assert_close(a.flow, b.flow)  # not the zero flow of "no prior, no flow residual"
    assert a.flow.abs().max() > 0


def test_filter_with_the_prior_alone_never_runs_the_network():
    vs = pytest.importorskip("vapoursynth")
    from vsclips import moving

    import vsugsp
    from vsugsp import work

    net = _tiny_net()
    calls = []
    for part in (net.encoder, net.dec16, net.up):
        part.register_forward_pre_hook(lambda *a: calls.append(1))
    src = moving(vs.YUV420P8, 64, 48, length=6)
    out = vsugsp.interpolate(src, 2, model=net, device="cpu", flow_prior="dis", refine=[])
    frames = [out.get_frame(n) for n in range(out.num_frames)]
    assert not calls  # no encoder, no decoder, for any pair (every pair here has a prior)
    props = [f.props for f in frames]
    assert all(p[work.INTERPOLATED] == (n % 2) for n, p in enumerate(props[:-1]))  # the last: no pair after it
    assert all(p[work.MACS] == 0 and p[work.DENSE_MACS] == 0 for p in props)
    # the prior's motion is in the frame: it is not the plain blend of its two source frames
    a = np.asarray(frames[3][0]).astype(int)
    mean = (np.asarray(src.get_frame(1)[0]).astype(int) + np.asarray(src.get_frame(2)[0]).astype(int)) / 2
    assert np.abs(a - mean).mean() > 0.5


@pytest.mark.parametrize("preset", ["quality", "balanced", "fast", "realtime"])
def test_presets_run_the_network_only_where_a_pair_has_no_prior(preset):
    """The bundled presets' empty ``refine``: the prior alone where the pair has one, the whole
    network where it has none (``realtime`` on a CPU: no prior, as before)."""
    vs = pytest.importorskip("vapoursynth")
    from vsclips import moving

    import vsugsp
    from vsugsp import work
    from vsugsp.model import prior

    if not prior.available():
        pytest.skip("OpenCV not installed: no prior to run alone")
    src = moving(vs.YUV420P8, 64, 48, length=3)

    def macs(**kw) -> int:
        out = vsugsp.interpolate(src, 2, preset=preset, model=_tiny_net(), device="cpu", **kw)
        return out.get_frame(1).props[work.MACS]

    assert macs() == 0  # the prior alone (realtime on a CPU: the light prior, unmeasured)
    if preset == "realtime":
        assert macs(flow_prior="dis-fast") == 0  # what CUDA runs where the pool keeps up
    assert macs(flow_prior="none") > 0  # no prior: the network


def test_ensemble_of_the_prior_alone_averages_its_readings(monkeypatch):
    """The network's views (time swap, mirror) would give the prior alone one frame four
    times; it is the mean of the frames of its ``readings`` instead, each made once, whatever
    the network's ``ensemble`` (here 4)."""
    from vsugsp.model import ensemble as ens
    from vsugsp.model import motion as mo
    from vsugsp.model.net import PRIOR_ALONE_VIEWS

    assert PRIOR_ALONE_VIEWS[1] == ("both",) and set(PRIOR_ALONE_VIEWS[4]) == set(mo.READINGS)
    net = _tiny_net()
    g = torch.Generator().manual_seed(6)
    img0, img1 = torch.rand(1, 3, 40, 64, generator=g), torch.rand(1, 3, 40, 64, generator=g)
    pair = torch.randn(1, 4, 40, 64, generator=g) * 3
    m = mo.motion_tensor(pair, torch.randn(1, 4, 40, 64, generator=g), torch.randn(1, 4, 40, 64, generator=g))
    seen = []
    flows = type(net)._prior_readings
    monkeypatch.setattr(type(net), "_prior_readings", staticmethod(
        lambda pf, tt, size, b, readings: seen.append(readings) or flows(pf, tt, size, b, readings)))
    with torch.no_grad():
        single = {r: net._prior_only(img0, img1, torch.full((1, 1, 1, 1), 0.3), m, 1.0, (r,)).image
                  for r in mo.READINGS}
        seen.clear()
        for passes in (1, 2, 4):
            got, macs, dense = ens.ensemble_forward(net, img0, img1, 0.3, 4, pair_flow=m, refine=[], readings=passes)
            want = sum(single[r] for r in PRIOR_ALONE_VIEWS[passes]) / passes
            torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
            assert macs == 0 and dense == 0
    assert seen == [PRIOR_ALONE_VIEWS[p] for p in (1, 2, 4)]  # one call per frame: the acceleration once
    # the readings differ where the flows disagree: the mean is not any one of them
    assert (single["both"] - single["mixed"]).abs().max() > 1e-3


def test_the_readings_key_reaches_the_prior_alone(monkeypatch):
    vs = pytest.importorskip("vapoursynth")
    from vsclips import moving

    import vsugsp
    from vsugsp.model import net as netmod
    from vsugsp.model import prior

    if not prior.available():
        pytest.skip("OpenCV not installed: no prior to run alone")
    seen = []
    frame = netmod.UGSPNet.prior_frame
    monkeypatch.setattr(netmod.UGSPNet, "prior_frame",
                        lambda self, *a, views=1, **k: seen.append(views) or frame(self, *a, views=views, **k))
    src = moving(vs.YUV420P8, 64, 48, length=3)
    for readings in (1, 2, 4):
        out = vsugsp.interpolate(src, 2, preset="balanced", model=_tiny_net(), device="cpu", readings=readings)
        out.get_frame(1)
        assert seen and set(seen) == {readings}
        seen.clear()
