"""The DIS flow prior: its flows, its place in the network, the ensemble views, presets, filter, training."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from vsugsp.model import ModelConfig, UGSPNet
from vsugsp.model import prior
from vsugsp.model.ensemble import ensemble_forward

needs_cv2 = pytest.mark.skipif(not prior.available(), reason="OpenCV with DIS is not installed")


def _textured(h=64, w=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


@needs_cv2
def test_dis_pair_flow_finds_a_shift():
    a = _textured()
    b = torch.roll(a, shifts=(2, 5), dims=(-2, -1))  # frame 1 = frame 0 moved 5 px right, 2 px down
    pf = prior.pair_flow(a, b)
    assert pf.shape == (1, 4, 64, 96) and pf.dtype == torch.float32
    inner = pf[..., 12:-12, 12:-12]  # away from the wrapped border
    assert inner[0, 0].median() == pytest.approx(5, abs=0.3)
    assert inner[0, 1].median() == pytest.approx(2, abs=0.3)
    assert inner[0, 2].median() == pytest.approx(-5, abs=0.3)
    assert inner[0, 3].median() == pytest.approx(-2, abs=0.3)


def test_linear_motion_flows_swap_and_mirror():
    pf = torch.tensor([1.0, 2.0, -3.0, -4.0]).view(1, 4, 1, 1).expand(1, 4, 2, 3).clone()
    pf[..., 0, 0] = torch.tensor([7.0, 0.0, 0.0, 0.0])  # one marked pixel, top-left
    t = torch.tensor(0.25).view(1, 1, 1, 1)
    f = prior.flows_at(pf, t)
    # towards frame 0: t·F(1→0); towards frame 1: (1−t)·F(0→1)
    assert f[0, :, 1, 1].tolist() == [-0.75, -1.0, 0.75, 1.5]
    assert torch.equal(prior.swap(prior.swap(pf)), pf)
    assert prior.swap(pf)[0, :, 1, 1].tolist() == [-3.0, -4.0, 1.0, 2.0]
    m = prior.mirror(pf)
    assert m[0, :, 0, 2].tolist() == [-7.0, 0.0, 0.0, 0.0]  # moved to the right edge, x negated
    assert m[0, :, 1, 1].tolist() == [-1.0, 2.0, 3.0, -4.0]
    assert torch.equal(prior.mirror(m), pf)


@torch.no_grad()
def test_zero_prior_is_the_plain_network(net):
    a, b = _textured(seed=1), _textured(seed=2)
    for mode in ("dense", "pruned"):
        plain = net(a, b, 0.4, mode=mode).image
        zero = net(a, b, 0.4, mode=mode, pair_flow=torch.zeros(1, 4, 64, 96)).image
        assert (plain - zero).abs().max() < 1e-4


@torch.no_grad()
def test_prior_shifts_the_coarse_flow(net):
    a, b = _textured(seed=1), _textured(seed=2)
    pf = torch.zeros(1, 4, 64, 96)
    pf[:, 0] = 32.0  # F(0→1) = 32 px right, so from t = 0.5 frame 1 lies 16 px left
    base = net(a, b, 0.5, mode="dense")
    moved = net(a, b, 0.5, mode="dense", pair_flow=pf)
    # the coarsest decoder's flow (1/16 grid) carries the prior on top of its own residual
    d = moved.flow_pyramid[0] - base.flow_pyramid[0]
    assert d[:, 2].mean() == pytest.approx(16 / 16, abs=0.35)
    assert moved.image.shape == base.image.shape
    # the prior is resized with the network's scale: same grid, same vectors in grid pixels
    half = net(a, b, 0.5, mode="dense", pair_flow=pf, scale=0.5)
    assert half.image.shape == (1, 3, 64, 96)


def test_bad_pair_flow_shape(net):
    a, b = _textured(), _textured(seed=3)
    with pytest.raises(ValueError, match="pair_flow"):
        net(a, b, 0.5, mode="dense", pair_flow=torch.zeros(1, 2, 64, 96))


class _Recorder(torch.nn.Module):
    """Stands in for the network: records each view's prior, returns frame 0."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, a, b, t, *, feats0=None, feats1=None, pair_flow=None, **kw):
        self.seen.append(pair_flow)

        class Out:
            image, macs, dense_macs = a, 1, 1
        return Out()


