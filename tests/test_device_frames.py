"""vsugsp.device_frames against vsugsp.colors: the same RGB and the same codes back, every format and siting."""
import numpy as np
import pytest

vs = pytest.importorskip("vapoursynth")
torch = pytest.importorskip("torch")

from vsclips import FORMATS, noise, odd_size  # noqa: E402

from vsugsp import colors, device_frames as dfr  # noqa: E402

core = vs.core
pytestmark = pytest.mark.filterwarnings("ignore:The _ColorRange")

PROPS = [
    None,  # size defaults: BT.601, limited (YUV/GRAY), full (RGB), left siting
    {"_Matrix": 1, "_Range": 1, "_ChromaLocation": 1},
    {"_Matrix": 5, "_ColorRange": 1, "_ChromaLocation": 2},
    {"_Matrix": 9, "_Range": 0, "_ChromaLocation": 3},
    {"_Matrix": 4, "_Range": 1, "_ChromaLocation": 4},
    {"_Matrix": 7, "_Range": 0, "_ChromaLocation": 5},
    {"_Matrix": 8, "_Range": 1},
]


def _planes(frame):
    return [np.array(frame[p], copy=True) for p in range(frame.format.num_planes)]


def _device_rgb(frame, fmt):
    pf = dfr.PlaneFormat.of(fmt)
    spec = colors.resolve_color(frame.props, pf.family, frame.width, frame.height)
    t = [torch.from_numpy(dfr._host(p)) for p in _planes(frame)]
    return dfr.to_rgb(t, pf, spec)[0].numpy(), spec


def _step(fmt):
    """One rounding step of the format in float RGB terms (an 8-bit step for 8-bit and float formats)."""
    return 1.0 / ((1 << fmt.bits_per_sample) - 1) if fmt.sample_type == vs.INTEGER else 1.0 / 255


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: core.get_video_format(f).name)
def test_to_rgb_matches_colors(fmt):
    w, h = odd_size(fmt)
    for i, props in enumerate(PROPS):
        clip = noise(fmt, w, h, length=1, seed=3 * i, props=props)
        want = np.stack(_planes(colors.to_rgb(clip).get_frame(0)))
        got, spec = _device_rgb(clip.get_frame(0), clip.format)
        assert got.shape == want.shape == (3, h, w)
        err = np.abs(got.astype(np.float64) - want).max()
        # float arithmetic in another order: a few ulps, far below one code of the format
        assert err <= 1e-5 + (1e-3 if clip.format.bits_per_sample == 16 and clip.format.sample_type == vs.FLOAT
                              else 0), (props, spec, err)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: core.get_video_format(f).name)
def test_from_rgb_matches_colors(fmt):
    w, h = odd_size(fmt)
    pf = None
    for i, props in enumerate(PROPS):
        clip = noise(fmt, w, h, length=1, seed=5 * i + 1, props=props)
        rgb = noise(vs.RGBS, w, h, length=1, seed=7 * i + 2)  # any RGB, slightly beyond [0, 1] is fine too
        want = colors.from_rgb(rgb, clip.format, clip).get_frame(0)
        f = clip.get_frame(0)
        pf = dfr.PlaneFormat.of(clip.format)
        spec = colors.resolve_color(f.props, pf.family, w, h)
        x = torch.from_numpy(np.stack(_planes(rgb.get_frame(0))))
        got = dfr.from_rgb(x, pf, spec)
        for p, (g, ref) in enumerate(zip(got, _planes(want))):
            g = g.numpy()
            assert g.shape == ref.shape, (p, g.shape, ref.shape)
            d = np.abs(g.astype(np.float64) - ref.astype(np.float64))
            if clip.format.sample_type == vs.INTEGER:
                # one code at most, and only where the float sits on a rounding boundary
                assert d.max() <= 1 and (d > 0).mean() < 0.01, (props, p, d.max(), (d > 0).mean())
            else:
                tol = 1e-3 if clip.format.bits_per_sample == 16 else 1e-5
                assert d.max() <= tol, (props, p, d.max())


