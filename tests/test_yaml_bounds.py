"""Hostile presets and recipes (issue 24 items 3, 10, 12): alias bombs, huge and deep files,
base cycles, text that should be numbers, bare names shadowed by the current folder."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from bounded import alias_bomb, run_bounded
from vsugsp.preset import load_preset
from vsugsp.quote import MAX_CHARS, short
from vsugsp.yamlfile import MAX_BYTES, load_text


def _nested(depth: int) -> list:
    """A value of 2**depth leaves sharing one list per level (what an alias bomb loads to)."""
    v: list = ["lol"]
    for _ in range(depth):
        v = [v, v]
    return v


# ------------------------------------------------------------------ the quote helper
def test_short_is_bounded_for_any_value():
    values = (_nested(60), "x" * 10_000_000, list(range(10**6)), {i: _nested(40) for i in range(1000)})
    t = time.perf_counter()
    assert all(len(short(v)) <= MAX_CHARS for v in values)
    assert time.perf_counter() - t < 0.5  # microseconds each, unloaded
    assert short([1, 2]) == "[1, 2]" and short("abc") == "'abc'" and short(0.5) == "0.5"


# ------------------------------------------------------------------ presets, in a child bounded in memory and time
@pytest.mark.parametrize("key", ["threshold", "description", "mpv", "refine"])
def test_preset_alias_bomb_is_refused_in_bounded_memory(tmp_path: Path, key: str):
    f = tmp_path / "bomb.yaml"
    f.write_text(f"{key}: {alias_bomb()}\n")
    assert f.stat().st_size < 500
    code = ("import sys\nfrom vsugsp.preset import load_preset\n"
            f"try:\n    load_preset({str(f)!r})\nexcept ValueError as e:\n    print(e); sys.exit(2)\n")
    t = time.perf_counter()
    r = run_bounded(code, mem_gib=1.0, timeout=60)
    assert time.perf_counter() - t < 60
    assert r.returncode == 2, r.stderr[-500:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) < 400 and "expands to more than" in lines[0]


def test_bomb_given_in_python_gets_a_short_message():
    """A value built in Python (no YAML limit in the way) is still quoted in a few dozen
    characters; in a child bounded in memory and time (a full repr would never end)."""
    code = """
import sys, time
from vsugsp.preset import load_preset
import vsugsp.model.net  # refine's check imports torch: not what is timed
v = ["lol"]
for _ in range(40):
    v = [v, v]
for key in ("threshold", "description", "mpv", "refine", "max_density", "model"):
    t = time.perf_counter()
    try:
        load_preset("balanced", **{key: v})
    except ValueError as e:
        print(round(time.perf_counter() - t, 3), len(str(e)), repr(key) in str(e))
