"""The frame-drop protocol on tiny synthetic clips: what is scored, oracles, blending, peers."""

import math

import numpy as np
import pytest

vs = pytest.importorskip("vapoursynth")

from vsugsp.eval import peers as peers_mod  # noqa: E402
from vsugsp.eval.frames import clip_from_rgb, frame_to_rgb, from_rgb24, rgb24_matrix, to_rgb24  # noqa: E402
from vsugsp.eval.metrics import psnr  # noqa: E402
from vsugsp.eval.peers import PeerMissing, make_peer  # noqa: E402
from vsugsp.eval.protocol import keep_even, oracle, run_frame_drop, scored_indices  # noqa: E402

core = vs.core
H, W = 48, 96


def _texture(seed=0, h=H, w=W + 16):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4 + 2, w // 4 + 2, 3)).astype(np.float32)
    # bilinear-ish upsampling of coarse noise: smooth enough for optical flow to lock on
    ys = np.linspace(0, small.shape[0] - 1.001, h)
    xs = np.linspace(0, small.shape[1] - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    s = small
    img = (s[y0][:, x0] * (1 - fy) * (1 - fx) + s[y0 + 1][:, x0] * fy * (1 - fx)
           + s[y0][:, x0 + 1] * (1 - fy) * fx + s[y0 + 1][:, x0 + 1] * fy * fx)
    return img.astype(np.uint8)


def moving_clip(n, step=2, fps=24):
    """A texture panning right by ``step`` pixels per frame (crops of a wider image)."""
    tex = _texture(w=W + step * n)
    return clip_from_rgb([np.ascontiguousarray(tex[:, step * i : step * i + W]) for i in range(n)], (fps, 1))


def noise_clip(n, seed=1):
    rng = np.random.default_rng(seed)
    return clip_from_rgb([rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(n)], (24, 1))


def ramp_clip(n):
    """Frame i is flat grey 20·i: halfway frames are exact averages of their neighbours."""
    return clip_from_rgb([np.full((H, W, 3), 20 * i, np.uint8) for i in range(n)], (30000, 1001))


def yuv(clip):
    return core.resize.Bicubic(clip, format=vs.YUV420P8, matrix=6)


@pytest.mark.parametrize("n,expected", [(0, []), (1, []), (2, []), (3, [1]), (4, [1]), (5, [1, 3]),
                                        (6, [1, 3]), (7, [1, 3, 5]), (120, list(range(1, 119, 2)))])
def test_scored_indices_exclude_the_last_odd_frame(n, expected):
    assert scored_indices(n) == expected


def test_keep_even_halves_frames_and_rate():
    src = noise_clip(7)
    half = keep_even(src)
    assert half.num_frames == 4 and half.fps == src.fps / 2
    assert np.array_equal(frame_to_rgb(half.get_frame(2)), frame_to_rgb(src.get_frame(4)))


@pytest.mark.parametrize("n", [8, 9])
def test_perfect_oracle_scores_the_cap_on_every_scored_frame(n):
    src = noise_clip(n)
    run = run_frame_drop(src, oracle(src))
    assert run.frames == len(scored_indices(n)) == (n - 1) // 2
    assert run.indices == scored_indices(n)
    assert run.psnr == 99.0 and all(p == 99.0 for p in run.frame_psnr)
    assert run.ssim == pytest.approx(1.0)
    assert run.seconds > 0 and run.fps > 0 and len(run.frame_ssim) == run.frames


def test_oracle_is_perfect_on_yuv420_too():
    src = yuv(moving_clip(7))
    assert run_frame_drop(src, oracle(src)).psnr == 99.0


def test_only_the_scored_odd_frames_matter():
    n = 8  # scored: 1, 3, 5; frame 7 has no right neighbour
    src = noise_clip(n)
    junk = noise_clip(n, seed=99)

    def even_and_last_wrong(half):
        # even output frames and the unscored last odd frame come from another clip
        frames = [junk[i] if (i % 2 == 0 or i == n - 1) else src[i] for i in range(n)]
        return core.std.Splice(frames)

    assert run_frame_drop(src, even_and_last_wrong).psnr == 99.0

    def one_scored_frame_wrong(half):
        return core.std.Splice([junk[i] if i == 3 else src[i] for i in range(n)])

    run = run_frame_drop(src, one_scored_frame_wrong)
    assert run.frame_psnr[0] == 99.0 and run.frame_psnr[2] == 99.0
    assert run.frame_psnr[1] < 20.0  # independent noise frames
    assert run.psnr == pytest.approx((99.0 * 2 + run.frame_psnr[1]) / 3)


def test_blend_of_a_static_clip_is_perfect():
    frame = _texture()[:, :W].copy()
    src = yuv(clip_from_rgb([frame] * 9, (25, 1)))
    run = run_frame_drop(src, make_peer("blend").method)
    assert run.psnr == 99.0 and run.frames == 4


def test_blend_is_exact_on_a_brightness_ramp_and_uses_the_next_even_frame():
    run = run_frame_drop(ramp_clip(9), make_peer("blend").method)
    assert run.psnr == 99.0

    def previous_frame(half):  # misaligned "interpolator": repeats frame k for 2k+1
        return core.std.Interleave([half, half])

    bad = run_frame_drop(ramp_clip(9), previous_frame)
    # a constant error of 20 levels on every sample: PSNR = 20·log10(255/20)
    assert bad.psnr == pytest.approx(20 * math.log10(255 / 20), abs=1e-6)


def test_protocol_rejects_broken_methods():
    src = noise_clip(7)
    with pytest.raises(ValueError, match="at least 3"):
        run_frame_drop(noise_clip(2), oracle(noise_clip(2)))
    with pytest.raises(ValueError, match="frames"):
        run_frame_drop(src, lambda half: half)  # no rate change, too few frames
    with pytest.raises(ValueError, match="size"):
        run_frame_drop(src, lambda half: core.resize.Point(src, width=32, height=24))
    if peers_mod.has_plugin("mv"):  # FlowFPS would crash the process on such narrow frames
        with pytest.raises(ValueError, match="wider than 64"):
            run_frame_drop(core.resize.Point(src, width=64), make_peer("mvtools").method)
    with pytest.raises(ValueError, match="rate"):
        run_frame_drop(src, lambda half: core.std.AssumeFPS(src, fpsnum=5))
    with pytest.raises(ValueError, match="VideoNode"):
        run_frame_drop(src, lambda half: None)


def test_matrix_comes_from_props_else_size():
    small = yuv(noise_clip(3))
    assert rgb24_matrix(core.std.RemoveFrameProps(small, "_Matrix")) == 6
    assert rgb24_matrix(core.std.SetFrameProps(small, _Matrix=2)) == 6  # unspecified → size default
    assert rgb24_matrix(core.std.SetFrameProps(small, _Matrix=1)) == 1
    hd = core.std.BlankClip(format=vs.YUV420P8, width=1280, height=720, length=1)
    assert rgb24_matrix(hd) == 1
    assert rgb24_matrix(noise_clip(1)) == 0  # RGB needs none


def test_conversion_ignores_a_method_changing_the_matrix_prop():
    src = yuv(moving_clip(7))
    tagged = lambda half: core.std.SetFrameProps(oracle(src)(half), _Matrix=1)  # noqa: E731
    assert run_frame_drop(src, tagged, matrix=6).psnr == 99.0


@pytest.mark.parametrize("name", ["blend", "mvtools", "svp", "dis"])
def test_every_peer_is_perfect_on_a_static_clip_and_keeps_format(name):
    try:
        peer = make_peer(name)
    except PeerMissing as e:
        pytest.skip(str(e))
    frame = _texture()[:, :W].copy()
    src = yuv(clip_from_rgb([frame] * 7, (24, 1)))
    out = peer.method(keep_even(src))
    assert out.format.id == vs.YUV420P8 and out.fps == src.fps
    run = run_frame_drop(src, peer.method)
    if name == "dis":
        # dis works on RGB: a static clip comes back exactly up to the RGB→YUV 4:2:0 round trip
        rgb = to_rgb24(src, 6)
        trip = to_rgb24(from_rgb24(rgb, src.format, 6), 6)
        bound = psnr(frame_to_rgb(rgb.get_frame(1)), frame_to_rgb(trip.get_frame(1)))
        assert run.psnr == pytest.approx(bound, abs=0.01)
    else:
        assert run.psnr > 60.0, f"{name} altered a static clip"


@pytest.mark.parametrize("name", ["mvtools", "dis"])
def test_motion_peers_beat_blending_on_a_pan(name):
    try:
        peer = make_peer(name)
    except PeerMissing as e:
        pytest.skip(str(e))
    src = yuv(moving_clip(9, step=3))
    blend = run_frame_drop(src, make_peer("blend").method)
    moved = run_frame_drop(src, peer.method)
    assert moved.psnr > blend.psnr + 3.0


def test_missing_plugin_is_reported_not_skipped(monkeypatch):
    monkeypatch.setattr(peers_mod, "has_plugin", lambda ns: False)
    with pytest.raises(PeerMissing, match="mvtools"):
        make_peer("mvtools")
    with pytest.raises(PeerMissing, match="svpflow"):
        make_peer("svp")
    with pytest.raises(ValueError, match="unknown peer"):
        make_peer("rife")


def test_dis_output_is_the_midframe_of_a_pan():
    pytest.importorskip("cv2")
    from vsugsp.eval.dis_flow import dis_interpolate

    tex = _texture(w=W + 40)
    a, mid, b = (np.ascontiguousarray(tex[:, x : x + W]) for x in (10, 14, 18))
    out = dis_interpolate(a, b)
    inner = (slice(8, -8), slice(12, -12))  # borders see outside the crops
    err = np.abs(out[inner].astype(int) - mid[inner]).mean()
    blend_err = np.abs(((a.astype(int) + b) // 2)[inner] - mid[inner]).mean()
    assert err < 0.25 * blend_err
    with pytest.raises(ValueError, match="preset"):
        dis_interpolate(a, b, preset="slowest")


def test_to_rgb24_uses_the_given_matrix():
    src = yuv(noise_clip(1))
    a = frame_to_rgb(to_rgb24(src, 6).get_frame(0)).astype(int)
    b = frame_to_rgb(to_rgb24(src, 1).get_frame(0)).astype(int)
    assert np.abs(a - b).max() > 3  # BT.601 and BT.709 differ on saturated noise


def test_motion_aware_dis_peers_score_and_dis_is_unchanged():
    pytest.importorskip("cv2")
    from vsugsp.eval.dis_flow import dis_flow, dis_interpolate, interpolate_frames

    tex = _texture(w=W + 60)
    a, b = (np.ascontiguousarray(tex[:, x : x + W]) for x in (10, 18))
    # with every part off the generic interpolator is the dis peer's, bit for bit
    assert np.array_equal(interpolate_frames(a, b, 0.5, flow=dis_flow("medium")), dis_interpolate(a, b))
    src = moving_clip(9, step=3)
    dis = run_frame_drop(src, make_peer("dis").method)
    for name in ("dis-sym", "dis-occ", "dis-quad", "dis-quad-occ"):
        peer = make_peer(name)
        run = run_frame_drop(src, peer.method)
        assert run.frames == dis.frames and abs(run.psnr - dis.psnr) < 3, (name, run.psnr, dis.psnr)
        assert peer.params["reading"] in ("own", "both")


def test_quadratic_peer_falls_back_at_a_scene_cut():
    pytest.importorskip("cv2")
    # a pan whose 4th half-rate frame starts another scene: the pairs beside the cut lose that
    # neighbour (and the first and last pair theirs), and only that one
    from vsugsp.eval.dis_flow import dis_flow, interpolate_frames

    pan = moving_clip(12, step=3)
    other = noise_clip(12, seed=5)

    def mids(src, name):
        out = to_rgb24(make_peer(name).method(keep_even(src)), 0)
        return [frame_to_rgb(out.get_frame(2 * k + 1)) for k in range(5)]

    # half-rate frames 0..5 (source 0, 2, ..); the cut lies between 2 and 3, flagged as a source
    # filter would (the detector's thumbnails cannot tell these synthetic scenes apart)
    cut = core.std.SetFrameProps(pan[:6] + other[6:], _SceneChangeNext=0)
    cut = cut[:4] + core.std.SetFrameProps(cut[4], _SceneChangeNext=1) + cut[5:]
    half = [frame_to_rgb(f) for f in to_rgb24(keep_even(cut), 0).frames()]
    quad = mids(cut, "dis-quad")
    flow = dis_flow("medium")

    def expect(k, prev, nxt):
        return interpolate_frames(half[k], half[k + 1], 0.5, flow=flow, prev=prev, nxt=nxt,
                                  quadratic=True, reading="both")

    assert np.array_equal(quad[1], expect(1, half[0], None))  # pair (1, 2): frame 3 is another scene
    assert np.array_equal(quad[3], expect(3, None, half[5]))  # pair (3, 4): frame 2 is another scene
    assert np.array_equal(quad[0], expect(0, None, half[2]))  # the clip's start
    assert np.array_equal(quad[4], expect(4, half[3], None))  # the clip's end
    # and the fall-backs are not the frames the other neighbours would give
    assert not np.array_equal(quad[1], expect(1, half[0], half[3]))
    assert not np.array_equal(quad[3], expect(3, half[2], half[5]))