def test_ensemble_gives_each_view_its_own_prior():
    a, b = _textured(seed=4), _textured(seed=5)
    pf = torch.randn(1, 4, 64, 96)
    rec = _Recorder()
    ensemble_forward(rec, a, b, 0.5, 4, pair_flow=pf)
    plain, swapped, mirrored, mirrored_swapped = rec.seen
    assert torch.equal(plain, pf)
    assert torch.equal(swapped, prior.swap(pf))
    assert torch.equal(mirrored, prior.mirror(pf))
    assert torch.equal(mirrored_swapped, prior.swap(prior.mirror(pf)))
    rec.seen.clear()
    ensemble_forward(rec, a, b, 0.5, 2)
    assert rec.seen == [None, None]


def test_preset_key_flow_prior():
    from vsugsp.preset import load_preset

    assert load_preset("quality").flow_prior == "auto"
    assert load_preset("realtime").flow_prior == "auto-realtime"
    assert load_preset("balanced", flow_prior="DIS").flow_prior == "dis"
    assert load_preset("balanced", flow_prior=None).flow_prior == "none"
    with pytest.raises(ValueError, match="flow_prior"):
        load_preset("balanced", flow_prior="raft")


@needs_cv2
def test_filter_with_prior_is_deterministic_and_differs(net):
    import vapoursynth as vs

    from vsclips import moving, planes_of

    src = moving(vs.YUV420P8, 64, 48, length=4)

    def frames(**kw):
        clip = __import__("vsugsp").interpolate(src, Fraction(2), model=net, device="cpu", **kw)
        return [b"".join(p.tobytes() for p in planes_of(clip.get_frame(n))) for n in range(clip.num_frames)]

    with_prior = frames(flow_prior="dis")
    assert frames(flow_prior="dis") == with_prior
    plain = frames(flow_prior="none")
    assert with_prior[0::2] == plain[0::2]  # source frames untouched either way
    assert with_prior[1] != plain[1]
    assert frames(flow_prior="auto") == with_prior  # OpenCV is here


def test_filter_says_what_to_install_without_opencv(net, monkeypatch):
    import vapoursynth as vs

    import vsugsp
    from vsclips import moving

    def missing():
        raise ImportError("vsugsp: the DIS flow prior needs OpenCV (pip install opencv-python-headless)")

    monkeypatch.setattr(prior, "cv2_module", missing)
    monkeypatch.setattr(prior, "available", lambda: False)
    src = moving(vs.YUV420P8, 64, 48, length=3)
    with pytest.raises(vs.Error, match="opencv-python-headless.*flow_prior"):
        vsugsp.interpolate(src, 2, model=net, device="cpu", flow_prior="dis")
    # auto falls back to the plain network
    clip = vsugsp.interpolate(src, 2, model=net, device="cpu", flow_prior="auto")
    clip.get_frame(1)


@needs_cv2
def test_training_prior_share():
    from vsugsp.train.loop import sample_prior

    a, b = _textured(seed=6).expand(6, -1, -1, -1), torch.roll(_textured(seed=6), 3, -1).expand(6, -1, -1, -1)
    assert sample_prior(a, b, 0.0) is None
    full = sample_prior(a, b, 1.0)
    assert full.shape == (6, 4, 64, 96) and bool((full.abs().flatten(1).amax(1) > 0).all())
    torch.manual_seed(0)
    some = sample_prior(a, b, 0.5)
    given = (some.abs().flatten(1).amax(1) > 0).tolist()
    assert any(given) and not all(given)  # the rest run without a prior (all zeros)


def test_recipe_prior_validated():
    from vsugsp.train.recipe import parse

    r = parse({"name": "x", "stages": [{"name": "s", "prior": 0.75}]})
    assert r.stages[0].prior == 0.75
    with pytest.raises(ValueError, match="prior"):
        parse({"name": "x", "stages": [{"name": "s", "prior": 1.5}]})
    with pytest.raises(ValueError, match="prior"):
        parse({"name": "x", "stages": [{"name": "s", "prior": True}]})
    assert np.isclose(parse({"name": "x", "stages": [{"name": "s"}]}).stages[0].prior, 0.0)


