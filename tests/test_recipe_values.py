"""Every recipe value is checked before training starts (issue 24 item 10): errors name the
key, the value and what is allowed; values that used to pass (``steps: 2.5``) are refused."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from bounded import run_bounded
from vsugsp.train.recipe import load_recipe, parse

SPEC = {
    "name": "r",
    "data": {"source": "synth", "path": "photos", "size": 32, "heldout": 0},
    "stages": [{"name": "a", "mode": "dense", "steps": 2}],
}


def _with(where: str, value):
    d = copy.deepcopy(SPEC)
    *parents, key = where.split(".")
    node = d
    for p in parents:
        node = node["stages"][0] if p == "stage" else node[p]
    node[key] = value
    return d


@pytest.mark.parametrize("where, value, match", [
    ("stage.steps", "10", r"steps='10' \(text, not a number.*allowed: an integer ≥ 1"),
    ("stage.steps", 2.5, r"steps=2.5; allowed: an integer ≥ 1"),
    ("stage.steps", 0, r"steps=0; allowed: an integer ≥ 1"),
    ("stage.lr", "abc", r"lr='abc'; allowed: a number > 0"),
    ("stage.lr", float("nan"), r"lr=nan"),
    ("stage.rho", [2, 3], r"rho=\[2, 3\]; allowed: a number in \(0, 1\] or a list of 3"),
    ("stage.rho", [0.5, 0.5, 2], r"rho=\[0.5, 0.5, 2\]"),
    ("stage.tau", 0, r"tau=0"),
    ("stage.warmup", -1, r"warmup=-1"),
    ("stage.w_image", -0.5, r"w_image=-0.5"),
    ("stage.name", ["a"], r"name=\['a'\]"),
    ("threads", -1, r"threads=-1; allowed: an integer in 0..4096"),
    ("log_every", 0, r"log_every=0; allowed: an integer ≥ 1"),
    ("eval_every", 0, r"eval_every=0"),
    ("ckpt_every", 0, r"ckpt_every=0"),
    ("snapshot_every", -5, r"snapshot_every=-5"),
    ("batch", 2.0, r"batch=2.0"),
    ("batch", True, r"batch=True"),
    ("seed", "x", r"seed='x'"),
    ("grad_clip", 0, r"grad_clip=0"),
    ("precision", "int8", r"precision='int8'"),
    ("model", {"body": 100000}, r"model: .*body=100000; allowed: an integer in 1..16"),
    ("model", {"width": ["small"]}, r"width=\['small'\]"),
    ("model", "small", r"model='small'; allowed: a mapping"),
    ("data.size", 40, r"multiples of 16"),
    ("data.size", "32", r"size='32'"),
    ("data.workers", -1, r"workers=-1"),
    ("data.path", None, r"path=None; allowed: a path"),
    ("data.synth", {"motion": 3}, r"unknown key\(s\) \['motion'\] in recipe.data.synth"),
    ("data.synth", [1], r"synth=\[1\]; allowed: a mapping"),
])
def test_bad_values_name_key_value_allowed(where: str, value, match: str):
    with pytest.raises(ValueError, match=match) as e:
        parse(_with(where, value))
    assert str(e.value).startswith("vsugsp:") and "\n" not in str(e.value)


def test_good_values_still_pass():
    r = parse(_with("stage.rho", 0.5))
    assert r.stages[0].rho == 0.5
    r = parse(_with("stage.lr", 1))  # an integer is a number
    assert r.stages[0].lr == 1.0 and isinstance(r.stages[0].lr, float)


def test_yaml_1e_numbers_are_numbers(tmp_path: Path):
    f = tmp_path / "r.yaml"
    f.write_text("name: r\ndata: {path: photos, size: 32}\nweight_decay: 1e-5\n"
                 "stages: [{name: a, lr: 3e-4, lr_min: 1e-6}]\n")
    r = load_recipe(f)
    assert (r.weight_decay, r.stages[0].lr, r.stages[0].lr_min) == (1e-5, 3e-4, 1e-6)


def test_cli_train_bad_value_exits_2_with_one_line(tmp_path: Path):
    """log_every: 0 was a ZeroDivisionError after setup (one child process: torch's import is slow)."""
    f = tmp_path / "r.yaml"
    f.write_text("name: r\ndata: {path: photos, size: 32, heldout: 0}\nstages: [{name: a, steps: 2}]\nlog_every: 0\n")
    key = "log_every"
    r = run_bounded("", mem_gib=5.0, timeout=120, cwd=tmp_path,
                    args=["-m", "vsugsp", "train", str(f), "--out", str(tmp_path / "run"), "--device", "cpu"])
    assert r.returncode == 2, r.stderr[-800:]
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("vsugsp: error:") and f"{key}=" in lines[0]
    assert not (tmp_path / "run").exists()  # refused before anything is written
