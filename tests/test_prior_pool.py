"""The prior pool: the same priors as the serial path in any order, its sizing, and the filter with 2 workers."""
from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("cv2")

from vsugsp import prior_pool  # noqa: E402
from vsugsp.model.prior import prior_for  # noqa: E402
from vsugsp.prior_pool import PriorPool, default_workers, keeps_up, realtime_prior  # noqa: E402


def _frames(n: int, h: int = 72, w: int = 96) -> list:
    """Smooth frames sliding 2 px a frame (DIS finds real motion), 1×3×H×W in [0, 1]."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for k in range(n):
        xs = x + 2 * k
        img = np.stack([0.5 + 0.3 * np.sin(0.2 * xs + 0.1 * y), 0.5 + 0.3 * np.cos(0.15 * xs - 0.2 * y),
                        0.5 + 0.2 * np.sin(0.1 * xs * y / 40)])
        out.append(torch.from_numpy(img)[None])
    return out


@pytest.mark.parametrize("setting", ["dis", "dis-fast"])
def test_pool_gives_the_serial_priors_in_any_order(setting):
    frames = _frames(7)
    pairs = list(zip(frames[:-1], frames[1:]))
    serial = [prior_for(setting, a, b) for a, b in pairs]
    pool = PriorPool(workers=2)
    try:
        order = list(range(len(pairs)))
        for seed in range(3):
            random.Random(seed).shuffle(order)
            futures = {k: pool.submit(prior_for, setting, *pairs[k]) for k in order}
            for k, f in futures.items():
                assert torch.equal(f.result(), serial[k]), (seed, k)
        # and map, in the pairs' order
        assert all(torch.equal(a, b) for a, b in zip(pool.map(setting, pairs), serial))
    finally:
        pool.shutdown()


def test_workers_are_sized_from_the_cores():
    assert [default_workers(n) for n in (1, 2, 4, 8, 16, 64)] == [1, 1, 2, 6, 12, 48]
    assert default_workers() >= 1
    assert PriorPool(3).ahead == 3 and PriorPool(2, ahead=5).ahead == 5
    with pytest.raises(ValueError, match="prior workers=0"):
        PriorPool(0)


def test_keeps_up_is_the_pools_rate_against_the_source_rate():
    assert keeps_up(0.1, 3, 24) and not keeps_up(0.1, 2, 24)  # 30 vs 20 pairs/s
    assert not keeps_up(0.01, 8, None) and not keeps_up(0.01, 8, 0)  # unknown rate: no
    assert keeps_up(0.0, 1, 60)


def test_realtime_prior_measures_on_a_gpu_and_stands_unmeasured_on_a_cpu(caplog, monkeypatch):
    a, b = _frames(2)
    monkeypatch.setattr(prior_pool.time, "perf_counter", lambda: pytest.fail("measured on a CPU"))
    with caplog.at_level("INFO", logger="vsugsp.prior_pool"):
        assert realtime_prior("dis-light", None, torch.device("cpu"), 4, 24) == "dis-light"
        assert realtime_prior("none", None, torch.device("cpu"), 4, 24) == "none"  # OpenCV missing
    assert "realtime runs with the dis-light prior on the CPU" in caplog.text
    assert "OpenCV is not installed" in caplog.text
    monkeypatch.undo()
    # on a GPU host the measured rate decides (the frames themselves stay on the CPU here)
    monkeypatch.setattr(prior_pool.time, "perf_counter", iter([0.0, 0.05, 1.0, 1.5]).__next__)
    assert realtime_prior("dis-fast", (a, b), torch.device("cuda"), 4, 24) == "dis-fast"  # 80 pairs/s
    caplog.clear()
    with caplog.at_level("INFO", logger="vsugsp.prior_pool"):
        assert realtime_prior("dis-fast", (a, b), torch.device("cuda"), 4, 24) == "none"  # 8 pairs/s
    assert "runs without the flow prior: 4 workers give 8.0 pairs/s" in caplog.text


@pytest.mark.parametrize("motion", ["linear", "quadratic"])
def test_the_filter_computes_two_pairs_ahead_with_two_workers(monkeypatch, motion):
    """Two workers compute pairs i + 1 and i + 2 during pair i's pass (quadratic motion: i + 2 and
    i + 3, since pair i's own pass reads pair i + 1's prior); the frames equal one worker's."""
    vs = pytest.importorskip("vapoursynth")
    from vsclips import moving

    import vsugsp
    from vsugsp.interpolator import Interpolator
    from vsugsp.model import ModelConfig, UGSPNet

    torch.manual_seed(0)
    net = UGSPNet(ModelConfig(width="small")).eval()
    src = moving(vs.YUV420P8, 48, 32, length=7)

    def frames(clip):
        out = []
        for n in range(clip.num_frames):
            f = clip.get_frame(n)
            out.append(b"".join(np.asarray(f[p]).tobytes() for p in range(3)))
        return out

    one = frames(vsugsp.interpolate(src, 2, model=net, device="cpu", flow_prior="dis", motion=motion))
    events = []
    prior, call = Interpolator.prior, Interpolator.__call__

    def spy(self, a, b):
        events.append(("prior", threading.current_thread().name, time.perf_counter()))
        return prior(self, a, b)

    def slow_call(self, *args, **kw):
        time.sleep(0.2)  # room for the workers (the GIL is free while sleeping)
        out = call(self, *args, **kw)
        events.append(("pass", "", time.perf_counter()))
        return out

    monkeypatch.setattr(Interpolator, "prior", spy)
    monkeypatch.setattr(Interpolator, "__call__", slow_call)
    monkeypatch.setattr(prior_pool, "default_workers", lambda cores=None: 2)
    two = frames(vsugsp.interpolate(src, 2, model=net, device="cpu", flow_prior="dis", motion=motion))
    assert two == one
    priors = [e for e in events if e[0] == "prior"]
    first_pass_end = next(e[2] for e in events if e[0] == "pass")
    assert len(priors) == 6  # one prior per pair, never twice
    on_workers = [p[1].startswith("vsugsp-prior") for p in priors]
    if motion == "linear":
        assert sum(on_workers) == 5  # all but the first pair's came ahead
    else:
        # pair 0's own pass reads pair 1's prior at once: computed there when it gets to it before
        # a worker has claimed it (the engine allows that race, _prefetch_prior); every later
        # pair's came ahead
        assert sum(on_workers) >= 4, events
    # pairs 1 and 2 (two ahead: one per worker) started during pair 0's pass; under quadratic
    # motion pair 0's pass reads pair 1's prior itself, and the pool looks one pair further
    assert sum(p[2] < first_pass_end for p in priors) == (3 if motion == "linear" else 4), events


