"""The pure output plan (vsugsp.output_plan): pair, t, pass-through and props of every output frame.

No VapourSynth here: the plan is checked against RateMap and against a small
brute-force reference written from the rules (t == 0 / tail / cut / identical).
"""
import itertools
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from vsugsp.output_plan import UNDECIDED, FramePlan, OutputPlan, PairDecision, frame_duration
from vsugsp.timing import RateMap, resolve_ratio

ROOT = Path(__file__).resolve().parents[1]

NTSC_FILM = Fraction(24000, 1001)
NTSC_60 = Fraction(60000, 1001)
CUT = PairDecision(cut=True)
SAME = PairDecision(identical=True)

#: Ratios the filter can be given (resolve_ratio only accepts > 1).
RATIOS = [Fraction(2), resolve_ratio(fps=NTSC_60, src_fps=NTSC_FILM), Fraction(3), Fraction(4), Fraction(5, 4),
          Fraction(7, 3)]


def _plan(n_src, ratio, src_fps=None):
    return OutputPlan(RateMap(n_src, Fraction(ratio)), src_fps)


# ---------------------------------------------------------------- brute-force reference


def _ref_pos(rmap, n, decisions):
    """Display position of output n from the rules alone: a source frame (int) or i + t."""
    i, t = rmap.position(n)
    if t == 0 or i + 1 >= rmap.src_frames:
        return Fraction(i)
    d = decisions.get(i, UNDECIDED)
    if d.cut:
        return Fraction(i) if t <= Fraction(1, 2) else Fraction(i + 1)
    if d.identical:
        return Fraction(i)
    return i + t


def _ref_scene(q, decisions):
    """Index of the scene that display position q belongs to (cuts k with k + 1 <= q)."""
    return sum(1 for k, d in decisions.items() if d.cut and k + 1 <= q)


def _ref_frame(rmap, n, decisions):
    i, t = rmap.position(n)
    q = _ref_pos(rmap, n, decisions)
    shown = int(q) if q.denominator == 1 else None
    near = shown if shown is not None else (i + 1 if t > Fraction(1, 2) else i)
    sc = _ref_scene(q, decisions)
    prev = n > 0 and _ref_scene(_ref_pos(rmap, n - 1, decisions), decisions) != sc
    nxt = n < rmap.num_frames - 1 and _ref_scene(_ref_pos(rmap, n + 1, decisions), decisions) != sc
    return FramePlan(n, i, t, shown, near, prev, nxt)


def _all_decision_maps(n_src):
    """Every assignment of {none, cut, identical} to the n_src - 1 pairs."""
    for combo in itertools.product((UNDECIDED, CUT, SAME), repeat=n_src - 1):
        yield dict(enumerate(combo))


# ---------------------------------------------------------------- import hygiene


