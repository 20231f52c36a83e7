"""Preset loading and validation: bundled names, YAML paths, overrides, clear errors."""
from pathlib import Path

import pytest

from vsugsp.preset import PRESET_KEYS, Preset, available_presets, load_preset, preset_dir

BUNDLED = ("fast", "balanced", "quality", "realtime")


def test_bundled_presets_exist_and_validate():
    assert set(BUNDLED) <= set(available_presets())
    for name in BUNDLED:
        p = load_preset(name)
        assert isinstance(p, Preset)
        assert p.description


def test_bundled_values():
    q, b, f, r = (load_preset(n) for n in ("quality", "balanced", "fast", "realtime"))
    assert q.mode == "dense" and q.scale == 1.0 and q.precision == "fp32"
    assert b.mode == "auto" and b.threshold == 0.5  # auto: pruned on a CPU, measured on CUDA
    assert b.max_density == 0.4 and q.max_density is None
    assert q.ensemble == 4 and b.ensemble == f.ensemble == r.ensemble == 1
    # every preset makes its frames from the prior alone where a pair has one; quality
    # averages four readings of it (tests/test_quad_training.py)
    assert q.refine == b.refine == f.refine == r.refine == ()
    assert (q.readings, b.readings, f.readings, r.readings) == (4, 2, 1, 1)  # the prior alone's readings
    assert sum(f.max_density) / 3 <= b.max_density  # fast computes no more on average, and from a higher threshold
    assert f.mode == "auto" and f.threshold > b.threshold
    assert f.scale_for(720) == 0.5 and f.scale_for(576) == 1.0
    assert r.precision == "fp16" and r.scale == 0.5
    assert r.mpv["cuda"]["max_pixels"] == 1920 * 1088
    assert r.get("mpv") is r.mpv and r.get("nonsense", 3) == 3


def test_overrides_win():
    p = load_preset("balanced", threshold=0.8, device="cpu", scene_change=False)
    assert p.threshold == 0.8 and p.device == "cpu" and p.scene_change == "off"
    assert load_preset(p).threshold == 0.8  # a Preset round-trips
    assert load_preset({"base": "quality", "batch": 2}).mode == "dense"


def test_max_density_values():
    assert load_preset("balanced", max_density=0.5).max_density == 0.5
    assert load_preset("balanced", max_density=[1, 0.5, 0.25]).max_density == (1.0, 0.5, 0.25)
    assert load_preset("balanced", max_density=None).max_density is None
    for bad in (0, 1.5, [0.5, 0.5], [0.5, 0.5, 0], "half", True):
        with pytest.raises(ValueError, match="'max_density'"):
            load_preset("balanced", max_density=bad)


@pytest.mark.parametrize("key", ["ensemble", "readings"])
def test_ensemble_and_readings_values(key):
    assert getattr(load_preset("quality", **{key: 2}), key) == 2
    for bad in (0, 3, True, "4", 1.5):
        with pytest.raises(ValueError, match=f"'{key}'.*1 \\| 2 \\| 4"):
            load_preset("quality", **{key: bad})


def test_user_yaml(tmp_path: Path):
    f = tmp_path / "mine.yaml"
    f.write_text("base: fast\nthreshold: 0.9\nmpv:\n  max_pixels: 1000\n")
    p = load_preset(str(f))
    assert p.threshold == 0.9 and p.large_height == 576 and p.mpv == {"max_pixels": 1000}
    g = tmp_path / "plain.yml"
    g.write_text("mode: dense\n")
    p = load_preset(g, batch=3)
    assert p.mode == "dense" and p.batch == 3 and p.model == load_preset("balanced").model


def test_relative_base_is_read_from_the_yaml_folder(tmp_path: Path, monkeypatch):
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "parent.yaml").write_text("base: fast\nthreshold: 0.8\n")
    (tmp_path / "presets" / "child.yaml").write_text("base: parent.yaml\nbatch: 2\n")
    (tmp_path / "parent.yaml").write_text("threshold: 0.1\n")  # a decoy in the current directory
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    p = load_preset(tmp_path / "presets" / "child.yaml")
    assert (p.threshold, p.batch, p.large_height) == (0.8, 2, 576)
    monkeypatch.chdir(tmp_path)  # the decoy must not win either
    p = load_preset("presets/child.yaml")
    assert p.threshold == 0.8


def test_unknown_preset_lists_available():
    with pytest.raises(ValueError) as e:
        load_preset("turbo")
    msg = str(e.value)
    assert msg.startswith("vsugsp:") and "turbo" in msg
    for name in BUNDLED:
        assert name in msg


def test_unknown_key_names_it(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown preset key 'thresold'.*threshold"):
        load_preset("balanced", thresold=0.4)
    f = tmp_path / "typo.yaml"
    f.write_text("scael: 0.5\n")
    with pytest.raises(ValueError, match="'scael'"):
        load_preset(f)
    with pytest.raises(ValueError, match="mpv.cuda.max_px"):
        load_preset("balanced", mpv={"cuda": {"max_px": 3}})


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("threshold", 1.0, r"\[0, 1\)"),
        ("threshold", "high", r"\[0, 1\)"),
        ("scale", 0, r"\(0, 1\]"),
        ("scale", 1.5, r"\(0, 1\]"),
        ("mode", "sparse", "dense | pruned"),
        ("precision", "bf16", "fp16 | fp32"),
        ("device", "tpu", "auto | cpu | cuda"),
        ("backend", "metal", "reference"),
        ("batch", 0, "integer ≥ 1"),
        ("batch", 2.5, "integer ≥ 1"),
        ("cache_frames", 1, "integer ≥ 2"),
        ("scene_change", "maybe", "auto | props | detect | off"),
        ("scene_threshold", -0.1, r"\(0, 1\]"),
        ("large_height", True, "integer ≥ 1"),
        ("mpv", [1, 2], "mapping"),
    ],
)
def test_bad_values_name_key_value_allowed(key, value, allowed):
    with pytest.raises(ValueError) as e:
        load_preset("balanced", **{key: value})
    msg = str(e.value)
    assert msg.startswith("vsugsp:")
    assert repr(key) in msg and repr(value) in msg
    import re

    assert re.search(allowed, msg), msg


def test_bad_files(tmp_path: Path):
    with pytest.raises(ValueError, match="does not exist"):
        load_preset(str(tmp_path / "missing.yaml"))
    f = tmp_path / "list.yaml"
    f.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="mapping"):
        load_preset(f)
    f = tmp_path / "broken.yaml"
    f.write_text("mode: [dense\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_preset(f)
    f = tmp_path / "loop.yaml"
    f.write_text(f"base: {f}\n")
    with pytest.raises(ValueError, match="circular"):
        load_preset(f)
    f = tmp_path / "evil.yaml"
    f.write_text("mode: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_preset(f)


def test_keys_documented():
    doc = Preset.__doc__
    for key in PRESET_KEYS:
        if key != "description":
            assert key in doc, key


def test_bundled_presets_are_differences_over_the_one_default():
    """balanced is Preset's defaults; the other files name only what they change."""
    import yaml

    from vsugsp.preset import Preset, preset_dir

    assert load_preset("balanced") == Preset(description=load_preset("balanced").description)
    default = Preset().to_dict()
    for path in sorted(preset_dir().glob("*.yaml")):
        raw = yaml.safe_load(path.read_text()) or {}
        validated = load_preset(path.stem).to_dict()
        same = [k for k in raw if k != "description" and validated[k] == default[k]]
        assert not same, f"{path.name} repeats default values of {same}"