def test_auto_realtime_resolves_to_dis_fast_on_cuda_and_dis_light_on_a_cpu(monkeypatch):
    from vsugsp.model import prior
    from vsugsp.preset import load_preset

    assert prior.resolve("auto-realtime", "cpu") == "dis-light"
    assert prior.resolve("auto-realtime", "cuda:0") == "dis-fast"
    assert "keeps up" in prior.describe("auto-realtime", "cuda") and prior.describe("auto-realtime", "cpu") == \
        "dis-light (auto-realtime on cpu)"
    monkeypatch.setattr(prior, "available", lambda: False)
    assert prior.resolve("auto-realtime", "cpu") == prior.resolve("auto-realtime", "cuda") == "none"
    assert prior.describe("auto-realtime", "cpu") == "none (auto-realtime on cpu, OpenCV missing)"
    assert load_preset("realtime").flow_prior == "auto-realtime"
    assert load_preset("realtime").mode == "dense"


def _realtime_engine(net, flow_prior: str, setting: str = "auto-realtime", **kw):
    """An engine of the realtime preset on the CPU, preset key ``setting``, whose interpolator runs
    ``flow_prior`` (what ``setting`` resolves to on CUDA)."""
    import dataclasses

    from vsugsp.engine import Engine
    from vsugsp.interpolator import build_interpolator
    from vsugsp.preset import load_preset

    interp = build_interpolator(load_preset("realtime", device="cpu", flow_prior=setting), net)
    return Engine(dataclasses.replace(interp, flow_prior=flow_prior), prior_workers=2, **kw)


