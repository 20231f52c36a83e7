"""Crafted weights files and model names (issue 24 items 8 and 12)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bounded import run_bounded
from vsugsp.model import ModelConfig, UGSPNet, load, save
from vsugsp.model.io import resolve, weights_dir


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return save(UGSPNet(ModelConfig("small")), tmp_path_factory.mktemp("w") / "w.pt")


def _crafted(src: Path, dst: Path, **config) -> Path:
    payload = torch.load(src, weights_only=True)
    payload["config"].update(config)
    torch.save(payload, dst)
    return dst


def test_huge_config_is_refused_before_building_in_bounded_memory(weights: Path, tmp_path: Path):
    bad = _crafted(weights, tmp_path / "huge.pt", body=100_000)  # would be a network of ~186 GB
    code = ("import sys\nfrom vsugsp.model import load\n"
            f"try:\n    load({str(bad)!r})\nexcept ValueError as e:\n    print(e); sys.exit(2)\n")
    r = run_bounded(code, mem_gib=5.0, timeout=120)  # torch is imported: ~3.3 GB of address space
    assert r.returncode == 2, r.stderr[-500:]
    assert "invalid config" in r.stdout and "body=100000" in r.stdout and "1..16" in r.stdout


def test_train_init_with_crafted_weights_exits_2_with_one_line(weights: Path, tmp_path: Path):
    bad = _crafted(weights, tmp_path / "huge.pt", decoder_mult=50_000)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\ndata: {path: photos, size: 32, heldout: 0}\nstages: [{name: a, steps: 1}]\n")
    r = run_bounded("", mem_gib=5.0, timeout=120, cwd=tmp_path,
                    args=["-m", "vsugsp", "train", str(recipe), "--init", str(bad), "--out", str(tmp_path / "run"),
                          "--device", "cpu"])
    assert r.returncode == 2, r.stderr[-800:]
    lines = [x for x in r.stderr.splitlines() if x.startswith("vsugsp:")]
    assert len(lines) == 1 and "decoder_mult=50000" in lines[0] and "Traceback" not in r.stderr


@pytest.mark.parametrize("config, match", [
    ({"body": 17}, "body=17; allowed: an integer in 1..16"),
    ({"decoder_mult": 0}, "decoder_mult=0"),
    ({"body": True}, "body=True"),
    ({"width": ["small"]}, r"width=\['small'\]"),
    ({"width": "huge"}, "width='huge'"),
])
def test_bad_configs_are_value_errors(weights: Path, tmp_path: Path, config: dict, match: str):
    with pytest.raises(ValueError, match=match):
        load(_crafted(weights, tmp_path / "bad.pt", **config))


def test_tensor_of_the_wrong_shape_is_named_before_building(weights: Path, tmp_path: Path):
    payload = torch.load(weights, weights_only=True)
    key = sorted(payload["state_dict"])[0]
    payload["state_dict"][key] = torch.zeros(3)
    torch.save(payload, tmp_path / "shape.pt")
    with pytest.raises(ValueError, match=rf"does not match config .*shape mismatch .*'{key}', \(3,\)"):
        load(tmp_path / "shape.pt")


def test_bare_model_name_is_packaged_whatever_the_folder_holds(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small").mkdir()  # `vsugsp bench quality` run from a folder holding ./small
    assert resolve("small") == weights_dir() / "small.pt"
    with pytest.raises(ValueError, match="is a directory"):
        resolve("./small")
    (tmp_path / "mine").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"no packaged weights named 'mine'.*a file here needs a path: \./mine"):
        resolve("mine")
    with pytest.raises(ValueError, match="does not exist"):
        resolve("other.pt")  # a .pt name is a path
