"""Scene adaptation: seeded, deterministic, reads only the frames it is given, lowers the loss."""
from __future__ import annotations

import numpy as np
import pytest
import torch

vs = pytest.importorskip("vapoursynth")

from vsugsp import adapt as A  # noqa: E402
from vsugsp.adapt import AdaptSettings, adapt, clip_triplets, read_frames, triplet_loss  # noqa: E402
from vsugsp.model import ModelConfig, UGSPNet  # noqa: E402
from test_cli import tiny_model, write_clip  # noqa: E402,F401  (tiny_model is a fixture)

core = vs.core
FAST = dict(crop=32, batch=2, prior=0.0)


def _texture(seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur((rng.random((64, 160)) * 255).astype(np.uint8), (5, 5), 1.2)


def moving_clip(n: int = 12, speed: int = 3, seen: set | None = None) -> vs.VideoNode:
    """GRAY8 64×48 texture sliding ``speed`` px per frame; ``seen`` collects requested frame numbers."""
    tex = _texture()
    base = core.std.BlankClip(width=64, height=48, format=vs.GRAY8, length=n, fpsnum=24, fpsden=1)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        if seen is not None:
            seen.add(n)
        out = f.copy()
        np.asarray(out[0])[...] = np.roll(tex, -speed * n, axis=1)[8:56, :64]
        return out

    return core.std.ModifyFrame(base, base, fill)


@pytest.fixture(scope="module")
def net() -> UGSPNet:
    torch.manual_seed(0)
    return UGSPNet(ModelConfig(width="small", body=1, decoder_mult=1)).eval()


@pytest.fixture(autouse=True)
def _no_cache():
    A._CACHE.clear()
    yield
    A._CACHE.clear()


def _state(m: UGSPNet) -> dict:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def test_seeded_and_deterministic(net):
    a = adapt(moving_clip(), 3, model=net, seed=7, **FAST)
    A._CACHE.clear()
    b = adapt(moving_clip(), 3, model=net, seed=7, **FAST)
    A._CACHE.clear()
    c = adapt(moving_clip(), 3, model=net, seed=8, **FAST)
    sa, sb, sc = _state(a), _state(b), _state(c)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    # the caller's network is left untouched
    assert any(not torch.equal(sa[k], v) for k, v in net.state_dict().items())


def test_reads_only_the_frames_it_is_given(net):
    seen: set[int] = set()
    full = moving_clip(n=16, seen=seen)
    half = full.std.SelectEvery(cycle=2, offsets=0)   # the frame-drop protocol's input
    adapt(half, 2, model=net, **FAST)
    assert seen and all(n % 2 == 0 for n in seen)
    # a long clip is read in runs of consecutive frames, at most max_frames of them
    seen.clear()
    idx, frames = read_frames(moving_clip(n=60, seen=seen), max_frames=16)
    assert len(idx) == len(frames) <= 16 and len(seen) <= 16


def test_lowers_the_loss_on_the_clip(net):
    clip = moving_clip(n=10)
    _, frames = read_frames(clip, 10)
    windows = clip_triplets(frames, (2,))
    before = triplet_loss(net, frames, windows, prior=False)
    tuned = adapt(clip, 20, model=net, lr=2e-3, **FAST)
    after = triplet_loss(tuned, frames, windows, prior=False)
    assert after < 0.9 * before, (before, after)


def test_frozen_heads_and_encoder_stay_as_shipped(net):
    tuned = adapt(moving_clip(), 3, model=net, trainable="decoders", lr=1e-3, **FAST)
    s0, s1 = net.state_dict(), tuned.state_dict()
    assert all(torch.equal(s0[k], s1[k]) for k in s0 if k.startswith("encoder."))
    for name in ("dec16", "dec8", "dec4"):
        rows = getattr(net, name).logit_rows
        assert torch.equal(s0[f"{name}.fuse.weight"][-rows:], s1[f"{name}.fuse.weight"][-rows:])
        assert not torch.equal(s0[f"{name}.fuse.weight"][:-rows], s1[f"{name}.fuse.weight"][:-rows])
    assert torch.equal(s0["up.weight"][:, -1], s1["up.weight"][:, -1])  # uncertainty channel
    assert torch.equal(s0["up.bias"][-1], s1["up.bias"][-1])


def test_windows_skip_cuts_and_still_frames():
    tex = _texture()
    still = [np.stack([tex[:48, :64]] * 3)] * 3
    moving = [np.stack([tex[:48, 3 * k:3 * k + 64]] * 3) for k in range(4)]
    other = [np.full((3, 48, 64), 250, np.uint8)] * 3
    frames = still + moving + other   # frames 0-2 static, 3-6 moving, cut 6 → 7
    w = clip_triplets(frames, (2, 3))
    assert w and all(0 < j < e - i for i, j, e in w)
    assert not [x for x in w if x[2] <= 3]          # frames 0-3 are the same picture: no motion
    assert all(not (i <= 6 < e) for i, _, e in w)   # nothing across the cut
    assert {(2, 1, 4), (4, 1, 6), (1, 1, 4), (1, 2, 4), (3, 1, 6), (3, 2, 6)} <= set(w)


def test_bad_input_is_named(net):
    with pytest.raises(ValueError, match="crop"):
        AdaptSettings(crop=30)
    with pytest.raises(ValueError, match="gaps"):
        AdaptSettings(gaps=(1,))
    with pytest.raises(ValueError, match="unknown argument"):
        adapt(moving_clip(), 1, model=net, learning_rate=1)
    with pytest.raises(ValueError, match="at least 3"):
        adapt(moving_clip(n=2), 1, model=net)
    static = core.std.BlankClip(width=64, height=48, format=vs.GRAY8, length=6)
    with pytest.raises(ValueError, match="no usable window"):
        adapt(static, 1, model=net, **FAST)


def test_preset_key_adapts_before_interpolating(net):
    import vsugsp

    clip = moving_clip(n=6)
    kw = {"preset": "fast", "model": net, "device": "cpu", "refine": ["fusion", "rgb"]}
    out = vsugsp.interpolate(clip, 2, adapt=2, **kw, **{"batch": 2})
    plain = vsugsp.interpolate(clip, 2, **kw)
    a, b = np.asarray(out.get_frame(1)[0]), np.asarray(plain.get_frame(1)[0])
    assert a.shape == (48, 64) and not np.array_equal(a, b)
    with pytest.raises(vs.Error, match="adapt"):
        vsugsp.interpolate(clip, 2, adapt=-1)


def test_adapt_is_refused_where_the_network_does_not_run(net):
    import vsugsp

    clip = moving_clip(n=6)
    # the default presets make frames from the prior alone: adapting a network they never run is an error
    with pytest.raises(vs.Error, match=r"adapt=2 fine-tunes the network, but refine=\[\] with flow_prior=auto"):
        vsugsp.interpolate(clip, 2, preset="fast", model=net, device="cpu", adapt=2)
    # without a prior the network runs: adapting it is allowed
    out = vsugsp.interpolate(clip, 2, preset="fast", model=net, device="cpu", adapt=1, flow_prior="none")
    assert out.num_frames == 12 and np.asarray(out.get_frame(1)[0]).shape == (48, 64)
    # realtime's prior may resolve to none (CUDA, the pool falling behind; no OpenCV): its network may be adapted
    from vsugsp.preset import load_preset

    assert load_preset("realtime", adapt=1).adapt == 1


def test_gaps_longer_than_the_clip_are_named_not_blamed_on_cuts(net):
    # 12 frames hold no window of gap 100: the clip is too short, not cut or still
    with pytest.raises(ValueError, match=r"gaps \[100\]: a gap g needs g \+ 1 consecutive frames and the clip "
                                         r"has 12; use gaps from 2 to 11") as exc:
        adapt(moving_clip(n=12), 1, model=net, gaps=(100,), **FAST)
    assert "scene cut" not in str(exc.value)
    # a long clip is read as runs of 8 frames: gap 8 needs 9
    with pytest.raises(ValueError, match=r"adapt reads runs of 8 of the clip's 40 \(max_frames 16\); use gaps "
                                         r"from 2 to 7"):
        adapt(moving_clip(n=40), 1, model=net, gaps=(8,), max_frames=16, **FAST)


@pytest.fixture
def adapt_cli(tmp_path, tiny_model, capsys):
    """Run ``vsugsp adapt`` on a 64×48 clip of ``frames`` frames: (exit code, stderr)."""
    from vsugsp import cli

    def run(frames: int, *extra: str) -> tuple[int, str]:
        src = write_clip(tmp_path / f"in{frames}.mp4", frames=frames)
        argv = ["adapt", str(src), "-o", str(tmp_path / "w.pt"), "--model", str(tiny_model), "--steps", "1",
                "--crop", "32", "--device", "cpu", *extra]
        try:
            code = cli.main(argv)
        except SystemExit as e:  # argparse's own errors
            code = e.code
        return code, capsys.readouterr().err

    return run


@pytest.mark.parametrize("frames", ["-5", "0"])
def test_cli_frames_must_be_at_least_one(adapt_cli, tmp_path, frames):
    # -5 read 3 of 8 frames (clip[:-5]) and adapted on them; 0 gave a raw "Trim: invalid last frame"
    code, err = adapt_cli(8, "--frames", frames)
    assert code == 2 and f"argument --frames: '{frames}' must be at least 1" in err.splitlines()[-1], err
    assert not (tmp_path / "w.pt").exists()


def test_cli_gaps_longer_than_the_clip_one_line_exit_2(adapt_cli, tmp_path):
    code, err = adapt_cli(12, "--gaps", "100")
    errors = [line for line in err.splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith("vsugsp: error: adapt gaps [100]: a gap g needs g + 1 consecutive frames and the "
                                "clip has 12; use gaps from 2 to 11")
    assert not (tmp_path / "w.pt").exists()