@pytest.mark.parametrize("fmt", [vs.YUV420P8, vs.YUV420P10, vs.YUV422P8, vs.YUV444P8, vs.GRAY8, vs.RGB24, vs.RGB30])
def test_round_trip_on_the_device_keeps_the_codes(fmt):
    """Frame → RGB → frame on the device returns every code within one step (as colors.py's round trip)."""
    w, h = odd_size(fmt)
    for props in PROPS[:4]:
        clip = noise(fmt, w, h, length=1, seed=11, props=props)
        f = clip.get_frame(0)
        rgb, spec = _device_rgb(f, clip.format)
        back = dfr.from_rgb(torch.from_numpy(rgb), dfr.PlaneFormat.of(clip.format), spec)
        for p, ref in enumerate(_planes(f)):
            assert np.abs(back[p].numpy().astype(int) - ref.astype(int)).max() <= 1, (props, p)


def test_matrices_beyond_the_linear_ones_are_refused():
    assert not dfr.matrix_supported(10) and not dfr.matrix_supported(14) and dfr.matrix_supported(1)
    pf = dfr.PlaneFormat(colors.FAMILY_YUV, 8, False, 1, 1)
    spec = colors.ColorSpec(10, 1, 1, 0, 0)
    with pytest.raises(ValueError, match="matrix 10"):
        dfr.to_rgb([torch.zeros(4, 4, dtype=torch.uint8), torch.zeros(2, 2, dtype=torch.uint8),
                    torch.zeros(2, 2, dtype=torch.uint8)], pf, spec)


def test_transfer_on_the_cpu_copies_up_and_views_down():
    tr = dfr.Transfer(torch.device("cpu"))
    plane = np.arange(12, dtype=np.uint16).reshape(3, 4)
    up = tr.upload([plane], lambda ps: ps[0])
    assert up.dtype == torch.int32 and np.array_equal(up.numpy(), plane)
    up[0, 0] = 99
    assert plane[0, 0] == 0  # the frame's memory is never written
    down = tr.download(up, lambda x: [x])
    assert isinstance(down[0], np.ndarray) and down[0][0, 0] == 99


@pytest.mark.parametrize("chromaloc", [0, 1, 2])
def test_chroma_goes_up_linearly_and_comes_back_exactly(chromaloc):
    """Subsampled chroma is interpolated between its samples (a warp then moves a coloured
    edge smoothly, not in 2×2 blocks), each sample on its own pixel 2j whatever the siting,
    so taking those pixels back gives the samples exactly."""
    fmt = core.get_video_format(vs.YUV420PS)
    pf = dfr.PlaneFormat.of(fmt)
    spec = colors.ColorSpec(matrix=1, transfer=1, primaries=1, range=1, chromaloc=chromaloc)
    g = torch.Generator().manual_seed(3)
    y = torch.rand(8, 12, generator=g)
    u, v = torch.rand(4, 6, generator=g) - 0.5, torch.zeros(4, 6)
    rgb = dfr.to_rgb([y, u, v], pf, spec)[0]
    # the blue-difference channel B − Y is a multiple of U alone (V = 0): read U back at full size
    kr, kb = dfr.KR_KB[1]
    u_full = (rgb[2] - y) / (2 * (1 - kb))
    torch.testing.assert_close(u_full[::2, ::2], u, atol=1e-6, rtol=0)  # the samples on pixels 2j
    torch.testing.assert_close(u_full[::2, 1:-1:2], 0.5 * (u[:, :-1] + u[:, 1:]), atol=1e-6, rtol=0)
    torch.testing.assert_close(u_full[1:-1:2, ::2], 0.5 * (u[:-1] + u[1:]), atol=1e-6, rtol=0)
    torch.testing.assert_close(u_full[-1, ::2], u[-1], atol=1e-6, rtol=0)  # the last sample repeated
    back = dfr.from_rgb(rgb, pf, spec)
    for got, want in zip(back, (y, u, v)):
        torch.testing.assert_close(got.float(), want, atol=1e-5, rtol=0)


def test_colors_from_rgb_keeps_the_sources_chroma_location():
    src = noise(vs.YUV420P8, 32, 24, length=1, props={"_ChromaLocation": 1})
    rgb = colors.to_rgb(src)
    out = colors.from_rgb(rgb, src.format, src)
    assert out.get_frame(0).props["_ChromaLocation"] == 1
    assert np.array_equal(np.asarray(out.get_frame(0)[1]), np.asarray(src.get_frame(0)[1]))