@torch.no_grad()
def test_zero_residuals_return_the_prior_at_full_detail():
    # a network whose decoders predict no flow residual must hand back the prior's own
    # flow at every pixel, fine detail included (not a 1/16-grid smoothing of it)
    torch.manual_seed(1)
    n = UGSPNet(ModelConfig(width="small")).eval()
    for blk in (n.dec16, n.dec8, n.dec4):
        blk.fuse.weight[:4] = 0
        if blk.fuse.bias is not None:
            blk.fuse.bias[:4] = 0
    n.up.weight[:, :4] = 0
    n.up.bias[:4] = 0
    a, b = _textured(seed=7), _textured(seed=8)
    g = torch.Generator().manual_seed(2)
    pf = torch.randn(1, 4, 64, 96, generator=g) * 3  # detail at every pixel
    t = torch.tensor([0.3])
    out = n(a, b, t, mode="dense", pair_flow=pf)
    want = prior.flows_at(pf, t.view(1, 1, 1, 1))
    assert torch.allclose(out.flow, want, atol=1e-4)
    # and the pruned network, whatever it skips, starts from the same prior
    pruned = n(a, b, t, mode="pruned", pair_flow=pf)
    assert torch.allclose(pruned.flow, want, atol=1e-4)


@needs_cv2
def test_data_workers_attach_the_prior_and_the_loop_masks_it():
    from vsugsp.data.prior import attach_prior
    from vsugsp.train.loop import sample_prior

    a = _textured(seed=9)[0]
    b = torch.roll(a, 4, -1)
    items = [{"img0": a, "img1": b}] * 3

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield from items

    class Mapped(torch.utils.data.Dataset):
        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            return items[i]

    for ds in (attach_prior(Stream()), attach_prior(Mapped())):
        got = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
        assert got["pair_flow"].shape == (3, 4, 64, 96)
        assert got["pair_flow"][0, 0, 16:-16, 16:-16].median() == pytest.approx(4, abs=0.3)
    given = got["pair_flow"]
    assert torch.equal(sample_prior(got["img0"], got["img1"], 1.0, given), given)
    torch.manual_seed(3)
    some = sample_prior(got["img0"], got["img1"], 0.5, given)
    kept = [bool(torch.equal(some[i], given[i])) for i in range(3)]
    zeroed = [bool((some[i] == 0).all()) for i in range(3)]
    assert all(k or z for k, z in zip(kept, zeroed))


_PROBE = """
import sys, numpy as np, cv2
cv2.setNumThreads(1)
rng = np.random.default_rng(0)
for line in sys.stdin:
    h, w, preset = line.split()
    d = cv2.DISOpticalFlow_create(getattr(cv2, "DISOPTICAL_FLOW_PRESET_" + preset.upper()))
    a, b = (rng.integers(0, 256, (int(h), int(w)), dtype=np.uint8) for _ in range(2))
    try:
        d.calc(a, b, None), d.calc(b, a, None)
        print(h, w, preset, "ok", flush=True)
    except cv2.error:
        print(h, w, preset, "error", flush=True)
"""

#: issue 24 item 5, as height×width: 64×8 and 128×8 crashed the process inside DIS,
#: the wide ones failed every frame with "inv_scale_x > 0" from its pyramid's resize
ISSUE_SIZES = [(8, 64), (8, 128), (8, 1024), (12, 4096), (8, 8192), (10, 320)]


def _opencv_on(sizes):
    """OpenCV's answer per (h, w, preset), in a child process: "ok", "error", or "crash" for the first that kills it."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _PROBE], input="".join(f"{h} {w} {p}\n" for h, w, p in sizes),
                          capture_output=True, text=True, timeout=120)
    seen = {(int(h), int(w), p): r for h, w, p, r in (line.split() for line in proc.stdout.splitlines())}
    if proc.returncode != 0:
        seen[sizes[len(seen)]] = "crash"
    return seen


@needs_cv2
def test_geometry_is_opencvs():
    cv2 = prior.cv2_module()
    for name, (patch, finest) in prior.PRESET_GEOMETRY.items():
        d = cv2.DISOpticalFlow_create(getattr(cv2, prior.PRESETS[name]))
        assert (d.getPatchSize(), d.getFinestScale()) == (patch, finest), name


@needs_cv2
def test_every_size_fits_accepts_runs_in_opencv():
    # the boundary region densely (both orientations), plus wide and tall strips; in a child
    # process because a wrong answer here would crash pytest itself
    sizes = sorted({(h, w, p) for p in ("medium", "fast") for a in range(6, 34, 3) for b in range(6, 140, 7)
                    for h, w in ((a, b), (b, a)) if prior.fits(h, w, p)}
                   | {(h, w, "medium") for h in (16, 17, 24, 32) for w in (64, 128, 256, 1024, 4096)
                      if prior.fits(h, w)})
    assert len(sizes) > 300
    seen = _opencv_on(sizes)
    assert all(v == "ok" for v in seen.values()), {k: v for k, v in seen.items() if v != "ok"}
    assert len(seen) == len(sizes)


_PRIOR_CALLS = """
import numpy as np, torch
from vsugsp.model import prior
for h, w in SIZES:
    a = torch.rand(1, 3, h, w)
    got = [prior.prior_for(s, a, a) is None for s in ("dis", "dis-fast")]
    for call in (lambda: prior.pair_flow(a, a), lambda: prior.pair_flow_np(*[np.zeros((h, w), np.uint8)] * 2)):
        try:
            call()
            got.append("ran")
        except ValueError as e:
            got.append(str(e))
    print(repr((h, w, got)), flush=True)
