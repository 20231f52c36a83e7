"""Training recipes with `base:`: merge rules, path resolution, errors, and the bundled
recipes (refactored onto presets/train/_small-base.yaml) parsing exactly as before."""
import dataclasses
import json
from pathlib import Path

import pytest

from vsugsp.train.recipe import bundled_recipes, load_recipe

# dataclasses.asdict(load_recipe(name)) of every bundled recipe, dumped before `base:`
# existed (when each recipe spelled out all its keys)
FIXTURE = json.loads((Path(__file__).parent / "data" / "recipes-before-base.json").read_text())


def _dump(obj) -> str:
    # json keeps 1 and 1.0 apart, so an int that became a float (or back) shows up
    return json.dumps(obj, sort_keys=True)


@pytest.mark.parametrize("name", sorted(FIXTURE))
def test_bundled_recipe_unchanged_by_base_refactor(name):
    r = load_recipe(name)
    assert _dump(dataclasses.asdict(r)) == _dump(FIXTURE[name])


def test_bundled_listing_hides_shared_bases():
    names = bundled_recipes()
    assert set(FIXTURE) <= set(names)
    assert not any(n.startswith("_") for n in names)
    with pytest.raises(ValueError, match="bundled: small-cpu, ") as e:
        load_recipe("no-such-recipe")
    assert "_small-base" not in str(e.value)


def test_bundled_key_facts():
    # a few facts spelled out, independent of the fixture
    for name in FIXTURE:
        r = load_recipe(name)
        assert r.name == name and r.model == {"width": "small"}
        assert r.data.source == "synth" and r.data.path == ".cache/photos"
        assert r.data.synth == {"motion_gamma": 2.5, "bg_scale": [0.3, 1.0], "interp": "cubic"}
        assert r.precision == "auto"
    stages = {n: [(s.name, s.mode, s.steps, s.lr) for s in load_recipe(n).stages] for n in FIXTURE}
    assert stages["small-cpu"] == [("dense", "dense", 7000, 5e-4), ("pruned", "train", 300, 1e-4)]
    assert stages["small-cpu-cont"] == [("dense", "dense", 26000, 2.5e-4), ("pruned", "train", 1200, 5e-5)]
    assert stages["small-cpu-masks"] == [("pruned", "train", 1000, 5e-5)]
    assert stages["small-cpu-prior"] == [("dense", "dense", 8000, 2e-4), ("pruned", "train", 500, 5e-5)]
    assert stages["small-cpu-real"] == [("dense", "dense", 1852, 6e-5), ("pruned", "train", 200, 3e-5)]
    assert stages["small-gpu"] == [("dense", "dense", 50000, 6e-4), ("pruned", "train", 10000, 1e-4)]
    cpu = load_recipe("small-cpu")
    assert (cpu.data.size, cpu.data.workers, cpu.data.heldout, cpu.data.heldout_size, cpu.batch) == (128, 1, 32, 128, 8)
    assert cpu.data.real == {} and cpu.snapshot_every == 1000
    gpu = load_recipe("small-gpu")
    assert (gpu.data.size, gpu.data.workers, gpu.data.heldout, gpu.data.heldout_size, gpu.batch) == (256, 8, 64, 256, 32)
    assert gpu.data.real == {"max_gap": 4, "stride": 2} == load_recipe("small-cpu-real").data.real


BASE = """\
name: parent
model: {width: small, body: 1}
data:
  size: 64
  workers: 2
  synth: {motion_gamma: 2.5, interp: cubic}
  real: {max_gap: 4, stride: 2}
batch: 4
seed: 7
stages:
  - {name: a, mode: dense, steps: 10}
  - {name: b, mode: train, steps: 5, lr: 1.0e-4}
"""


