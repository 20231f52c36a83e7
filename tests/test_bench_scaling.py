"""vsugsp.bench.scaling: the N-machine model and the argument parsing (no rendering)."""
from __future__ import annotations

import argparse

import pytest

from vsugsp.bench.scaling import format_table, model, parse_configs


def _run(workers: int = 2) -> dict:
    # two workers (pids 1, 2), 4 chunks of 10 frames: 1 s per frame after a 3 s first setup, 0.5 s after
    chunks = [{"index": k, "frames": 10, "seconds": 10 + setup, "setup_seconds": setup, "bytes": 10_000,
               "node": "n", "pid": 1 + k % 2} for k, setup in enumerate((3.0, 3.0, 0.5, 0.5))]
    return {"workers": workers, "threads": 1, "output_frames": 40, "chunks": 4, "seconds": 30.0,
            "render_seconds": 27.0, "stitch_seconds": 0.4, "fps": 40 / 30, "render_fps": 40 / 27,
            "load_average_before": 0.1, "chunk_runs": chunks, "frames_sha256": "x", "steady_fps": workers / 1.0}


def test_the_model_uses_the_measured_costs():
    m = model(_run(), film_frames=1200, chunk=10, machines=(1, 2, 3), link_bytes_per_s=1e12)
    k = m["costs"]
    assert k["frame_seconds"] == 1.0 and k["worker_start_seconds"] == 3.0 and k["chunk_setup_seconds"] == 0.5
    assert k["stitch_seconds_per_frame"] == 0.01 and k["driver_seconds"] == pytest.approx(2.6)
    # 120 chunks over 2 workers per machine, 10.5 s each, + 3 s start, 2.6 s driver, 12 s stitch
    rows = m["rows"]
    assert rows[0]["fps"] == pytest.approx(1200 / (2.6 + 3 + 60 * 10.5 + 12))
    assert rows[1]["fps"] == pytest.approx(1200 / (2.6 + 3 + 30 * 10.5 + 12))
    assert rows[2]["workers"] == 6 and rows[2]["fps"] == pytest.approx(1200 / (2.6 + 3 + 20 * 10.5 + 12))
    assert [r["bound"] for r in rows] == ["render"] * 3


def test_a_slow_driver_link_bounds_the_model():
    rows = model(_run(), film_frames=1200, chunk=10, machines=(1, 64), link_bytes_per_s=1000)["rows"]
    assert rows[1]["bound"] == "driver link"  # 1200 frames x 1000 B at 1000 B/s: 1200 s
    assert rows[1]["fps"] == pytest.approx(1200 / (2.6 + 1200 + 12))


def test_configs_parse_and_bad_ones_are_named():
    assert parse_configs("1x1, 2x1,1x2") == [(1, 1), (2, 1), (1, 2)]
    with pytest.raises(argparse.ArgumentTypeError, match="'2' is not WORKERSxTHREADS"):
        parse_configs("1x1,2")
    with pytest.raises(argparse.ArgumentTypeError, match="'0x1'"):
        parse_configs("0x1")


def test_the_table_names_the_machine_and_checks_the_frames():
    runs = [_run(1), {**_run(2), "frames_sha256": "y"}]
    data = {"date": "2026-12-02", "machine": {"cpu": "CPU X", "cores": 2, "gpus": []}, "git_commit": "abc",
            "source": {"width": 640, "height": 360, "frames": 20}, "preset": "fast", "chunk": 10,
            "runs": runs, "model": model(runs[1], film_frames=1200, chunk=10, machines=(1, 2))}
    md = format_table(data)
    assert "CPU X (2 cores, no GPU)" in md and "2026-12-02" in md
    assert "| 1 × 1 |" in md and "| yes |" in md and "| NO |" in md
