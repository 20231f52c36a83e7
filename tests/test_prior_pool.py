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


def test_realtime_prior_measures_on_a_gpu_and_stays_off_on_a_cpu(caplog, monkeypatch):
    a, b = _frames(2)
    with caplog.at_level("INFO", logger="vsugsp.prior_pool"):
        assert realtime_prior("dis-fast", (a, b), torch.device("cpu"), 4, 24) == "none"
    assert "without the flow prior on the CPU" in caplog.text
    # on a GPU host the measured rate decides (the frames themselves stay on the CPU here)
    monkeypatch.setattr(prior_pool.time, "perf_counter", iter([0.0, 0.05, 1.0, 1.5]).__next__)
    assert realtime_prior("dis-fast", (a, b), torch.device("cuda"), 4, 24) == "dis-fast"  # 80 pairs/s
    caplog.clear()
    with caplog.at_level("INFO", logger="vsugsp.prior_pool"):
        assert realtime_prior("dis-fast", (a, b), torch.device("cuda"), 4, 24) == "none"  # 8 pairs/s
    assert "runs without the flow prior: 4 workers give 8.0 pairs/s" in caplog.text


def test_the_filter_computes_two_pairs_ahead_with_two_workers(monkeypatch):
    """Two workers compute pairs i + 1 and i + 2 during pair i's pass; the frames equal one worker's."""
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

    one = frames(vsugsp.interpolate(src, 2, model=net, device="cpu", flow_prior="dis"))
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
    two = frames(vsugsp.interpolate(src, 2, model=net, device="cpu", flow_prior="dis"))
    assert two == one
    priors = [e for e in events if e[0] == "prior"]
    first_pass_end = next(e[2] for e in events if e[0] == "pass")
    assert len(priors) == 6  # one prior per pair, never twice
    assert sum(p[1].startswith("vsugsp-prior") for p in priors) == 5  # all but the first pair's came ahead
    # pairs 1 and 2 (two ahead: one per worker) started during pair 0's pass
    assert sum(p[2] < first_pass_end for p in priors) == 3, events