def _write(p: Path, text: str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_child_overrides_scalar_and_inherits_the_rest(tmp_path):
    _write(tmp_path / "parent.yaml", BASE)
    r = load_recipe(_write(tmp_path / "child.yaml", "base: parent.yaml\nname: child\nbatch: 16\n"))
    assert r.name == "child" and r.batch == 16 and r.seed == 7
    assert [s.name for s in r.stages] == ["a", "b"]
    assert r.data.size == 64 and r.data.workers == 2


def test_nested_mappings_merge_key_by_key(tmp_path):
    _write(tmp_path / "parent.yaml", BASE)
    r = load_recipe(_write(tmp_path / "child.yaml", (
        "base: parent.yaml\nname: child\n"
        "model: {body: 3}\n"
        "data:\n  size: 96\n  synth: {motion_gamma: 1.5, bg_scale: [0.5, 1.0]}\n  real: {stride: 3}\n")))
    assert r.model == {"width": "small", "body": 3}
    assert r.data.size == 96 and r.data.workers == 2
    assert r.data.synth == {"motion_gamma": 1.5, "interp": "cubic", "bg_scale": [0.5, 1.0]}
    assert r.data.real == {"max_gap": 4, "stride": 3}


def test_stages_are_replaced_whole(tmp_path):
    _write(tmp_path / "parent.yaml", BASE)
    r = load_recipe(_write(tmp_path / "child.yaml", (
        "base: parent.yaml\nname: child\nstages:\n  - {name: only, mode: train, steps: 3}\n")))
    assert [(s.name, s.mode, s.steps, s.lr) for s in r.stages] == [("only", "train", 3, 3e-4)]
    # lists inside mappings are values too: replaced, not concatenated
    r = load_recipe(_write(tmp_path / "c2.yaml", (
        "base: parent.yaml\nname: c2\ndata: {synth: {bg_scale: [1.0]}}\n")))
    assert r.data.synth["bg_scale"] == [1.0]


def test_name_is_not_inherited(tmp_path):
    _write(tmp_path / "parent.yaml", BASE)
    with pytest.raises(ValueError, match=r"vsugsp: recipe '.*nameless\.yaml' has no 'name'"):
        load_recipe(_write(tmp_path / "nameless.yaml", "base: parent.yaml\nbatch: 2\n"))
    # no base: a missing name is an error too (today's behaviour, as a ValueError)
    with pytest.raises(ValueError, match="has no 'name'"):
        load_recipe(_write(tmp_path / "plain.yaml", BASE.replace("name: parent\n", "")))


def test_relative_base_resolves_from_the_yaml_folder(tmp_path, monkeypatch):
    _write(tmp_path / "cfg" / "bases" / "parent.yaml", BASE)
    # a chain: grand -> mid -> bases/parent.yaml, each relative to its own file's folder
    _write(tmp_path / "cfg" / "bases" / "mid.yaml", "base: parent.yaml\nname: mid\nseed: 9\n")
    child = _write(tmp_path / "cfg" / "child.yaml", "base: bases/mid.yaml\nname: child\nbatch: 1\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _write(elsewhere / "bases" / "mid.yaml", "this: would be wrong\n")  # cwd-relative decoy
    monkeypatch.chdir(elsewhere)
    r = load_recipe(str(child))
    assert (r.name, r.batch, r.seed, r.data.size) == ("child", 1, 9, 64)
    monkeypatch.chdir(tmp_path / "cfg")
    r = load_recipe("child.yaml")  # the top-level path itself stays cwd-relative
    assert (r.name, r.seed) == ("child", 9)


def test_base_by_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = load_recipe(_write(tmp_path / "mine.yaml", "base: small-cpu\nname: mine\ndata: {path: /data/photos}\n"))
    ref = load_recipe("small-cpu")
    assert r.name == "mine" and r.data.path == "/data/photos"
    assert dataclasses.replace(r, name=ref.name, data=dataclasses.replace(r.data, path=ref.data.path)) == ref


def test_circular_base_chain(tmp_path):
    _write(tmp_path / "a.yaml", "base: b.yaml\nname: a\n")
    _write(tmp_path / "b.yaml", "base: sub/c.yaml\nname: b\n")
    _write(tmp_path / "sub" / "c.yaml", "base: ../a.yaml\nname: c\n")
    with pytest.raises(ValueError, match=r"vsugsp: recipe '.*a\.yaml' has a circular base chain through "
                                         r".*a\.yaml -> .*b\.yaml -> .*c\.yaml -> .*a\.yaml"):
        load_recipe(tmp_path / "a.yaml")
    _write(tmp_path / "self.yaml", "base: self.yaml\nname: self\n")
    with pytest.raises(ValueError, match="circular base chain"):
        load_recipe(tmp_path / "self.yaml")


def test_unknown_base(tmp_path):
    p = _write(tmp_path / "child.yaml", "base: no-such-base\nname: child\n")
    with pytest.raises(ValueError, match=r"vsugsp: recipe '.*child\.yaml' key 'base': 'no-such-base' not found"
                                         r".*; bundled: .*small-cpu"):
        load_recipe(p)
    with pytest.raises(ValueError, match=r"key 'base' must be a recipe name or path"):
        load_recipe(_write(tmp_path / "bad.yaml", "base: [a, b]\nname: bad\n"))


def test_errors_name_the_file_that_holds_the_key(tmp_path):
    _write(tmp_path / "parent.yaml", BASE.replace("batch: 4\n", "batch: 4\nbtach: 5\n"))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['btach'\] in .*parent\.yaml"):
        load_recipe(_write(tmp_path / "child.yaml", "base: parent.yaml\nname: child\n"))
    _write(tmp_path / "p2.yaml", BASE.replace("  size: 64\n", "  size: 64\n  sise: 3\n"))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['sise'\] in .*p2\.yaml\.data"):
        load_recipe(_write(tmp_path / "c2.yaml", "base: p2.yaml\nname: c2\n"))
    _write(tmp_path / "broken.yaml", "name: [unclosed")
    with pytest.raises(ValueError, match=r"recipe '.*broken\.yaml' is not valid YAML"):
        load_recipe(_write(tmp_path / "c3.yaml", "base: broken.yaml\nname: c3\n"))