def test_auto_realtime_engine_decides_on_the_first_pair_from_injected_timings(caplog, monkeypatch):
    """As on a CUDA host: the pool's measured rate against the source rate picks dis-fast or none, once."""
    from fractions import Fraction

    from vsugsp.model import ModelConfig, UGSPNet

    torch.manual_seed(0)
    net = UGSPNet(ModelConfig(width="small")).eval()
    frames = [f[0].numpy() for f in _frames(3, 96, 128)]
    times = [Fraction(1, 2)]

    def run(engine):
        return [engine.interpolate(i, times[0], frames[i], frames[i + 1], times) for i in range(2)]

    with_prior = run(_realtime_engine(net, "dis-fast", "dis-fast"))  # the decision made, each way
    without = run(_realtime_engine(net, "none", "none"))
    assert not np.array_equal(with_prior[0], without[0])  # the prior matters on these frames

    real = prior_pool.realtime_prior
    decided = []

    def as_on_cuda(setting, pair, device, workers, fps):
        decided.append((setting, workers, fps))
        return real(setting, pair, torch.device("cuda"), workers, fps)

    monkeypatch.setattr(prior_pool, "needs_measuring", lambda setting, device: setting != "none")
    monkeypatch.setattr(prior_pool, "realtime_prior", as_on_cuda)
    # 2 workers at 0.05 s a pair: 40 pairs/s against 24 fps, keeps up
    monkeypatch.setattr(prior_pool.time, "perf_counter", iter([0.0, 0.05]).__next__)
    with caplog.at_level("INFO", logger="vsugsp.prior_pool"):
        engine = _realtime_engine(net, "dis-fast", source_fps=Fraction(24000, 1001))
        assert engine.flow_prior == "dis-fast" and not decided  # nothing measured before the first pair
        got = run(engine)
    assert decided == [("dis-fast", 2, Fraction(24000, 1001))]  # measured once
    assert engine.flow_prior == "dis-fast" and engine.interp.flow_prior == "dis-fast"
    assert all(np.array_equal(a, b) for a, b in zip(got, with_prior))
    assert "realtime runs with the dis-fast prior: 2 workers give 40.0 pairs/s, the source needs 23.98" in caplog.text
    # 2 workers at 0.5 s a pair: 4 pairs/s, does not keep up: none, said in one line
    caplog.clear()
    monkeypatch.setattr(prior_pool.time, "perf_counter", iter([0.0, 0.5]).__next__)
    with caplog.at_level("INFO", logger="vsugsp.prior_pool"):
        engine = _realtime_engine(net, "dis-fast", source_fps=Fraction(24000, 1001))
        got = run(engine)
    assert engine.flow_prior == "none" and engine.interp.flow_prior == "none"
    assert all(np.array_equal(a, b) for a, b in zip(got, without))
    lines = [r.getMessage() for r in caplog.records if "realtime runs" in r.getMessage()]
    assert lines == ["vsugsp: realtime runs without the flow prior: 2 workers give 4.0 pairs/s of dis-fast, "
                     "the source needs 23.98"]


def test_realtime_on_a_cpu_runs_the_light_prior_unmeasured_and_the_same_frames(caplog, monkeypatch):
    vs = pytest.importorskip("vapoursynth")
    from vsclips import moving

    import vsugsp
    from vsugsp.model import ModelConfig, UGSPNet

    torch.manual_seed(0)
    net = UGSPNet(ModelConfig(width="small")).eval()
    src = moving(vs.YUV420P8, 64, 48, length=4)

    def frames(**kw):
        clip = vsugsp.interpolate(src, 2, model=net, device="cpu", preset="realtime", **kw)
        return [b"".join(np.asarray(f[p]).tobytes() for p in range(3)) for f in clip.frames()]

    light = frames(flow_prior="dis-light")
    assert light != frames(flow_prior="none")  # the prior alone, not the network on its own flow
    assert light != frames(flow_prior="dis")  # and DIS's lighter preset, not medium
    monkeypatch.setattr(prior_pool.time, "perf_counter", lambda: pytest.fail("measured on a CPU"))
    with caplog.at_level("INFO", logger="vsugsp.prior_pool"):
        assert frames() == light  # the preset's auto-realtime
    assert "realtime runs with the dis-light prior on the CPU" in caplog.text
