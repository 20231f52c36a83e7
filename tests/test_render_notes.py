"""What `vsugsp render` prints around the frames (issue 24 item 15): no Ray
token-authentication notice on every run, and a summary that says how many
workers ran, not how many were asked for."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from test_cli import tiny_model, write_clip  # noqa: F401  (tiny_model is a fixture)

pytest.importorskip("ray", reason="the distributed extra (ray) is not installed")


def test_a_short_render_says_what_ran_and_prints_no_ray_notice(tmp_path, tiny_model):
    src = write_clip(tmp_path / "in.mp4", frames=6)  # 12 output frames: one chunk
    out = tmp_path / "out.mkv"
    env_free = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}  # Ray warns when it is unset
    proc = subprocess.run(
        [sys.executable, "-m", "vsugsp", "render", str(src), "-o", str(out), "--workers", "2", "--device", "cpu",
         "--model", str(tiny_model), "--set", "flow_prior=none", "--no-audio"],
        capture_output=True, text=True, timeout=300, env=env_free,
    )
    assert proc.returncode == 0, proc.stderr
    assert "chunks:  1: 1 rendered" in proc.stdout, proc.stdout
    assert "workers: 1 x " in proc.stdout, proc.stdout  # one chunk ran on one worker, whatever --workers said
    assert "Token authentication" not in proc.stderr and "RAY_AUTH_MODE" not in proc.stderr, proc.stderr
