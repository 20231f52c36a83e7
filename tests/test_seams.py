"""No pruning seams: where both source frames are static, the output is the source.

A flat dark clip (black level, 8- and 10-bit YUV) with one white square moving
across it, through every pruned preset (and forced heavy pruning): every pixel
farther than 32 px from the square in both source frames must stay within one
8-bit step of the source, and the square itself must still be interpolated.
"""
from __future__ import annotations

import numpy as np
import pytest

vs = pytest.importorskip("vapoursynth")

import vsugsp  # noqa: E402
from vsugsp.preset import available_presets, load_preset  # noqa: E402

core = vs.core
W, H, SIDE, SPEED, X0, Y0 = 320, 240, 24, 12, 60, 100
PRUNED = [p for p in available_presets() if load_preset(p).mode in ("pruned", "auto")]  # auto is pruned on a CPU


def _square_clip(fmt: int) -> vs.VideoNode:
    f = core.get_video_format(fmt)
    peak = 1 << f.bits_per_sample
    black, white, grey = 16 * peak // 256, 235 * peak // 256, peak // 2
    base = core.std.BlankClip(width=W, height=H, format=fmt, length=4, fpsnum=24, fpsden=1,
                              color=[black, grey, grey])

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        x = X0 + SPEED * n
        np.asarray(out[0])[Y0:Y0 + SIDE, x:x + SIDE] = white
        return out

    return core.std.ModifyFrame(base, base, fill)


def _far(n_src: int) -> np.ndarray:
    far = np.ones((H, W), bool)
    for k in (n_src, n_src + 1):
        x = X0 + SPEED * k
        far[max(0, Y0 - 32):Y0 + SIDE + 32, max(0, x - 32):x + SIDE + 32] = False
    return far


@pytest.mark.parametrize("fmt", [vs.YUV420P8, vs.YUV420P10], ids=["8bit", "10bit"])
@pytest.mark.parametrize("preset,over", [(p, {}) for p in PRUNED] + [("balanced", {"max_density": 0.05})],
                         ids=PRUNED + ["balanced-density-0.05"])
def test_static_areas_stay_the_source(fmt, preset, over):
    clip = _square_clip(fmt)
    step = 1 << (clip.format.bits_per_sample - 8)  # one 8-bit step in this depth's codes
    out = vsugsp.interpolate(clip, 2, preset=preset, device="cpu", **over)
    black = int(np.asarray(clip.get_frame(0)[0])[0, 0])
    for n in (1, 3):
        frame = out.get_frame(n)
        y = np.asarray(frame[0]).astype(int)
        far = _far(n // 2)
        assert far.sum() > 0.6 * W * H
        worst = np.abs(y[far] - black).max()
        assert worst <= step, f"{preset} {over} frame {n}: static area off by {worst} codes (allowed {step})"
        for p in (1, 2):  # chroma of the grey background too
            c = np.asarray(frame[p]).astype(int)
            cf = far[::2, ::2][: c.shape[0], : c.shape[1]]
            assert np.abs(c[cf] - (1 << (clip.format.bits_per_sample - 1))).max() <= step
        # the square is still there, between its two positions (not erased by the guard)
        mid = X0 + SPEED * (n // 2) + SPEED // 2
        inner = y[Y0 + 4:Y0 + SIDE - 4, mid + 4:mid + SIDE - 4]
        assert inner.mean() > black + 0.5 * (int(np.asarray(clip.get_frame(0)[0])[Y0, X0]) - black)