"""


def _prior_calls(sizes):
    """The prior functions on frames of ``sizes`` in a child process (a wrong guard would crash it): {size: answers}."""
    import ast
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", f"SIZES = {sizes!r}\n" + _PRIOR_CALLS],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    return {(h, w): got for h, w, got in map(ast.literal_eval, proc.stdout.splitlines())}


@needs_cv2
def test_the_issues_sizes_are_refused_and_did_fail_in_opencv():
    seen = _opencv_on([(h, w, "medium") for h, w in ISSUE_SIZES])
    assert set(seen.values()) <= {"error", "crash"}  # one crash ends the probe; the next ones are not reached
    for h, w in ISSUE_SIZES:
        assert not any(prior.fits(h, w, p) for p in prior.PRESET_GEOMETRY), (h, w)
    for (h, w), got in _prior_calls(ISSUE_SIZES).items():
        assert got[:2] == [True, True], (h, w)  # prior_for: no prior, the network runs alone
        assert f"cannot take {w}×{h} frames" in got[2] and "cannot take" in got[3], (h, w, got)
    # the smallest frames OpenCV refuses outright
    assert not prior.fits(1, 1) and not prior.fits(7, 40) and not prior.fits(11, 11)
    assert prior.fits(8, 12) and prior.fits(8, 39) and not prior.fits(8, 40) and prior.fits(40, 8)


@needs_cv2
def test_half_size_prior_falls_back_to_full_size_where_the_half_frame_does_not_fit():
    # 16×96 fits; its half, 8×48, makes OpenCV pick a 2-level pyramid for an 8-line frame (crashed)
    assert prior.fits(16, 96) and not prior.fits(8, 48)
    got = _prior_calls([(16, 96)])[(16, 96)]
    assert got == [False, False, "ran", "ran"]
    a = _textured(16, 96)
    b = torch.roll(a, shifts=(0, 2), dims=(-2, -1))
    assert torch.equal(prior.pair_flow(a, b, "medium", 0.5), prior.pair_flow(a, b))  # the full-size flow


@needs_cv2
@pytest.mark.parametrize("size", [(1, 1), (2, 1), (1, 2), (11, 11), (7, 40), (64, 8), (320, 10)])
def test_tiny_frames_run_without_the_prior(net, size):
    import vapoursynth as vs

    from vsclips import noise, planes_of

    src = noise(vs.RGB24, *size, length=3)

    def frames(**kw):
        clip = __import__("vsugsp").interpolate(src, Fraction(2), model=net, device="cpu", scene_change="off", **kw)
        return [b"".join(p.tobytes() for p in planes_of(clip.get_frame(n))) for n in range(clip.num_frames)]

    with_dis = frames(flow_prior="dis")
    assert with_dis == frames(flow_prior="none")
    assert with_dis[1] not in (with_dis[0], with_dis[2])  # interpolated, not a source frame shown


@pytest.mark.parametrize("preset", ["fast", "balanced", "quality"])
@pytest.mark.parametrize("fmt_name", ["RGBS", "YUV444PS", "GRAYS"])
def test_non_finite_samples_read_as_zero(net, preset, fmt_name, recwarn):
    import vapoursynth as vs

    from vsclips import moving

    fmt = getattr(vs, fmt_name)
    src = moving(fmt, 64, 48, length=3)
    bad = [np.nan, np.inf, -np.inf]

    def poison(n, f):
        out = f.copy()
        for p in range(out.format.num_planes):
            a = np.asarray(out[p])
            a.reshape(-1)[::7] = bad[p % 3]  # every 7th sample
        return out

    src = vs.core.std.ModifyFrame(src, src, poison)
    clip = __import__("vsugsp").interpolate(src, Fraction(2), model=net, device="cpu", preset=preset,
                                             flow_prior="dis" if prior.available() else "none")
    for n in (1, 3):  # interpolated frames
        f = clip.get_frame(n)
        for p in range(f.format.num_planes):
            assert np.isfinite(np.asarray(f[p])).all(), (n, p)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in recwarn]


@needs_cv2
def test_dis_fast_runs_on_half_size_frames_above_576_lines_and_returns_full_size_flows():
    a = _textured(prior.SCALED_ABOVE + 8, 128)
    b = torch.roll(a, shifts=(2, 6), dims=(-2, -1))
    pf = prior.prior_for("dis-fast", a, b)
    assert pf.shape == (1, 4, prior.SCALED_ABOVE + 8, 128)
    assert torch.equal(pf, prior.pair_flow(a, b, "medium", 0.5)) and not torch.equal(pf, prior.pair_flow(a, b))
    # up to 576 lines the scaled variant is the full-size flow
    sd_a, sd_b = a[..., :prior.SCALED_ABOVE, :], b[..., :prior.SCALED_ABOVE, :]
    assert torch.equal(prior.prior_for("dis-fast", sd_a, sd_b), prior.pair_flow(sd_a, sd_b))
    inner = pf[..., 16:-16, 16:-16]
    # vectors are in the frame's own pixels, not the half-size ones
    assert inner[0, 0].median() == pytest.approx(6, abs=0.6)
    assert inner[0, 1].median() == pytest.approx(2, abs=0.6)
    assert inner[0, 2].median() == pytest.approx(-6, abs=0.6)
    assert prior.prior_for("none", a, b) is None
    assert prior.prior_for("dis", a[..., :6, :6], b[..., :6, :6]) is None  # too small for DIS
    with pytest.raises(ValueError, match="flow_prior"):
        prior.resolve("dis-slow")


def test_auto_resolves_per_device():
    """A GPU is not throttled by the full-size CPU prior: 'auto' takes the half-size one on CUDA."""
    from vsugsp.model import prior

    if not prior.available():
        assert prior.resolve("auto", "cuda") == prior.resolve("auto", "cpu") == "none"
        return
    assert prior.resolve("auto", "cpu") == "dis" and prior.resolve("auto") == "dis"
    assert prior.resolve("auto", "cuda") == "dis-fast" and prior.resolve("auto", "cuda:1") == "dis-fast"
    assert prior.resolve("auto", torch.device("cuda", 0)) == "dis-fast"
    assert prior.resolve("auto-fast", "cpu") == prior.resolve("auto-fast", "cuda") == "dis-fast"
    assert prior.resolve("dis", "cuda") == "dis" and prior.resolve("none", "cuda") == "none"
    assert prior.describe("auto", "cuda") == "dis-fast (auto on cuda)"
    assert prior.describe("dis", "cuda") == "dis"
    with pytest.raises(ValueError, match="device 'tpu'"):
        prior.resolve("auto", "tpu")


def test_dis_result_does_not_depend_on_what_the_thread_computed_before():
    """OpenCV's DIS object keeps state: a pair's flow changed after a call at another size."""
    import threading

    import numpy as np

    from vsugsp.model.prior import pair_flow_np

    rng = np.random.default_rng(0)
    pair = tuple(rng.integers(0, 255, (144, 176), dtype=np.uint8) for _ in range(2))
    tiny = tuple(rng.integers(0, 255, (32, 40), dtype=np.uint8) for _ in range(2))
    results = []

    def run(history):
        for h in history:
            pair_flow_np(*h)
        results.append(pair_flow_np(*pair))

    for history in ([], [(np.zeros((16, 16), np.uint8),) * 2], [tiny, pair], [tiny]):
        th = threading.Thread(target=run, args=(history,))  # a fresh thread: fresh DIS objects
        th.start()
        th.join()
    for f01, f10 in results[1:]:
        assert np.array_equal(f01, results[0][0]) and np.array_equal(f10, results[0][1])
    # tiny frames too: the first call of a fresh object gave another flow than the later ones
    first = []
    for _ in range(2):
        th = threading.Thread(target=lambda: first.append(pair_flow_np(*tiny)))
        th.start()
        th.join()
    again = pair_flow_np(*tiny), pair_flow_np(*tiny)
    for f in (first[1], again[0], again[1]):
        assert np.array_equal(f[0], first[0][0])
