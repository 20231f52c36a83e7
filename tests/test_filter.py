"""vsugsp.interpolate end to end on tiny clips with a random-weight network."""
from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import pytest

vs = pytest.importorskip("vapoursynth")
torch = pytest.importorskip("torch")

from vsclips import FORMATS, moving, odd_size, planes_of, same_pixels  # noqa: E402

import vsugsp  # noqa: E402
from vsugsp import work  # noqa: E402
from vsugsp.model import save  # noqa: E402

core = vs.core
pytestmark = pytest.mark.filterwarnings("ignore:The _ColorRange")


#: The network on the prior: these tests are about the filter around the network, which the
#: default presets (the prior alone where a pair has one) do not run on frames DIS can take.
NETWORK = {"refine": ["fusion", "rgb"]}


def run(clip, net, factor=2, **kw):
    kw.setdefault("device", "cpu")
    for key, value in NETWORK.items():
        kw.setdefault(key, value)
    return vsugsp.interpolate(clip, factor, model=net, **kw)


def frames_bytes(clip, order=None):
    order = range(clip.num_frames) if order is None else order
    out = {}
    for n in order:
        out[n] = b"".join(p.tobytes() for p in planes_of(clip.get_frame(n)))
    return out


# ------------------------------------------------------------------ formats


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: core.get_video_format(f).name)
def test_every_format_family(net, fmt):
    w, h = odd_size(fmt)
    src = moving(fmt, w, h, length=3, frame_props=lambda n: {"Tag": n})
    out = run(src, net)
    assert out.format.id == src.format.id
    assert (out.width, out.height, out.num_frames) == (w, h, 6)
    assert (out.fps.numerator, out.fps.denominator) == (48, 1)
    for n in range(6):
        f = out.get_frame(n)
        assert f.format.id == src.format.id and (f.width, f.height) == (w, h)
        assert (f.props["_DurationNum"], f.props["_DurationDen"]) == (1, 48)
        if n % 2 == 0:  # t == 0: the source frame, bit-exact, with its props
            assert same_pixels(f, src.get_frame(n // 2))
            assert f.props["Tag"] == n // 2
    # between the frames: the network's picture, not a copy of either neighbour
    mid = out.get_frame(1)
    assert not same_pixels(mid, src.get_frame(0)) and not same_pixels(mid, src.get_frame(1))
    # vsugsp's own props on an output frame are its work (vsugsp.work), no internal ones
    assert {k for k in mid.props if k.startswith("_Vsugsp")} == set(work.PROPS)


# ------------------------------------------------------------------ rates and props


@pytest.mark.parametrize(
    "factor, fps, src_rate, n_src, n_out, out_rate",
    [
        (2, None, (24, 1), 7, 14, (48, 1)),
        (3, None, (25, 1), 4, 12, (75, 1)),
        (Fraction(5, 2), None, (24, 1), 7, 18, (60, 1)),
        (2, (60000, 1001), (24000, 1001), 10, 25, (60000, 1001)),
        (2, Fraction(120), (50, 1), 5, 12, (120, 1)),
    ],
)
def test_lengths_and_durations(net, factor, fps, src_rate, n_src, n_out, out_rate):
    # a still clip: every pair is identical, so the network is never needed here
    src = core.std.BlankClip(width=16, height=16, format=vs.YUV420P8, length=n_src,
                             fpsnum=src_rate[0], fpsden=src_rate[1], color=[90, 100, 140])
    out = run(src, net, factor, fps=fps)
    assert out.num_frames == n_out
    assert (out.fps.numerator, out.fps.denominator) == out_rate
    dur = 1 / Fraction(*out_rate)
    for n in range(n_out):
        p = out.get_frame(n).props
        assert (p["_DurationNum"], p["_DurationDen"]) == (dur.numerator, dur.denominator)


def test_variable_rate_clip_uses_frame_durations(net):
    src = moving(vs.YUV444P8, 32, 24, length=3)
    vfr = core.std.Splice([src[:2], src[2:].std.AssumeFPS(fpsnum=25)], mismatch=True)
    assert vfr.fps.numerator == 0  # variable rate: per-frame durations 1/30, 2/30, 3/30

    def set_duration(n, f):
        out = f.copy()
        out.props["_DurationNum"], out.props["_DurationDen"] = n + 1, 30
        return out

    vfr = core.std.ModifyFrame(vfr, vfr, set_duration)
    out = run(vfr, net, 2)
    assert out.fps.numerator == 0 and out.num_frames == 6
    durs = [Fraction(out.get_frame(n).props["_DurationNum"], out.get_frame(n).props["_DurationDen"]) for n in range(6)]
    assert durs == [Fraction(1, 60), Fraction(1, 60), Fraction(2, 60), Fraction(2, 60), Fraction(3, 60), Fraction(3, 60)]
    with pytest.raises(vs.Error, match="known frame rate"):
        run(vfr, net, fps=60)


def test_absolute_time(net):
    src = moving(vs.YUV420P8, 32, 24, length=3, fps=(25, 1),
                 frame_props=lambda n: {"_AbsoluteTime": 10.0 + n / 25})
    out = run(src, net, Fraction(5, 2))
    assert out.num_frames == 8
    for n in range(8):
        assert out.get_frame(n).props["_AbsoluteTime"] == pytest.approx(10.0 + n / 62.5, abs=1e-9)
    # pass-through frames keep the source value exactly
    assert out.get_frame(5).props["_AbsoluteTime"] == src.get_frame(2).props["_AbsoluteTime"]
    # no _AbsoluteTime in the source → none invented
    plain = run(moving(vs.YUV420P8, 32, 24, length=3), net)
    assert "_AbsoluteTime" not in plain.get_frame(1).props


def test_props_from_nearest_source_frame(net):
    src = moving(vs.GRAY8, 32, 24, length=3, frame_props=lambda n: {"Tag": n, "Name": f"f{n}"})
    out = run(src, net, 4)
    tags = [out.get_frame(n).props["Tag"] for n in range(out.num_frames)]
    assert tags == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    assert out.get_frame(3).props["Name"] == "f1"


# ------------------------------------------------------------------ scene changes and fast paths


def _cut_clip(fmt=vs.YUV420P8):
    a = moving(fmt, 48, 32, length=3, seed=1)
    b = moving(fmt, 48, 32, length=3, seed=5, speed=-2.0)
    return a + b  # cut between source frames 2 and 3


def test_scene_cut_shows_nearest_source(net):
    src = _cut_clip()
    out = run(src, net, 3)
    # pair (2, 3) is a cut: t = 1/3 → frame 2, t = 2/3 → frame 3, both untouched
    assert same_pixels(out.get_frame(7), src.get_frame(2))
    assert same_pixels(out.get_frame(8), src.get_frame(3))
    flags = [(out.get_frame(n).props["_SceneChangePrev"], out.get_frame(n).props["_SceneChangeNext"])
             for n in range(out.num_frames)]
    assert flags[7] == (0, 1) and flags[8] == (1, 0)
    assert sum(p for p, _ in flags) == 1 and sum(x for _, x in flags) == 1
    # pairs inside a scene are interpolated
    assert not same_pixels(out.get_frame(4), src.get_frame(1))
    assert not same_pixels(out.get_frame(13), src.get_frame(4))


def test_scene_change_props_are_honoured(net):
    src = moving(vs.YUV420P8, 32, 24, length=4, frame_props=lambda n: {"_SceneChangeNext": int(n == 1)})
    out = run(src, net, 2)
    assert same_pixels(out.get_frame(3), src.get_frame(1))  # props say cut: no blend
    assert not same_pixels(out.get_frame(1), src.get_frame(0))
    assert out.get_frame(3).props["_SceneChangeNext"] == 1
    assert out.get_frame(4).props["_SceneChangePrev"] == 1
    for mode in ("off", "detect"):  # the pattern only slides: nothing to detect
        o = run(src, net, 2, scene_change=mode)
        assert not same_pixels(o.get_frame(3), src.get_frame(1)), mode
    # a real cut is found without props, and ignored with scene_change="props"/"off"
    cut = _cut_clip()
    assert not same_pixels(run(cut, net, 2, scene_change="props").get_frame(5), cut.get_frame(2))
    assert not same_pixels(run(cut, net, 2, scene_change=False).get_frame(5), cut.get_frame(2))


def test_identical_neighbours_give_the_source_frame(net):
    m = moving(vs.YUV422P10, 34, 24, length=3)
    src = m[0] + m[0] + m[1] + m[2]
    out = run(src, net, 2)
    assert same_pixels(out.get_frame(1), src.get_frame(0))
    assert not same_pixels(out.get_frame(3), src.get_frame(1))
    assert out.get_frame(1).props["_SceneChangeNext"] == 0


def test_tail_holds_last_frame(net):
    src = moving(vs.RGB24, 32, 24, length=3)
    out = run(src, net, 3)
    assert same_pixels(out.get_frame(7), src.get_frame(2))
    assert same_pixels(out.get_frame(8), src.get_frame(2))


# ------------------------------------------------------------------ serving


def test_request_order_does_not_matter(net):
    src = moving(vs.YUV420P8, 40, 32, length=6)
    ref = frames_bytes(run(src, net, Fraction(5, 2)))
    order = list(range(len(ref)))
    random.Random(3).shuffle(order)
    # a fresh filter, tiny caches (features evicted and recomputed), shuffled requests
    shuffled = frames_bytes(run(src, net, Fraction(5, 2), cache_frames=2, batch=8), order)
    assert shuffled == ref
    backwards = frames_bytes(run(src, net, Fraction(5, 2)), reversed(order))
    assert backwards == ref


def test_concurrent_requests(net):
    old = core.num_threads
    core.num_threads = max(2, old)
    try:
        src = moving(vs.YUV420P8, 40, 32, length=6, seed=2)
        ref = frames_bytes(run(src, net, 3))
        out = run(src, net, 3)
        order = list(range(out.num_frames))
        random.Random(7).shuffle(order)
        futures = {n: out.get_frame_async(n) for n in order}  # all in flight at once
        got = {n: b"".join(p.tobytes() for p in planes_of(futures[n].result())) for n in order}
        assert got == ref
        out2 = run(src, net, 3)
        barrier = threading.Barrier(4)

        def fetch(n):
            barrier.wait(timeout=30) if n < 4 else None
            return n, b"".join(p.tobytes() for p in planes_of(out2.get_frame(n)))

        with ThreadPoolExecutor(4) as pool:
            got2 = dict(pool.map(fetch, order))
        assert got2 == ref
    finally:
        core.num_threads = old


def test_mpv_sized_clip_builds_lazily(net):
    big = 2**31 // 16 - 1  # mpv's video_in length
    src = moving(vs.YUV420P8, 32, 24, length=big)
    out = run(src, net, 2)
    assert out.num_frames == 2 * big
    n = 2 * big - 5
    f = out.get_frame(n)
    assert (f.width, f.height) == (32, 24)
    assert not same_pixels(f, src.get_frame(big - 3))


def rendered_work(out) -> dict:
    tally = work.Tally()
    counted = tally.counting(out)
    for n in range(out.num_frames):
        counted.get_frame(n)
    return tally.totals()


def test_frames_carry_their_work(net):
    src = moving(vs.GRAY8, 32, 24, length=3)
    out = run(src, net, 2)
    t = rendered_work(out)
    assert t["frames_interpolated"] == 2  # (0,1) and (1,2); 3 pass through, 1 held at the end
    assert t["frames_passed"] == 4
    assert t["forward_passes"] == 2
    assert 0 < t["executed_macs"] <= t["dense_macs"]
    for n in range(out.num_frames):
        p = out.get_frame(n).props
        made = n in (1, 3)
        assert p[work.INTERPOLATED] == int(made)
        assert (p[work.MACS] > 0) == made and (p[work.DENSE_MACS] > 0) == made
        assert p[work.PASSES] == int(made)
    assert "_VsugspCutNext" not in out.get_frame(1).props  # internal props stay inside


def test_work_of_a_chunk_adds_up_over_its_frames(net):
    src = moving(vs.GRAY8, 32, 24, length=3)
    out = run(src, net, 4, batch=2)  # 3 frames per pair: chunks of 2 and 1
    plain = run(src, net, 4, batch=8)  # one chunk per pair
    split, whole = rendered_work(out), rendered_work(plain)
    assert split["frames_interpolated"] == whole["frames_interpolated"] == 6
    assert split["forward_passes"] == 4 and whole["forward_passes"] == 2
    per_frame = [out.get_frame(n).props[work.PASSES] for n in range(1, 4)]
    assert per_frame == [0, 1, 1]  # chunk (1/4, 1/2) shares one pass, 3/4 has its own


def test_max_density_bounds_the_executed_share(net):
    src = moving(vs.GRAY8, 128, 96, length=3)

    def share(**kw) -> float:
        out = run(src, net, 2, threshold=0.0, backend="reference", **kw)
        t = rendered_work(out)
        return t["executed_macs"] / t["dense_macs"]

    free, capped = share(max_density=None), share(max_density=0.25)
    assert free > 0.95  # threshold 0 computes every pixel
    # about a quarter of the ~77 % prunable work, plus the fixed encoder/coarse share
    assert capped < 0.5


def test_nothing_on_stdout(net, capfd):
    out = run(moving(vs.YUV420P8, 32, 24, length=3), net)
    for n in range(out.num_frames):
        out.get_frame(n)
    assert capfd.readouterr().out == ""


# ------------------------------------------------------------------ models


def test_model_by_path_name_or_instance(net, tmp_path, monkeypatch):
    src = moving(vs.YUV420P8, 32, 24, length=3)
    ref = frames_bytes(run(src, net))
    path = save(net, tmp_path / "tiny.pt")
    assert frames_bytes(vsugsp.interpolate(src, model=str(path), device="cpu", **NETWORK)) == ref
    import vsugsp.model.io as io

    monkeypatch.setattr(io, "weights_dir", lambda: tmp_path)
    assert frames_bytes(vsugsp.interpolate(src, model="tiny", device="cpu", **NETWORK)) == ref
    assert frames_bytes(vsugsp.interpolate(src, preset="quality", model="tiny", device="cpu", mode="pruned",
                                           precision="fp16", max_density=0.4, ensemble=1, **NETWORK)) == ref
    # the caller's module is not moved or converted
    assert next(net.parameters()).dtype == torch.float32


def test_dense_and_pruned_presets_run(net):
    src = moving(vs.YUV420P8, 32, 24, length=3)
    for preset in ("quality", "balanced", "fast", "realtime"):
        out = vsugsp.interpolate(src, model=net, device="cpu", preset=preset)
        assert out.get_frame(1).format.id == vs.YUV420P8


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fp16_close_to_cpu(net):
    src = moving(vs.RGBS, 64, 48, length=3)
    cpu = planes_of(run(src, net, 2, preset="quality").get_frame(1))
    gpu = planes_of(run(src, net, 2, device="cuda", preset="balanced", mode="dense").get_frame(1))
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(cpu, gpu)) < 0.02


# ------------------------------------------------------------------ errors


def _msg(exc_info) -> str:
    msg = str(exc_info.value)
    assert msg.startswith("vsugsp: "), msg
    return msg


def test_errors(net, tmp_path):
    good = moving(vs.YUV420P8, 32, 24, length=3)
    cases = [
        (lambda: vsugsp.interpolate("clip.mkv"), "must be a vapoursynth.VideoNode"),
        (lambda: run(core.std.Splice([good, moving(vs.RGB24, 32, 24, 2)], mismatch=True), net), "variable format"),
        (lambda: run(core.std.Splice([good, moving(vs.YUV420P8, 16, 16, 2)], mismatch=True), net), "variable frame size"),
        (lambda: run(good[0], net), "at least 2 frames"),
        (lambda: run(core.std.Splice([good[0], good[1].std.AssumeFPS(fpsnum=30)], mismatch=True), net, fps=60),
         "known frame rate"),
        (lambda: run(good, net, preset="turbo"), "unknown preset 'turbo'; available: balanced, fast, quality, realtime"),
        (lambda: run(good, net, thresold=0.3), "unknown preset key 'thresold'"),
        (lambda: run(good, net, threshold=2), "'threshold' = 2"),
        (lambda: run(good, net, 1), "factor must be greater than 1"),
        (lambda: run(good, net, Fraction(1, 2)), "only raises the frame rate"),
        (lambda: run(good, net, 2.5), "int or fractions.Fraction"),
        (lambda: run(good, net, float("nan")), "factor must be an int or fractions.Fraction greater than 1, got nan"),
        (lambda: run(good, net, float("inf")), "factor must be an int or fractions.Fraction greater than 1, got inf"),
        (lambda: run(good, net, fps=12), "not above the clip's rate"),
        (lambda: run(good, net, scene_change="sometimes"), "scene_change must be one of"),
        (lambda: vsugsp.interpolate(good, model="no_such_weights", device="cpu"), "no packaged weights named 'no_such_weights'"),
        (lambda: vsugsp.interpolate(good, model=str(tmp_path / "missing.pt"), device="cpu"), "does not exist"),
        (lambda: vsugsp.interpolate(good, model=42, device="cpu"), "model must be"),
        (lambda: vsugsp.interpolate(good, model=str(tmp_path), device="cpu"), "is a directory"),
        (lambda: run(good, net, device="tpu"), "'device' = 'tpu'"),
    ]
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not a torch file at all")
    cases.append((lambda: vsugsp.interpolate(good, model=str(bad), device="cpu"), "corrupt"))
    if not torch.cuda.is_available():
        cases.append((lambda: run(good, net, device="cuda"), "CUDA is not available"))
    for fn, text in cases:
        with pytest.raises(vs.Error) as e:
            fn()
        assert text in _msg(e), (text, str(e.value))


def test_default_model_needs_weights():
    from vsugsp.model import available

    if "small" in available():
        pytest.skip("packaged weights are installed")
    with pytest.raises(vs.Error) as e:
        vsugsp.interpolate(moving(vs.YUV420P8, 32, 24, length=3), device="cpu")
    assert "vsugsp/weights" in _msg(e)


# ------------------------------------------------------------------ engine


def _engine(net, **kw):
    from vsugsp.engine import Engine
    from vsugsp.interpolator import build_interpolator
    from vsugsp.preset import load_preset

    settings = load_preset("balanced", device="cpu", precision="fp32", flow_prior="none", max_density=None,
                           refine=["flow", "fusion", "rgb"], **kw)
    return Engine(build_interpolator(settings, net))


def _frames(k, h=24, w=32):
    rng = np.random.default_rng(k)
    return rng.uniform(0, 1, (3, h, w)).astype(np.float32)


def test_engine_memory_is_bounded(net):
    eng = _engine(net, cache_frames=3)
    times = (Fraction(1, 3), Fraction(2, 3))
    for i in range(8):
        for t in times:
            eng.interpolate(i, t, _frames(i), _frames(i + 1), times)
        assert len(eng._features) <= 3
        assert not len(eng._chunks)  # every frame of the pair handed out: results released
    # partly consumed chunks (seeking) are capped too
    for i in range(20):
        eng.interpolate(i, times[0], _frames(i), _frames(i + 1), times)
    assert len(eng._chunks) <= eng._chunks.size


def test_engine_one_pass_per_chunk_across_threads(net):
    eng = _engine(net, batch=8)
    times = tuple(Fraction(k, 6) for k in range(1, 6))
    barrier = threading.Barrier(len(times))

    def get(t):
        barrier.wait(timeout=30)
        return t, eng.interpolate(4, t, _frames(4), _frames(5), times)

    with ThreadPoolExecutor(len(times)) as pool:
        got = dict(pool.map(get, times))
    assert eng.stats()["forward_passes"] == 1 and eng.stats()["frames_interpolated"] == 5
    # recomputing after eviction gives the same bits
    again = _engine(net, batch=8)
    for t in reversed(times):
        assert np.array_equal(again.interpolate(4, t, _frames(4), _frames(5), times), got[t])


def test_engine_fixed_chunks(net):
    times = tuple(Fraction(k, 5) for k in range(1, 5))
    eng = _engine(net, batch=3)
    eng.interpolate(0, times[3], _frames(0), _frames(1), times)  # chunk 2 of 2 only
    assert eng.stats()["frames_interpolated"] == 1
    with pytest.raises(ValueError, match="not among the pair's times"):
        eng.interpolate(0, Fraction(1, 2), _frames(0), _frames(1), times)
    with pytest.raises(ValueError, match="3×H×W"):
        _engine(net).interpolate(0, times[0], np.zeros((4, 4), np.float32), _frames(1), times)


def test_engine_ensemble_runs_the_views_and_averages(net):
    times = (Fraction(1, 2),)
    plain = _engine(net)
    ens = _engine(net, ensemble=2)
    a, b = _frames(0), _frames(1)
    one = plain.interpolate(0, times[0], a, b, times)
    two = ens.interpolate(0, times[0], a, b, times)
    assert ens.stats()["forward_passes"] == 2 and ens.stats()["frames_interpolated"] == 1
    assert ens.stats()["executed_macs"] == 2 * plain.stats()["executed_macs"]
    swapped = _engine(net).interpolate(0, times[0], b, a, times)  # (b, a) at 1 - 1/2
    assert np.allclose(two, (one + swapped) / 2, atol=1e-5)
    with pytest.raises(ValueError, match="'ensemble' = 3"):
        _engine(net, ensemble=3)


def test_fp16_preset_runs_bf16_on_a_cpu_that_has_it(net, monkeypatch):
    from vsugsp import hardware

    src = moving(vs.RGBS, 64, 48, length=2)
    results = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("VSUGSP_CPU_BF16", flag)
        hardware.cpu_bf16.cache_clear()
        for precision in ("fp32", "fp16"):
            out = run(src, net, 2, precision=precision)
            results[flag, precision] = np.asarray(out.get_frame(1)[0]).copy()
    hardware.cpu_bf16.cache_clear()
    exact = results["0", "fp32"]
    assert np.array_equal(results["0", "fp16"], exact)  # no native bf16: fp32
    assert np.array_equal(results["1", "fp32"], exact)  # fp32 asked for: fp32
    bf16 = results["1", "fp16"]
    assert not np.array_equal(bf16, exact)  # bf16 arithmetic did run
    assert float(np.abs(bf16 - exact).mean()) < 0.02


# ------------------------------------------------------------------ faults and memory (issue 15)


def _breaks_at(clip, bad: int):
    def boom(n, f):
        if n == bad:
            raise RuntimeError(f"decoder exploded at {n}")
        return f

    return core.std.ModifyFrame(clip, clip, boom)


@pytest.mark.parametrize("factor,prior,motion", [(2, "none", "quadratic"), (Fraction(5, 2), "none", "quadratic"),
                                                 (2, "dis", "linear"), (2, "dis", "quadratic")])
def test_a_broken_source_frame_fails_only_the_frames_that_need_it(net, factor, prior, motion):
    """With the prior, pair i also reads frame i + 2 ahead (its prefetch fails alone); with quadratic
    motion and a prior, pairs i − 1 and i + 1 of the broken frame's pairs need it too (their outer
    neighbour); without a prior quadratic motion asks for no frame beyond the pair."""
    from vsugsp.timing import RateMap

    src = moving(vs.YUV420P8, 32, 24, length=12)
    out = run(_breaks_at(src, 5), net, factor, flow_prior=prior, motion=motion)
    rmap = RateMap(12, Fraction(factor))
    failed = set()
    for n in range(out.num_frames):
        try:
            out.get_frame(n)
        except vs.Error as e:
            assert "decoder exploded at 5" in str(e)
            failed.add(n)
    # pixels from frame 5: pairs (4, 5) and (5, 6) interpolated, and frame 5 shown;
    # plus the first frame after them, whose _SceneChangePrev needs the cut decision of (5, 6)
    needs = {n for n in range(out.num_frames) if 5 in (rmap.position(n)[0], rmap.position(n)[0] + 1)
             and not (rmap.position(n) == (4, 0))}
    after = min(n for n in range(out.num_frames) if rmap.position(n) == (6, 0))
    if motion == "quadratic" and prior != "none":  # frame 5 is pair 3's i + 2 and pair 6's i − 1
        needs |= {n for n in range(out.num_frames) if rmap.position(n)[0] in (3, 6) and rmap.position(n)[1] != 0}
    assert failed == needs | {after}, sorted(failed)
    # the source frames next to the broken one still come out, as they are
    good = run(src, net, factor, flow_prior=prior, motion=motion)
    for n in sorted(set(range(out.num_frames)) - failed):
        assert same_pixels(out.get_frame(n), good.get_frame(n)), n


def test_async_requests_fail_the_same_frames(net):
    src = moving(vs.YUV420P8, 32, 24, length=12)
    out = run(_breaks_at(src, 5), net, flow_prior="none")
    futures = {n: out.get_frame_async(n) for n in range(out.num_frames)}
    failed = set()
    for n, fut in futures.items():
        try:
            fut.result()
        except vs.Error:
            failed.add(n)
    assert failed == {9, 10, 11, 12}


def test_failing_source_names_the_frame(net):
    from vsugsp.diagnose import failing_source

    src = _breaks_at(moving(vs.YUV420P8, 32, 24, length=12), 5)
    out = run(src, net, flow_prior="none")
    assert failing_source(src, out, 9) == (5, "RuntimeError: decoder exploded at 5")
    assert failing_source(src, out, 20) is None


@pytest.mark.parametrize("size", [(64, 48), (192, 144)])
def test_vapoursynth_caches_stay_within_cache_frames_under_seeking(net, size):
    """VapourSynth's own caches would grow on every node under random requests (issue 15, item 10)."""
    from vsugsp.vscache import uncached

    w, h = size
    src = uncached(moving(vs.YUV420P8, w, h, length=24))  # the source itself holds nothing
    out = run(src, net, flow_prior="none", cache_frames=3)
    order = list(range(out.num_frames))
    random.Random(0).shuffle(order)
    base = core.used_cache_size
    for n in order:
        out.get_frame(n)
    held = core.used_cache_size - base
    from vsugsp.scene import THUMB_WIDTH

    rgb_frame = w * h * 3 * 4  # float RGB source frames and GRAYS scene thumbnails, cache_frames of each
    thumb = THUMB_WIDTH * (THUMB_WIDTH * h // w) * 4
    assert held <= 3 * (rgb_frame + thumb) + 2 * rgb_frame, held / rgb_frame


def test_once_cache_named_readers():
    """A value that serves named readers is dropped once each has read it, a second read by one not counted."""
    from vsugsp.once import OnceCache

    calls = []
    cache = OnceCache(2)

    def compute():
        calls.append(1)
        return len(calls)

    assert cache.get("k", compute, uses=("a", "b"), reader="a") == 1
    assert cache.get("k", compute, uses=("a", "b"), reader="a") == 1  # read again: still held for b
    assert len(cache) == 1
    assert cache.get("k", compute, uses=("a", "b"), reader="b") == 1
    assert len(cache) == 0 and len(calls) == 1
    assert cache.get("k", compute, uses=2) == 2 and len(cache) == 1  # counted uses
    assert cache.get("k", compute, uses=2) == 2 and len(cache) == 0
    for k in range(5):  # finished values beyond the size go, oldest first
        cache.get(k, compute, uses=3)
    assert len(cache) == 2


def test_the_next_pairs_prior_is_computed_during_this_pairs_pass(net, monkeypatch):
    """VapourSynth runs one ModifyFrame callback at a time, so the engine computes pair i + 1's
    prior in its worker thread while pair i's network pass runs; the frames stay the same."""
    import time as _time

    from vsugsp.interpolator import Interpolator

    events = []
    prior, call = Interpolator.prior, Interpolator.__call__

    def slow_prior(self, a, b):
        events.append(("prior", threading.current_thread().name, _time.perf_counter()))
        return prior(self, a, b)

    def slow_call(self, *args, **kw):
        start = _time.perf_counter()
        _time.sleep(0.2)  # room for the worker even on a loaded machine (the GIL is free while sleeping)
        out = call(self, *args, **kw)
        events.append(("pass", start, _time.perf_counter()))
        return out

    src = moving(vs.YUV420P8, 48, 32, length=6)
    plain = frames_bytes(run(src, net, flow_prior="dis", motion="linear"))  # the prior-ahead mechanism alone
    monkeypatch.setattr(Interpolator, "prior", slow_prior)
    monkeypatch.setattr(Interpolator, "__call__", slow_call)
    ahead = frames_bytes(run(src, net, flow_prior="dis", motion="linear"))
    assert ahead == plain
    priors = [e for e in events if e[0] == "prior"]
    passes = [e for e in events if e[0] == "pass"]
    assert len(priors) == len(passes) == 5  # one prior per pair, never twice
    # pair 0's prior on the calling thread, every later pair's on the worker; the worker may start
    # pair 1's a moment before the calling thread starts pair 0's, so order them by pair, not by start
    priors.sort(key=lambda p: p[1].startswith("vsugsp-prior"))  # stable: the workers' stay in order
    assert [p[1].startswith("vsugsp-prior") for p in priors] == [False] + [True] * 4
    # the prior of pair k + 1 started before pair k's pass ended (serially it would start after)
    for k in range(4):
        assert priors[k + 1][2] < passes[k][2], (k, priors, passes)


def test_once_cache_prefetch_leaves_every_read_to_the_readers():
    from vsugsp.once import OnceCache

    calls = []
    cache = OnceCache(4)
    cache.prefetch("k", lambda: calls.append(1) or "v", uses=2)
    cache.prefetch("k", lambda: calls.append(2) or "w", uses=2)  # present: not computed again
    assert calls == [1] and len(cache) == 1
    assert cache.get("k", lambda: "x", 2) == "v" and len(cache) == 1
    assert cache.get("k", lambda: "x", 2) == "v" and len(cache) == 0  # both reads were the readers'

    def boom():
        raise RuntimeError("prefetch failed")

    cache.prefetch("e", boom)  # the error stays with the prefetch: nobody was waiting
    assert len(cache) == 0 and cache.get("e", lambda: "recomputed") == "recomputed"


def test_without_a_prior_the_workers_bring_the_next_frames_up(net, monkeypatch):
    """The device frame path: with no prior to compute, the pool still converts source frame
    i + 2 during pair i's pass, each source frame is converted once, and the frames do not change."""
    import time as _time

    from vsugsp.engine import Engine
    from vsugsp.interpolator import Interpolator

    src = moving(vs.YUV420P8, 48, 32, length=6)
    plain = frames_bytes(run(src, net, flow_prior="none"))
    converted = []
    tensor, call = Engine._tensor, Interpolator.__call__

    def spy_tensor(self, frame):
        converted.append(threading.current_thread().name)
        return tensor(self, frame)

    def slow_call(self, *args, **kw):
        _time.sleep(0.1)  # room for the worker
        return call(self, *args, **kw)

    monkeypatch.setattr(Engine, "_tensor", spy_tensor)
    monkeypatch.setattr(Interpolator, "__call__", slow_call)
    assert frames_bytes(run(src, net, flow_prior="none")) == plain
    assert len(converted) == 6  # every source frame once
    assert sum(n.startswith("vsugsp-prior") for n in converted) == 4  # frames 2..5 came up ahead


def test_once_cache_peek_never_waits_and_reads_nothing():
    from vsugsp.once import OnceCache

    cache = OnceCache(4)
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(timeout=30)
        return "v"

    worker = threading.Thread(target=cache.prefetch, args=("k", slow, 1))
    worker.start()
    started.wait(timeout=30)
    assert cache.peek("k") is None and cache.peek("absent") is None  # running: no wait, no value
    release.set()
    worker.join(timeout=30)
    assert cache.peek("k") == "v" and len(cache) == 1  # a peek is not one of the reads
    assert cache.get("k", lambda: "x") == "v" and len(cache) == 0


_ONE_THREAD_LATE_PRIOR = """
import time
import vapoursynth as vs
from vsclips import moving
import vsugsp
from vsugsp.once import OnceCache

original = OnceCache.prefetch

def late(self, key, compute, uses=1):  # a busy machine: the prior worker runs late, after its claim
    def slow():
        time.sleep(0.3)
        return compute()
    return original(self, key, slow, uses)

OnceCache.prefetch = late
vs.core.num_threads = 1
src = moving(vs.YUV420P8, 64, 48, length=5, fps=(24, 1))
out = vsugsp.interpolate(src, factor=2, preset="fast", device="cpu", flow_prior="dis")
print("frames", sum(1 for _ in out.frames()))
"""


def test_one_vapoursynth_thread_never_waits_on_a_prior_worker_that_waits_for_a_frame():
    """With one VapourSynth thread, the prior worker must have its frames before it claims a pair:
    that thread, waiting in pair i + 1's callback for the claimed prior, cannot deliver frame i + 2
    (the hang of issue 24 item 7, here in the filter itself, not only in render's workers)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), str(here.parent), os.environ.get("PYTHONPATH", "")])}
    try:
        proc = subprocess.run([sys.executable, "-c", _ONE_THREAD_LATE_PRIOR], capture_output=True, text=True,
                              timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("the filter hung: its only VapourSynth thread waited on a prior worker waiting for a frame")
    assert proc.returncode == 0 and "frames 10" in proc.stdout, proc.stderr[-2000:]
