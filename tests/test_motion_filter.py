"""``motion: quadratic`` through the filter (issue 23 item 3): the four-frame request, its fall-backs, the key."""
from __future__ import annotations

import numpy as np
import pytest

vs = pytest.importorskip("vapoursynth")
torch = pytest.importorskip("torch")

from vsclips import moving, planes_of  # noqa: E402

import vsugsp  # noqa: E402
from vsugsp.engine import Engine  # noqa: E402
from vsugsp.interpolator import Interpolator  # noqa: E402
from vsugsp.preset import load_preset  # noqa: E402

core = vs.core
pytestmark = pytest.mark.filterwarnings("ignore:The _ColorRange")


def _uniform(a: "torch.Tensor", vx: float, vy: float) -> "torch.Tensor":
    """A pair flow moving every pixel by (vx, vy): F(0→1) = v, F(1→0) = −v."""
    h, w = a.shape[-2:]
    v = torch.tensor([vx, vy, -vx, -vy], dtype=torch.float32).view(1, 4, 1, 1)
    return v.expand(1, 4, h, w).contiguous()


def constant_prior(self, a, b):
    return _uniform(a, 1.5, -0.5)


def varying_prior(self, a, b):
    # a velocity per pair from its first frame's content: neighbours accelerate (up to ~5 px)
    k = float(a.float().mean()) * 1000.0
    return _uniform(a, 1.0 + 5.0 * (k - np.floor(k)), 0.5)


def frames(clip) -> list[bytes]:
    return [b"".join(p.tobytes() for p in planes_of(clip.get_frame(n))) for n in range(clip.num_frames)]


def run(src, net, motion, **kw):
    return vsugsp.interpolate(src, 2, model=net, device="cpu", precision="fp32", flow_prior="dis",
                              motion=motion, **kw)


@pytest.fixture
def spy(monkeypatch):
    """Records (pair, has frame i − 1, has frame i + 2) of every render and the motions' channel count."""
    seen, channels = [], []
    render, flows_at = Engine.render, None

    def spy_render(self, i, t, f0, f1, times, ahead=None, host=True, neighbours=None):
        seen.append((i, None if neighbours is None else tuple(x is not None for x in neighbours)))
        return render(self, i, t, f0, f1, times, ahead, host, neighbours)

    from vsugsp.model import net as netmod

    flows = netmod.UGSPNet._prior_readings  # read by the network's prior and by the prior alone

    def spy_flows(pair_flow, *args):
        channels.append(pair_flow.shape[1])
        return flows(pair_flow, *args)

    monkeypatch.setattr(Engine, "render", spy_render)
    monkeypatch.setattr(netmod.UGSPNet, "_prior_readings", staticmethod(spy_flows))
    return seen, channels


@pytest.mark.parametrize("fmt,refine", [(vs.YUV420P8, []), (vs.RGBS, []), (vs.YUV420P8, ["fusion", "rgb"])])
def test_constant_velocity_neighbours_give_the_linear_frames(net, monkeypatch, spy, fmt, refine):
    """The prior alone (the default presets) and the network on the prior."""
    calls = []
    monkeypatch.setattr(Interpolator, "prior", lambda self, a, b: calls.append(1) or constant_prior(self, a, b))
    src = moving(fmt, 48, 32, length=5)
    linear = frames(run(src, net, "linear", refine=refine))
    seen, channels = spy
    assert seen and all(sides is None for _, sides in seen) and set(channels) == {4}  # linear: as before
    seen.clear()
    calls.clear()
    assert frames(run(src, net, "quadratic", refine=refine)) == linear
    assert len(calls) == 4  # one prior per pair, shared with the neighbours' motions: no extra DIS run
    # the quadratic path was taken: neighbours on both sides inside the clip, B×8 motions reached the net
    assert {(i, sides) for i, sides in seen} == {(0, (False, True)), (1, (True, True)), (2, (True, True)),
                                                  (3, (True, False))}
    assert 8 in channels


def test_accelerating_neighbours_change_the_inner_frames(net, monkeypatch):
    monkeypatch.setattr(Interpolator, "prior", varying_prior)
    src = moving(vs.YUV420P8, 48, 32, length=5)
    linear, quad = frames(run(src, net, "linear")), frames(run(src, net, "quadratic"))
    assert linear[0::2] == quad[0::2]  # the source frames
    assert all(linear[n] != quad[n] for n in (1, 3, 5))


def test_clip_ends_and_scene_cuts_fall_back_to_the_linear_frames(net, monkeypatch, spy):
    """Scenes of two frames each: every pair's outer neighbour lies past an end or across a cut,
    so even accelerating priors give exactly the linear frames, and the engine is told so."""
    monkeypatch.setattr(Interpolator, "prior", varying_prior)
    a = moving(vs.YUV420P8, 48, 32, length=2, seed=1)
    b = moving(vs.YUV420P8, 48, 32, length=2, seed=5, speed=-2.0)
    src = a + b  # a cut between source frames 1 and 2
    linear = frames(run(src, net, "linear"))
    seen, channels = spy
    seen.clear()
    channels.clear()
    assert frames(run(src, net, "quadratic")) == linear
    assert sorted(set(seen)) == [(0, (False, False)), (2, (False, False))]  # pair 1 is the cut: not interpolated
    assert channels and set(channels) == {4}


def test_one_vapoursynth_thread_with_quadratic_motion_finishes(net, monkeypatch):
    """The outer frames come with the pair's own request: one VapourSynth thread never waits
    on a worker that waits for a frame (the engine's rule, here with four frames per pair)."""
    import time

    monkeypatch.setattr(Interpolator, "prior", varying_prior)
    call = Interpolator.__call__

    def slow_call(self, *args, **kw):
        time.sleep(0.05)
        return call(self, *args, **kw)

    src = moving(vs.YUV420P8, 48, 32, length=6)
    want = frames(run(src, net, "quadratic"))
    monkeypatch.setattr(Interpolator, "__call__", slow_call)
    old = core.num_threads
    core.num_threads = 1
    try:
        assert frames(run(src, net, "quadratic")) == want
    finally:
        core.num_threads = old


def test_quadratic_without_a_prior_is_linear(net):
    """quadratic is the default: with flow_prior none (or a prior that resolves to none) there is
    nothing to bend, and the frames are linear's, not an error."""
    assert load_preset("balanced").motion == "quadratic" and load_preset("realtime").motion == "linear"
    assert load_preset("balanced", flow_prior="none").motion == "quadratic"
    src = moving(vs.YUV420P8, 48, 32, length=4)
    quad = vsugsp.interpolate(src, 2, model=net, device="cpu", motion="quadratic", flow_prior="none")
    lin = vsugsp.interpolate(src, 2, model=net, device="cpu", motion="linear", flow_prior="none")
    assert frames(quad) == frames(lin)
    with pytest.raises(ValueError, match="'motion' = 'cubic' is invalid; allowed: linear | quadratic"):
        load_preset("balanced", motion="cubic")
