"""Packaging and suite hygiene: setup.cfg lists every installed data folder; tests do not print past capture."""
from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    return cfg


def _lines(text: str) -> list[str]:
    return [x.strip() for x in text.splitlines() if x.strip() and not x.strip().startswith("#")]


def test_every_folder_with_package_data_is_a_listed_package():
    """setuptools warns "Package 'X' is absent from the `packages` configuration" for each one that is not."""
    cfg = _setup_cfg()
    packages = set(_lines(cfg["options"]["packages"]))
    mapped = dict(
        (k.strip(), v.strip()) for k, _, v in (line.partition("=") for line in _lines(cfg["options"]["package_dir"]))
    )
    data = {k: [p.strip() for p in v.split(",")] for k, v in cfg["options.package_data"].items()}
    for pkg in packages:
        folder = ROOT / mapped.get(pkg, pkg.replace(".", "/"))
        for sub in folder.rglob("*"):
            if not sub.is_dir() or sub.name == "__pycache__" or not any(f.is_file() for f in sub.iterdir()):
                continue
            name = pkg + "." + ".".join(sub.relative_to(folder).parts)
            assert name in packages, f"{sub} holds files but {name} is not in setup.cfg's packages"
    for pkg, patterns in data.items():
        assert all("/" not in p for p in patterns), f"package_data of {pkg} reaches into a sub-folder: {patterns}"


def test_no_test_prints_past_the_capture():
    """Output from inside capsys/capfd.disabled() lands in pytest's progress line."""
    offenders = [p.name for p in (ROOT / "tests").glob("*.py")
                 if re.search(r"\bcap(sys|fd)\.disabled\(", p.read_text(encoding="utf-8"))
                 and p.name != Path(__file__).name]
    assert not offenders, offenders
