"""`vsugsp bench memory`: RSS in order and under random seeks, each mode in its own process."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vsugsp import cli


def test_source_is_a_pure_function_of_the_frame_number():
    from vsugsp.bench.memory import source

    clip = source(64, 48, 6)
    a = [np.asarray(clip.get_frame(n)[0]).copy() for n in (3, 1, 3)]
    assert np.array_equal(a[0], a[2]) and not np.array_equal(a[0], a[1])  # moves, same in any order
    assert clip.get_frame(2).props["_Matrix"] == 1
    with pytest.raises(ValueError, match="must be even"):
        source(65, 48, 2)


def test_bench_memory_runs_both_modes(tmp_path, capsys):
    out = tmp_path / "memory.json"
    assert cli.main(["bench", "memory", "--frames", "8", "--size", "64x48", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["kind"] == "memory" and data["size"] == "64x48" and data["preset"] == "realtime"
    modes = {r["mode"]: r for r in data["runs"]}
    assert set(modes) == {"order", "random"}
    for r in modes.values():
        assert r["frames"] == 8 and r["samples"][0]["frames"] == 0 and r["samples"][-1]["frames"] == 8
        assert r["peak_mb"] >= r["loaded_mb"] > 0
    assert data["random_over_order"] == pytest.approx(modes["random"]["peak_mb"] / modes["order"]["peak_mb"], abs=1e-3)
    table = capsys.readouterr().out
    assert "| in order | 8 |" in table and "| random seeks | 8 |" in table