def test_importing_output_plan_does_not_import_vapoursynth():
    code = (
        "import sys, vsugsp.output_plan\n"
        "assert 'vapoursynth' not in sys.modules, 'output_plan imported vapoursynth'\n"
        # and it works with vapoursynth made unimportable
        "import importlib\n"
        "for m in [m for m in sys.modules if m.startswith('vsugsp')]: del sys.modules[m]\n"
        "sys.modules['vapoursynth'] = None\n"
        "op = importlib.import_module('vsugsp.output_plan')\n"
        "from vsugsp.timing import RateMap\n"
        "from fractions import Fraction\n"
        "p = op.OutputPlan(RateMap(3, Fraction(2)), Fraction(24))\n"
        "fp = p.frame(1, {})\n"
        "assert fp.interpolated and p.props(fp, {}, {})['_DurationDen'] == 48\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


# ---------------------------------------------------------------- positions and pass-through


@pytest.mark.parametrize("ratio", RATIOS, ids=str)
@pytest.mark.parametrize("n_src", [1, 2, 5, 7])
def test_length_pair_and_t_follow_ratemap(n_src, ratio):
    rmap = RateMap(n_src, ratio)
    plan = OutputPlan(rmap)
    assert plan.num_frames == math.ceil(n_src * ratio) == rmap.num_frames
    assert plan.src_frames == n_src
    for n in range(plan.num_frames):
        i, t = rmap.position(n)
        fp = plan.frame(n, {})
        assert (fp.n, fp.i, fp.t) == (n, i, t)
        assert isinstance(fp.t, Fraction) and 0 <= fp.t < 1
        assert plan.left(n) == i
        assert plan.right(n) == min(i + 1, n_src - 1)
        if t == 0:
            assert fp.shown == i and not fp.interpolated and fp.near == i
        assert fp.interpolated == (t != 0 and i + 1 < n_src)
    with pytest.raises(IndexError):
        plan.frame(plan.num_frames, {})


def test_factor_2_table():
    plan = _plan(4, 2, Fraction(24))
    got = [(fp.i, fp.t, fp.shown, fp.near) for fp in (plan.frame(n, {}) for n in range(plan.num_frames))]
    h = Fraction(1, 2)
    assert got == [
        (0, 0, 0, 0), (0, h, None, 0),  # a tie (t = 1/2) carries the earlier frame's props
        (1, 0, 1, 1), (1, h, None, 1),
        (2, 0, 2, 2), (2, h, None, 2),
        (3, 0, 3, 3), (3, h, 3, 3),  # past the last source frame: the last frame as is
    ]


def test_ntsc_film_to_60_table():
    ratio = resolve_ratio(fps=NTSC_60, src_fps=NTSC_FILM)
    assert ratio == Fraction(5, 2)
    plan = _plan(5, ratio, NTSC_FILM)
    assert plan.num_frames == 13  # ceil(12.5)
    f = Fraction
    got = [(fp.i, fp.t, fp.shown, fp.near) for fp in (plan.frame(n, {}) for n in range(plan.num_frames))]
    assert got == [
        (0, 0, 0, 0), (0, f(2, 5), None, 0), (0, f(4, 5), None, 1),
        (1, f(1, 5), None, 1), (1, f(3, 5), None, 2),
        (2, 0, 2, 2), (2, f(2, 5), None, 2), (2, f(4, 5), None, 3),
        (3, f(1, 5), None, 3), (3, f(3, 5), None, 4),
        (4, 0, 4, 4), (4, f(2, 5), 4, 4), (4, f(4, 5), 4, 4),  # tail: no pair (4, 5)
    ]


@pytest.mark.parametrize("ratio", RATIOS, ids=str)
def test_tail_and_single_frame_clip_pass_through(ratio):
    for n_src in (1, 4):
        plan = _plan(n_src, ratio)
        last = n_src - 1
        tail = list(plan.rmap.outputs_of(last))
        assert tail and tail[-1] == plan.num_frames - 1
        for n in tail:
            assert not plan.needs_decision(n)
            assert plan.right(n) == last  # never a source frame n_src
            for d in (UNDECIDED, CUT, SAME):
                assert plan.shown(n, d) == last
            fp = plan.frame(n, {last: CUT, last - 1: CUT})
            assert fp.shown == last and fp.near == last and not fp.interpolated
            assert not fp.scene_next or n < plan.num_frames - 1
    one = _plan(1, ratio)
    assert all(one.decisions_needed(n) == frozenset() for n in range(one.num_frames))
    assert all(one.frame(n, {}).shown == 0 for n in range(one.num_frames))


def test_needs_decision_exactly_when_the_pair_can_change_the_frame():
    for ratio in RATIOS:
        plan = _plan(5, ratio)
        for n in range(plan.num_frames):
            i, t = plan.rmap.position(n)
            assert plan.needs_decision(n) == (t != 0 and i + 1 < 5)
            choices = {plan.shown(n, d) for d in (UNDECIDED, CUT, SAME)}
            if plan.needs_decision(n):
                assert plan.shown(n, UNDECIDED) is None
                assert len(choices) > 1
            else:
                assert choices == {i}


def test_identical_neighbours_pass_through_the_left_frame():
    for ratio in (Fraction(2), Fraction(5, 2), Fraction(4)):
        plan = _plan(4, ratio)
        for n in plan.rmap.outputs_of(1):
            fp = plan.frame(n, {1: SAME})
            assert fp.shown == 1 and fp.near == 1 and not fp.interpolated
            assert not fp.scene_prev and not fp.scene_next
        # the neighbouring pairs still interpolate
        for n in itertools.chain(plan.rmap.outputs_of(0), plan.rmap.outputs_of(2)):
            if plan.rmap.position(n)[1] != 0:
                assert plan.frame(n, {1: SAME}).interpolated


# ---------------------------------------------------------------- scene cuts


def test_cut_shows_the_nearer_frame_tie_goes_to_the_left():
    plan = _plan(4, 4)  # t = 1/4, 1/2, 3/4
    got = {plan.rmap.position(n)[1]: plan.frame(n, {1: CUT}).shown for n in plan.rmap.outputs_of(1)}
    assert got == {0: 1, Fraction(1, 4): 1, Fraction(1, 2): 1, Fraction(3, 4): 2}
    for n in plan.rmap.outputs_of(1):
        fp = plan.frame(n, {1: CUT})
        assert fp.near == fp.shown  # props of the frame shown


def test_cut_factor_2_flags():
    plan = _plan(4, 2)
    fps = [plan.frame(n, {1: CUT}) for n in range(plan.num_frames)]
    assert [fp.shown for fp in fps] == [0, None, 1, 1, 2, None, 3, 3]
    assert [fp.scene_next for fp in fps] == [False, False, False, True, False, False, False, False]
    assert [fp.scene_prev for fp in fps] == [False, False, False, False, True, False, False, False]


def test_cut_ntsc_film_to_60_flags():
    plan = _plan(5, Fraction(5, 2), NTSC_FILM)
    fps = [plan.frame(n, {1: CUT}) for n in range(plan.num_frames)]
    # pair 1 holds n = 3 (t = 1/5 → frame 1) and n = 4 (t = 3/5 → frame 2)
    assert [fp.shown for fp in fps[2:6]] == [None, 1, 2, 2]
    assert [n for n, fp in enumerate(fps) if fp.scene_next] == [3]
    assert [n for n, fp in enumerate(fps) if fp.scene_prev] == [4]
    props = [plan.props(fp, {}, {}) for fp in fps]
    assert [p["_SceneChangeNext"] for p in props] == [int(n == 3) for n in range(13)]
    assert [p["_SceneChangePrev"] for p in props] == [int(n == 4) for n in range(13)]


def test_cut_only_flags_the_two_frames_around_it_on_a_source_frame_boundary():
    # factor 3, cut in pair 2: n = 7 (t=1/3) shows 2, n = 8 (t=2/3) shows 3
    plan = _plan(5, 3)
    fps = [plan.frame(n, {2: CUT}) for n in range(plan.num_frames)]
    assert [fps[n].shown for n in (6, 7, 8, 9)] == [2, 2, 3, 3]
    assert [n for n, fp in enumerate(fps) if fp.scene_next] == [7]
    assert [n for n, fp in enumerate(fps) if fp.scene_prev] == [8]


def test_cut_in_first_and_last_pair_stays_in_range():
    plan = _plan(3, 2)
    fps = [plan.frame(n, {0: CUT, 1: CUT}) for n in range(plan.num_frames)]
    assert [fp.shown for fp in fps] == [0, 0, 1, 1, 2, 2]
    assert not fps[0].scene_prev and not fps[-1].scene_next
    assert [n for n, fp in enumerate(fps) if fp.scene_next] == [1, 3]
    assert [n for n, fp in enumerate(fps) if fp.scene_prev] == [2, 4]


# ---------------------------------------------------------------- decisions: what the graph requests


@pytest.mark.parametrize("ratio", RATIOS, ids=str)
def test_requested_decisions_suffice_and_match_the_reference(ratio):
    """Exhaustive on a 5-frame clip: every cut/identical pattern.

    The frame computed from only the decisions the graph requests (decisions_needed, which
    must be pairs i-1, i, i+1 — the three info clips the filter wires) equals the frame the
    rules give with all decisions known.
    """
    n_src = 5
    rmap = RateMap(n_src, ratio)
    plan = OutputPlan(rmap)
    needed = {n: plan.decisions_needed(n) for n in range(plan.num_frames)}
    for n, need in needed.items():
        i = plan.left(n)
        assert need <= {i - 1, i, i + 1}
        assert all(0 <= j <= n_src - 2 for j in need)  # real pairs only
        if plan.needs_decision(n):
            assert i in need
        for o in (-1, 0, 1):
            assert plan.decision_at(n, o) == (i + o if i + o in need else None)
    for decisions in _all_decision_maps(n_src):
        for n in range(plan.num_frames):
            ref = _ref_frame(rmap, n, decisions)
            i = plan.left(n)
            full = plan.frame(n, decisions)
            assert full == ref, (n, decisions)
            # what the filter hands over: the three info frames, blank (undecided) where not requested
            wired = {j: decisions.get(j, UNDECIDED) if plan.decision_at(n, j - i) is not None else UNDECIDED
                     for j in (i - 1, i, i + 1)}
            assert plan.frame(n, wired) == ref, (n, decisions)
            assert plan.frame(n, {j: decisions[j] for j in needed[n] if j in decisions}) == ref


def test_unrequested_decisions_are_ignored():
    plan = _plan(6, 2)
    # output 0 (t == 0) and output 1 (pair 0) cannot depend on pair 4
    for n in (0, 1):
        assert 4 not in plan.decisions_needed(n)
        assert plan.frame(n, {4: CUT}) == plan.frame(n, {})
    # output 4 is source frame 2 (t == 0); output 3 (pair 1, t = 1/2) may show 1 or 1.5, so only a cut
    # in pair 1 can flag it; output 5 (pair 2, t = 1/2) shows 2 or 2.5 whatever pair 2 decides: not needed
    assert plan.decisions_needed(4) == frozenset({1})
    assert plan.frame(4, {0: CUT, 2: CUT, 3: CUT}) == plan.frame(4, {})
    assert plan.frame(4, {1: CUT}).scene_prev


@pytest.mark.parametrize("ratio", RATIOS, ids=str)
def test_display_positions_never_go_back(ratio):
    rmap = RateMap(5, ratio)
    plan = OutputPlan(rmap)
    for decisions in _all_decision_maps(5):
        shown_or_pos = []
        for n in range(plan.num_frames):
            fp = plan.frame(n, decisions)
            shown_or_pos.append(Fraction(fp.shown) if fp.shown is not None else fp.i + fp.t)
            # the filter reads near's props from src_a (i) or src_b (i + 1, only fetched when needed)
            assert fp.near in (fp.i, plan.right(n))
            assert fp.near == fp.i or plan.needs_decision(n)
        assert shown_or_pos == sorted(shown_or_pos)


# ---------------------------------------------------------------- props


def test_frame_duration():
    assert frame_duration({"_DurationNum": 1001, "_DurationDen": 24000}) == Fraction(1001, 24000)
    assert frame_duration({"_DurationNum": 2, "_DurationDen": 50}) == Fraction(1, 25)
    assert frame_duration({}) is None
    assert frame_duration({"_DurationNum": 1}) is None
    assert frame_duration({"_DurationNum": 0, "_DurationDen": 24}) is None
    assert frame_duration({"_DurationNum": 1, "_DurationDen": 0}) is None
    assert frame_duration({"_DurationNum": -1, "_DurationDen": 24}) is None
    assert frame_duration({"_DurationNum": "x", "_DurationDen": 24}) is None


@pytest.mark.parametrize(
    "src_fps, ratio, expected",
    [
        (NTSC_FILM, Fraction(5, 2), Fraction(1001, 60000)),
        (Fraction(25), Fraction(2), Fraction(1, 50)),
        (Fraction(30000, 1001), Fraction(2), Fraction(1001, 60000)),
        (Fraction(24), Fraction(5, 4), Fraction(1, 30)),
    ],
)
def test_constant_rate_duration_is_the_new_rate(src_fps, ratio, expected):
    plan = _plan(4, ratio, src_fps)
    # a stale per-frame duration must not win over the clip's rate
    stale = {"_DurationNum": 1, "_DurationDen": 7}
    for n in range(plan.num_frames):
        fp = plan.frame(n, {})
        out = plan.props(fp, stale, stale if plan.needs_decision(n) else None)
        assert Fraction(out["_DurationNum"], out["_DurationDen"]) == expected
        assert (out["_DurationNum"], out["_DurationDen"]) == (expected.numerator, expected.denominator)
        assert type(out["_DurationNum"]) is int and type(out["_DurationDen"]) is int
        assert set(out) <= {"_DurationNum", "_DurationDen", "_AbsoluteTime", "_SceneChangePrev", "_SceneChangeNext"}


def test_variable_rate_duration_scales_each_source_frame():
    plan = _plan(4, Fraction(5, 2))  # src_fps None: read per frame
    fp = plan.frame(1, {})
    out = plan.props(fp, {"_DurationNum": 1001, "_DurationDen": 24000}, {"_DurationNum": 1, "_DurationDen": 30})
    assert Fraction(out["_DurationNum"], out["_DurationDen"]) == Fraction(1001, 60000)  # frame i's duration
    out = plan.props(plan.frame(0, {}), {"_DurationNum": 1, "_DurationDen": 30}, None)
    assert Fraction(out["_DurationNum"], out["_DurationDen"]) == Fraction(1, 75)
    # no duration anywhere: none invented, the copied one is removed
    out = plan.props(fp, {}, {"_DurationNum": 1, "_DurationDen": 30})
    assert out["_DurationNum"] is None and out["_DurationDen"] is None


def test_absolute_time_of_an_interpolated_frame_is_t_of_the_way_between_its_sources():
    plan = _plan(5, Fraction(5, 2), NTSC_FILM)
    dur = Fraction(1001, 24000)
    a_time = 10.0
    b_time = a_time + float(dur)
    for n in range(plan.num_frames):
        fp = plan.frame(n, {})
        if not fp.interpolated:
            continue
        out = plan.props(fp, {"_AbsoluteTime": a_time}, {"_AbsoluteTime": b_time})
        assert a_time < out["_AbsoluteTime"] < b_time
        assert out["_AbsoluteTime"] == pytest.approx(a_time + float(fp.t) * (b_time - a_time), abs=1e-9)
        assert isinstance(out["_AbsoluteTime"], float)
        # only the right frame has a time: the same instant, from the other side
        out_b = plan.props(fp, {}, {"_AbsoluteTime": b_time})
        assert out_b["_AbsoluteTime"] == pytest.approx(out["_AbsoluteTime"], abs=1e-9)


def test_absolute_time_variable_rate_uses_the_left_frames_duration():
    plan = _plan(3, Fraction(4))
    fp = plan.frame(1, {})  # (0, 1/4)
    a = {"_AbsoluteTime": 2.0, "_DurationNum": 1, "_DurationDen": 10}
    b = {"_AbsoluteTime": 2.1, "_DurationNum": 1, "_DurationDen": 50}
    assert plan.props(fp, a, b)["_AbsoluteTime"] == pytest.approx(2.025)
    assert plan.props(fp, {k: v for k, v in a.items() if k != "_AbsoluteTime"}, b)["_AbsoluteTime"] == \
        pytest.approx(2.025)
    # a time but no duration: the interpolated time cannot be known, so none is kept
    assert plan.props(fp, {"_AbsoluteTime": 2.0}, {"_AbsoluteTime": 2.1})["_AbsoluteTime"] is None


def test_absolute_time_never_invented():
    plan = _plan(4, 2, Fraction(24))
    for n in range(plan.num_frames):
        fp = plan.frame(n, {})
        b = {} if plan.needs_decision(n) else None
        out = plan.props(fp, {}, b)
        if fp.t == 0:
            assert "_AbsoluteTime" not in out  # t == 0: the source frame keeps what it has (here: nothing)
        else:
            assert "_AbsoluteTime" in out and out["_AbsoluteTime"] is None  # None: remove the copied key


def test_absolute_time_left_alone_on_t0_frames():
    plan = _plan(4, Fraction(5, 2), NTSC_FILM)
    for n in range(plan.num_frames):
        fp = plan.frame(n, {})
        if fp.t == 0:
            assert "_AbsoluteTime" not in plan.props(fp, {"_AbsoluteTime": 123.0}, None)


def _simulate_final_props(plan, src_props, decisions):
    """What filter._finish does with the plan: near's props, then plan.props (None → remove)."""
    out = []
    for n in range(plan.num_frames):
        fp = plan.frame(n, decisions)
        i = fp.i
        props = dict(src_props[fp.near])
        b = src_props[plan.right(n)] if plan.needs_decision(n) else None
        for key, value in plan.props(fp, src_props[i], b).items():
            if value is None:
                props.pop(key, None)
            else:
                props[key] = value
        out.append((fp, props))
    return out


@pytest.mark.parametrize("ratio", RATIOS, ids=str)
def test_whole_clip_timeline_and_props_source(ratio):
    """Timestamps of every output frame land on the output grid, cuts and tail included;
    other props come from the frame shown, or the nearest source frame."""
    src_fps = Fraction(24000, 1001)
    n_src = 6
    plan = _plan(n_src, ratio, src_fps)
    src_props = [{"_AbsoluteTime": float(k / src_fps), "_DurationNum": 1001, "_DurationDen": 24000,
                  "Tag": k, "_SceneChangeNext": 1, "_SceneChangePrev": 1} for k in range(n_src)]
    decisions = {1: CUT, 3: SAME}
    out_dur = 1 / (src_fps * ratio)
    for n, (fp, props) in enumerate(_simulate_final_props(plan, src_props, decisions)):
        assert props["_AbsoluteTime"] == pytest.approx(float(n * out_dur), abs=1e-9), n
        assert Fraction(props["_DurationNum"], props["_DurationDen"]) == out_dur
        assert props["Tag"] == (fp.shown if fp.shown is not None else plan.rmap.nearest(n))
        # the source's flags are replaced by the plan's
        assert props["_SceneChangeNext"] == int(fp.scene_next)
        assert props["_SceneChangePrev"] == int(fp.scene_prev)
    flagged = [n for n, (fp, _) in enumerate(_simulate_final_props(plan, src_props, decisions)) if fp.scene_next]
    assert len(flagged) == 1  # exactly the one cut


def test_whole_clip_without_times_gets_none():
    plan = _plan(4, Fraction(5, 2), NTSC_FILM)
    src_props = [{"Tag": k} for k in range(4)]
    for fp, props in _simulate_final_props(plan, src_props, {}):
        assert "_AbsoluteTime" not in props


def test_pair_decision_defaults():
    assert UNDECIDED == PairDecision() == PairDecision(False, False)
    with pytest.raises(AttributeError):
        CUT.cut = False  # frozen
    fp = FramePlan(0, 0, Fraction(0), 0, 0, False, False)
    assert not fp.interpolated
    assert FramePlan(1, 0, Fraction(1, 2), None, 0, False, False).interpolated
