"""benchmarks/bench_priors.py --clips training: the clip's tail, in order, scored by the shared protocol."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from script_modules import load_script  # noqa: E402
from videofiles import write_ffv1  # noqa: E402

N_FRAMES, W, H, STEP = 15, 64, 48, 2


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/bench_priors.py")


def _frames() -> list[np.ndarray]:
    """A smooth random texture panned by STEP px per frame (a crop of a wider image, so no wrap-around)."""
    import cv2

    rng = np.random.default_rng(7)
    wide = rng.uniform(0, 255, (H, W + STEP * N_FRAMES, 3)).astype(np.float32)
    # blurred noise: texture DIS can follow, smooth enough that the linear warp is near exact
    wide = cv2.GaussianBlur(wide, (0, 0), 2.0)
    wide = np.clip((wide - wide.mean()) * 4 + 128, 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(wide[:, STEP * k:STEP * k + W]) for k in range(N_FRAMES)]


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    path = tmp_path_factory.mktemp("priors") / "pan.mkv"
    frames = _frames()
    write_ffv1(path, frames)  # lossless, so decoded frames equal the written ones
    return path, frames


def test_loader_returns_the_tail_in_order(bench, video):
    path, written = video
    scored = 4
    clips, info = bench.load_training([path], scored)
    frames, flags = clips["pan"]
    need = 2 * scored + 3
    assert len(frames) == need
    # the last frames, in order: a loader returning the first ones (or shuffled) fails here
    for got, want in zip(frames, written[-need:]):
        assert np.array_equal(got, want)
    assert not np.array_equal(frames[0], written[0])
    assert flags == [False] * (scored + 2)  # a pan, no cut
    assert info["pan"] == {"path": str(path), "size": f"{W}x{H}", "source_frames": N_FRAMES,
                           "window": [N_FRAMES - need, N_FRAMES - 1], "cuts_after_half_rate_frames": []}
    with pytest.raises(ValueError, match="lower --max-frames"):
        bench.load_tail(path, 7)  # 17 frames needed, 15 there


def test_dis_medium_scores_high_and_zero_flow_lower(bench, video):
    path, _ = video
    scored = 4
    (frames, flags), = bench.load_training([path], scored)[0].values()
    flow = bench.METHODS["dis-medium"][0]()
    flows, ms = bench.compute_flows(flow, frames, scored + 1)
    assert len(ms) == scored + 1 and set(flows) >= {(k, k + 1) for k in range(scored + 1)}
    good = bench.score(frames, flags, flows, scored)
    zero = {key: np.zeros_like(f) for key, f in flows.items()}
    bad = bench.score(frames, flags, zero, scored)
    assert good > 30.0
    assert bad < good - 5.0
    for variant in bench.ABLATION.values():  # every ablation variant runs on the tail window
        assert bench.score(frames, flags, flows, scored, variant) > 30.0


def test_half_rate_cuts_uses_the_scene_detector(bench):
    frames = _frames()[:5]
    yy, xx = np.mgrid[:H, :W]
    other = np.repeat((((yy // 16 + xx // 16) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)  # another shot
    # half-rate frames: 0, 2, 4 (the pan), the other shot, 4 again: cuts after half-rate frames 2 and 3
    assert bench.half_rate_cuts(frames + [frames[4], other, other, frames[4]]) == [False, False, True, True, False]
