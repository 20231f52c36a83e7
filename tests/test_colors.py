"""Colour round trip: every format family → RGBS → back equals the input within one rounding step."""
import numpy as np
import pytest

vs = pytest.importorskip("vapoursynth")

from vsclips import FORMATS, noise, odd_size  # noqa: E402

from vsugsp.colors import (  # noqa: E402
    FAMILY_GRAY,
    FAMILY_RGB,
    FAMILY_YUV,
    ColorSpec,
    from_rgb,
    resolve_color,
    to_rgb,
)

core = vs.core
pytestmark = pytest.mark.filterwarnings("ignore:The _ColorRange")


def _max_error(a: vs.VideoFrame, b: vs.VideoFrame) -> float:
    """Largest difference in rounding steps: code values (int), or the type's epsilon at 1.0 (float)."""
    fmt = a.format
    worst = 0.0
    for p in range(fmt.num_planes):
        x = np.asarray(a[p]).astype(np.float64)
        y = np.asarray(b[p]).astype(np.float64)
        step = 1.0
        if fmt.sample_type == vs.FLOAT:
            step = float(np.finfo(np.float16 if fmt.bits_per_sample == 16 else np.float32).eps)
        worst = max(worst, float(np.max(np.abs(x - y))) / step)
    return worst


PROPS = [
    None,
    {"_Matrix": 1, "_Range": 1, "_Transfer": 1, "_Primaries": 1},
    {"_Matrix": 5, "_ColorRange": 1, "_ChromaLocation": 2},
    {"_Matrix": 9, "_Range": 0, "_ChromaLocation": 1},
]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: core.get_video_format(f).name)
def test_round_trip_within_one_step(fmt):
    w, h = odd_size(fmt)
    for i, props in enumerate(PROPS):
        clip = noise(fmt, w, h, length=2, seed=10 * i, props=props)
        rgb = to_rgb(clip)
        assert rgb.format.id == vs.RGBS and (rgb.width, rgb.height) == (w, h)
        back = from_rgb(rgb, clip.format, clip)
        assert back.format.id == clip.format.id
        assert (back.width, back.height, back.num_frames) == (w, h, clip.num_frames)
        for n in range(clip.num_frames):
            err = _max_error(clip.get_frame(n), back.get_frame(n))
            assert err <= 1.0, (props, n, err)


def test_matrix_and_range_props_are_read():
    """The same YUV samples give different RGB under different matrix/range props."""
    base = core.std.BlankClip(width=8, height=8, format=vs.YUV444P8, color=[120, 90, 180], length=1)

    def rgb_of(**props):
        f = to_rgb(base.std.SetFrameProps(**props)).get_frame(0)
        return np.array([np.asarray(f[p])[0, 0] for p in range(3)])

    r709 = rgb_of(_Matrix=1, _Range=0)
    r601 = rgb_of(_Matrix=6, _Range=0)
    full = rgb_of(_Matrix=1, _Range=1)
    old_full = rgb_of(_Matrix=1, _ColorRange=0)  # pre-R81 convention: 0 = full
    assert not np.allclose(r709, r601, atol=1e-3)
    assert not np.allclose(r709, full, atol=1e-3)
    np.testing.assert_allclose(full, old_full, atol=1e-6)
    # limited-range 709 reference by hand: Y'=(120-16)/219, Cb=(90-128)/224, Cr=(180-128)/224
    y, cb, cr = (120 - 16) / 219, (90 - 128) / 224, (180 - 128) / 224
    r = y + 1.5748 * cr
    b = y + 1.8556 * cb
    g = (y - 0.2126 * r - 0.0722 * b) / 0.7152
    np.testing.assert_allclose(r709, [r, g, b], atol=2e-4)


def test_size_based_defaults():
    hd = resolve_color({}, FAMILY_YUV, 1280, 536)
    tall = resolve_color({}, FAMILY_YUV, 960, 720)
    sd = resolve_color({}, FAMILY_YUV, 720, 576)
    assert hd.matrix == 1 and tall.matrix == 1 and sd.matrix == 6
    assert hd.range == 0 and sd.range == 0  # YUV: limited
    assert resolve_color({}, FAMILY_RGB, 64, 64) == ColorSpec(0, 6, 6, 1, 0)
    assert resolve_color({}, FAMILY_GRAY, 64, 64).range == 0


def test_filter_and_scorer_share_the_size_default():
    # 1100×600 is where the scorer's old rule (> 1024 or > 576) said BT.709 and the filter's BT.601
    from vsugsp.colors import default_matrix, is_hd

    for w, h, hd in ((1100, 600, False), (1280, 536, True), (960, 720, True), (1279, 719, False)):
        assert is_hd(w, h) == hd
        assert default_matrix(w, h) == resolve_color({}, FAMILY_YUV, w, h).matrix == (1 if hd else 6)
    vs = pytest.importorskip("vapoursynth")
    from vsugsp.eval.frames import rgb24_matrix

    clip = vs.core.std.BlankClip(format=vs.YUV420P8, width=1100, height=600, length=1)
    assert rgb24_matrix(clip) == resolve_color({}, FAMILY_YUV, 1100, 600).matrix == 6


def test_prop_precedence():
    # _Range (R81: 1 = full) beats the older _ColorRange (0 = full)
    assert resolve_color({"_Range": 0, "_ColorRange": 0}, FAMILY_YUV, 64, 64).range == 0
    assert resolve_color({"_ColorRange": 0}, FAMILY_YUV, 64, 64).range == 1
    assert resolve_color({"_ColorRange": 1}, FAMILY_YUV, 64, 64).range == 0
    # unspecified (2) falls back to the size default; a set value is kept
    assert resolve_color({"_Matrix": 2}, FAMILY_YUV, 1920, 1080).matrix == 1
    assert resolve_color({"_Matrix": 9}, FAMILY_YUV, 64, 64).matrix == 9
    assert resolve_color({"_ChromaLocation": 2}, FAMILY_YUV, 64, 64).chromaloc == 2


def test_default_matrix_used_in_conversion():
    """Without props, an SD clip converts with BT.601 and an HD clip with BT.709."""
    def red_of(w, h):
        c = core.std.BlankClip(width=w, height=h, format=vs.YUV444P8, color=[120, 90, 180], length=1)
        return float(np.asarray(to_rgb(c).get_frame(0)[0])[0, 0])

    y, cr = (120 - 16) / 219, (180 - 128) / 224
    assert red_of(64, 48) == pytest.approx(y + 1.402 * cr, abs=2e-4)
    assert red_of(1280, 16) == pytest.approx(y + 1.5748 * cr, abs=2e-4)


def test_gray_becomes_three_equal_channels():
    c = noise(vs.GRAY16, 33, 17, length=1)
    f = to_rgb(c).get_frame(0)
    assert np.array_equal(np.asarray(f[0]), np.asarray(f[1]))
    assert np.array_equal(np.asarray(f[0]), np.asarray(f[2]))
