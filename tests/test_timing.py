"""Output frame ↔ source position: exact lengths, positions, durations, rate parsing."""
from fractions import Fraction

import pytest

from vsugsp.timing import (
    MAX_FRAMES,
    RateMap,
    interpolated_time,
    output_duration,
    parse_rate,
    resolve_ratio,
    scaled_duration,
    snap_rate,
)


@pytest.mark.parametrize(
    "n_src, ratio, expected",
    [
        (10, Fraction(2), 20),
        (10, Fraction(3), 30),
        (7, Fraction(5, 2), 18),  # ⌈17.5⌉
        (10, Fraction(60000, 1001) / Fraction(24000, 1001), 25),
        (1, Fraction(2), 2),
        (3, Fraction(4, 3), 4),
    ],
)
def test_output_length_is_ceil(n_src, ratio, expected):
    assert RateMap(n_src, ratio).num_frames == expected


def test_integer_factor_positions():
    m = RateMap(4, Fraction(3))
    got = [m.position(n) for n in range(m.num_frames)]
    assert got[:4] == [(0, 0), (0, Fraction(1, 3)), (0, Fraction(2, 3)), (1, 0)]
    assert got[-1] == (3, Fraction(2, 3))
    assert all(isinstance(t, Fraction) for _, t in got)


def test_ntsc_24_to_60_positions():
    m = RateMap(10, Fraction(60000, 1001) / Fraction(24000, 1001))
    pos = [m.position(n) for n in range(m.num_frames)]
    assert pos[0] == (0, 0)
    assert pos[1] == (0, Fraction(2, 5))
    assert pos[2] == (0, Fraction(4, 5))
    assert pos[3] == (1, Fraction(1, 5))
    assert pos[5] == (2, 0)
    # every source frame at an even index is shown unchanged (t == 0)
    assert [n for n, (_, t) in enumerate(pos) if t == 0] == [0, 5, 10, 15, 20]


def test_positions_are_exact_for_huge_indices():
    big = 2**31 // 16  # mpv's clip length
    m = RateMap(big, Fraction(60000, 1001) / Fraction(24000, 1001))
    n = m.num_frames - 1
    i, t = m.position(n)
    assert i == big - 1 and 0 <= t < 1
    assert i + t == Fraction(n) / m.ratio


def test_outputs_of_partition_outputs():
    for ratio in (Fraction(2), Fraction(5, 2), Fraction(7, 3), Fraction(2500, 1001)):
        m = RateMap(9, ratio)
        seen = []
        for i in range(9):
            r = m.outputs_of(i)
            assert all(m.position(n)[0] == i for n in r)
            seen.extend(r)
        assert seen == list(range(m.num_frames))


def test_times_of_pair_independent_of_request():
    m = RateMap(10, Fraction(5, 2))
    assert m.times_of(0) == (Fraction(2, 5), Fraction(4, 5))
    assert m.times_of(1) == (Fraction(1, 5), Fraction(3, 5))
    assert m.times_of(0) == m.times_of(0)
    # factor 2: one t per pair
    assert RateMap(5, Fraction(2)).times_of(3) == (Fraction(1, 2),)


def test_nearest_ties_to_earlier_and_clamps():
    m = RateMap(3, Fraction(4))
    assert [m.nearest(n) for n in range(m.num_frames)] == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2]


def test_position_out_of_range():
    with pytest.raises(IndexError):
        RateMap(3, Fraction(2)).position(6)
    with pytest.raises(IndexError):
        RateMap(3, Fraction(2)).position(-1)


def test_too_many_output_frames():
    with pytest.raises(ValueError, match="more than VapourSynth can hold"):
        RateMap(MAX_FRAMES // 2, Fraction(3))


def test_durations():
    d = output_duration(Fraction(24000, 1001), Fraction(5, 2))
    assert d == Fraction(1001, 60000)
    assert output_duration(Fraction(25), Fraction(2)) == Fraction(1, 50)
    assert scaled_duration(Fraction(1, 30), Fraction(2)) == Fraction(1, 60)
    assert interpolated_time(1.0, Fraction(1, 2), Fraction(1, 24)) == pytest.approx(1 + 1 / 48)


@pytest.mark.parametrize(
    "value, expected",
    [
        (60, Fraction(60)),
        (Fraction(60000, 1001), Fraction(60000, 1001)),
        ((60000, 1001), Fraction(60000, 1001)),
        ("30000/1001", Fraction(30000, 1001)),
        (59.94, Fraction(60000, 1001)),
        (23.976, Fraction(24000, 1001)),
        (29.97, Fraction(30000, 1001)),
        (50.0, Fraction(50)),
        (12.5, Fraction(25, 2)),
        (59.8, Fraction(299, 5)),  # not within 0.1 % of 60 or 60000/1001: kept
        (59.97, Fraction(60000, 1001)),  # within 0.1 %: snaps (was 5997/100 before the one rule)
        (143.998, Fraction(144)),  # was 71999/500 before the one rule
        (33.3333333, Fraction(100, 3)),
    ],
)
def test_parse_rate(value, expected):
    assert parse_rate(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        (23.976, Fraction(24000, 1001)),
        (23.976023976, Fraction(24000, 1001)),
        (59.94, Fraction(60000, 1001)),
        (59.951, Fraction(60000, 1001)),  # a measured display rate
        (60.0, Fraction(60)),
        (60.05, Fraction(60)),
        (143.998, Fraction(144)),
        (119.88, Fraction(120000, 1001)),
        (12.5, Fraction(25, 2)),
        (59.8, Fraction(299, 5)),
        (33.333, Fraction(33333, 1000)),  # at most 3 decimals: exact
        (33.3333333, Fraction(100, 3)),
    ],
)
def test_snap_rate(value, expected):
    assert snap_rate(value) == expected


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_snap_rate_rejects_non_finite(bad):
    with pytest.raises(ValueError, match="finite"):
        snap_rate(bad)


@pytest.mark.parametrize("bad", [0, -24, (1, 0), "fast", None, True, float("nan"), [1, 2, 3]])
def test_parse_rate_rejects(bad):
    with pytest.raises(ValueError, match="vsugsp: fps"):
        parse_rate(bad)


def test_resolve_ratio():
    assert resolve_ratio(2) == 2
    assert resolve_ratio(Fraction(5, 2)) == Fraction(5, 2)
    assert resolve_ratio(2, fps=(60000, 1001), src_fps=Fraction(24000, 1001)) == Fraction(5, 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(factor=1), "greater than 1"),
        (dict(factor=Fraction(1, 2)), "only raises the frame rate"),
        (dict(factor=2.5), r"Fraction\(5, 2\)"),
        (dict(factor="2"), "int or fractions.Fraction"),
        (dict(factor=True), "int or fractions.Fraction"),
        (dict(fps=30, src_fps=None), "known frame rate"),
        (dict(fps=30, src_fps=Fraction(0)), "known frame rate"),
        (dict(fps=24, src_fps=Fraction(30)), "not above the clip's rate"),
        (dict(fps=30, src_fps=Fraction(30)), "not above the clip's rate"),
    ],
)
def test_resolve_ratio_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resolve_ratio(**kwargs)