"""
    r = run_bounded(code, mem_gib=5.0, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]
    rows = [line.split() for line in r.stdout.splitlines()]
    assert len(rows) == 6, r.stdout
    assert all(float(t) < 2.0 and int(n) < 400 and ok == "True" for t, n, ok in rows), rows


def test_refine_nested_lists_are_a_value_error_not_unhashable(tmp_path: Path):
    f = tmp_path / "r.yaml"
    f.write_text("refine: [&a [flow], *a]\n")
    with pytest.raises(ValueError, match="preset key 'refine'"):
        load_preset(f)
    with pytest.raises(ValueError, match="preset key 'refine'"):
        load_preset("balanced", refine=[["flow"]])


def test_large_preset_is_refused_quickly(tmp_path: Path):
    f = tmp_path / "big.yaml"
    f.write_text("description: '" + "x" * (MAX_BYTES + 10) + "'\n")
    t = time.perf_counter()
    with pytest.raises(ValueError, match="larger than") as e:
        load_preset(f)
    assert time.perf_counter() - t < 2.0 and len(str(e.value)) < 400


def test_deep_preset_is_refused(tmp_path: Path):
    f = tmp_path / "deep.yaml"
    f.write_text("threshold: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ValueError, match="nests deeper|not valid YAML") as e:
        load_preset(f)
    assert len(str(e.value)) < 600
    f.write_text("threshold: " + "[" * 100 + "]" * 100 + "\n")  # under libyaml's own limit: ours
    with pytest.raises(ValueError, match="nests deeper than 64"):
        load_preset(f)


def test_load_text_limits_and_yaml12_floats():
    assert load_text("a: 1e-9\nb: -2E3\nc: 1.5\nd: '1e-9'\ne: 10\n", "t") == \
        {"a": 1e-9, "b": -2000.0, "c": 1.5, "d": "1e-9", "e": 10}
    assert load_text("a: &x {k: 1}\nb: *x\n", "t") == {"a": {"k": 1}, "b": {"k": 1}}  # aliases still work
    with pytest.raises(ValueError, match="not valid YAML"):
        load_text("a: !!python/object/apply:os.system ['true']\n", "t")


def test_scale_1e_9_reads_as_a_number(tmp_path: Path):
    f = tmp_path / "tiny.yaml"
    f.write_text("scale: 1e-9\n")
    assert load_preset(f).scale == 1e-9
    with pytest.raises(ValueError, match=r"'scale' = '1e-9' .*read as text: write it with a dot, e.g. 1.0e-9"):  # --set's YAML 1.1
        load_preset("balanced", scale="1e-9")


@pytest.mark.parametrize("base", ["./a.yaml", "../d/a.yaml", "./././a.yaml"])
def test_base_cycle_through_dot_paths(tmp_path: Path, base: str):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.yaml").write_text(f"base: {base}\n")
    with pytest.raises(ValueError, match="circular base chain") as e:
        load_preset(d / "a.yaml")
    assert len(str(e.value)) < 400


def test_base_cycle_between_two_files(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text("base: sub/../b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: ./a.yaml\n")
    with pytest.raises(ValueError, match="circular base chain"):
        load_preset(tmp_path / "a.yaml")


def test_bare_preset_name_is_bundled_even_if_the_folder_has_a_file_of_that_name(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast").write_text("mode: dense\n")  # a stray file, not the user's intent
    assert load_preset("fast") == load_preset(Path(__file__).resolve().parent.parent / "presets" / "fast.yaml")
    (tmp_path / "mine.yaml").write_text("mode: dense\n")
    assert load_preset("mine.yaml").mode == "dense"  # a path: it has a YAML suffix
    with pytest.raises(ValueError, match="unknown preset 'mine'.*needs a / or a .yaml suffix"):
        load_preset("mine")


# ------------------------------------------------------------------ recipes
@pytest.mark.parametrize("key", ["prior"])  # one child: torch's import is slow; the loader is shared
def test_recipe_alias_bomb_is_refused_in_bounded_memory(tmp_path: Path, key: str):
    bomb = alias_bomb()
    body = {"prior": f"stages:\n  - {{name: a, prior: {bomb}}}\n", "batch": f"batch: {bomb}\nstages: [{{name: a}}]\n"}
    f = tmp_path / "bomb.yaml"
    f.write_text("name: bomb\n" + body[key])
    code = ("import sys\nfrom vsugsp.train.recipe import load_recipe\n"
            f"try:\n    load_recipe({str(f)!r})\nexcept ValueError as e:\n    print(e); sys.exit(2)\n")
    r = run_bounded(code, mem_gib=5.0, timeout=120)  # torch is imported: ~3.3 GB of address space
    assert r.returncode == 2, r.stderr[-500:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) < 400 and "expands to more than" in lines[0]


def test_bare_recipe_name_is_bundled_even_if_the_folder_has_a_file_of_that_name(tmp_path: Path, monkeypatch):
    from vsugsp.train.recipe import load_recipe

    monkeypatch.chdir(tmp_path)
    (tmp_path / "small-cpu").write_text("name: decoy\nstages: [{name: a}]\n")
    assert load_recipe("small-cpu").name == "small-cpu"
    with pytest.raises(ValueError, match="recipe file .* does not exist"):
        load_recipe("missing.yaml")
