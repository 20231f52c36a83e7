"""Resuming a training run safely (issue 24 items 9 and 10): another recipe's run, a truncated
or foreign checkpoint, another network; nothing in the run folder is rewritten on refusal."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from bounded import run_bounded
from vsugsp.model import ModelConfig, UGSPNet, save
from vsugsp.train.loop import save_checkpoint, train
from vsugsp.train.recipe import parse

SPEC = {
    "name": "ok",
    "model": {"width": "small"},
    "data": {"source": "synth", "path": "photos", "size": 32, "workers": 0, "heldout": 0},
    "batch": 2,
    "precision": "fp32",
    "stages": [{"name": "dense", "mode": "dense", "steps": 2, "warmup": 1}],
}


def _recipe(**over):
    d = copy.deepcopy(SPEC)
    d.update(over)
    return parse(d)


def _run_folder(tmp_path: Path, recipe, step: int = 1, width: str = "small") -> tuple[Path, dict[str, bytes]]:
    """A run folder as training leaves it: ckpt.pt at ``step`` and weights.pt; also their bytes."""
    out = tmp_path / "run"
    out.mkdir()
    net = UGSPNet(ModelConfig(width))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    save_checkpoint(out / "ckpt.pt", net, opt, step, recipe)
    save(net, out / "weights.pt", {"steps": step})
    return out, _files(out)


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix == ".pt"}


def test_another_recipes_run_is_refused_and_left_as_it_was(tmp_path: Path):
    out, before = _run_folder(tmp_path, _recipe())
    with pytest.raises(ValueError, match=r"is a run of recipe 'ok', not 'other'; give another --out"):
        train(_recipe(name="other"), out, device="cpu", progress=False)
    assert _files(out) == before


def test_cli_train_other_recipe_into_a_run_exits_2(tmp_path: Path):
    out, before = _run_folder(tmp_path, _recipe())
    other = tmp_path / "other.yaml"
    other.write_text("name: other\ndata: {path: photos, size: 32, heldout: 0}\nstages: [{name: a, steps: 4}]\n")
    r = run_bounded("", mem_gib=5.0, timeout=120, cwd=tmp_path,
                    args=["-m", "vsugsp", "train", str(other), "--out", str(out), "--device", "cpu"])
    assert r.returncode == 2, r.stderr[-800:]
    assert "vsugsp: error:" in r.stderr and "is a run of recipe 'ok', not 'other'" in r.stderr
    assert "resuming" not in r.stderr and "Traceback" not in r.stderr
    assert _files(out) == before


def test_truncated_checkpoint_is_refused_and_left_as_it_was(tmp_path: Path):
    out, _ = _run_folder(tmp_path, _recipe())
    ck = out / "ckpt.pt"
    ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    before = _files(out)
    with pytest.raises(ValueError, match=r"checkpoint .*ckpt\.pt' cannot be read .*move it away"):
        train(_recipe(), out, device="cpu", progress=False)
    assert _files(out) == before
    ck.write_bytes(b"")  # an empty file (disk full at the wrong moment)
    with pytest.raises(ValueError, match="cannot be read"):
        train(_recipe(), out, device="cpu", progress=False)
    torch.save({"hello": 1}, ck)
    with pytest.raises(ValueError, match="not a vsugsp training checkpoint"):
        train(_recipe(), out, device="cpu", progress=False)


def test_checkpoint_of_another_network_is_refused(tmp_path: Path):
    out, before = _run_folder(tmp_path, _recipe(), width="base")
    with pytest.raises(ValueError, match=r"holds another network .*'base'.* than recipe 'ok' builds"):
        train(_recipe(), out, device="cpu", progress=False)
    assert _files(out) == before


def test_init_of_another_network_is_refused(tmp_path: Path):
    w = save(UGSPNet(ModelConfig("base")), tmp_path / "base.pt")
    with pytest.raises(ValueError, match=r"--init .*base\.pt' is a base network .*trains small"):
        train(_recipe(), tmp_path / "run", init=w, device="cpu", progress=False)


def test_a_finished_run_is_not_rewritten(tmp_path: Path):
    out, before = _run_folder(tmp_path, _recipe(), step=2)  # the recipe's 2 steps are done
    assert train(_recipe(), out, device="cpu", progress=False) == out
    assert _files(out) == before


def test_recipe_changes_name_the_keys():
    a = _recipe()
    b = _recipe(stages=[{"name": "dense", "mode": "dense", "steps": 5, "warmup": 1}], batch=4)
    from dataclasses import asdict

    from vsugsp.train.loop import recipe_changes

    assert recipe_changes(asdict(a), asdict(a)) == []
    assert recipe_changes(asdict(a), asdict(b)) == ["batch: 2 -> 4", "stages[0].steps: 2 -> 5"]
