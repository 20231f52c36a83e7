"""Test-set readers on tiny fixture folders in each set's own layout, and the scoring loop."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from vsugsp.eval.datasets import DATASETS, middlebury, snufilm, triplets, ucf101, vimeo90k

Image = pytest.importorskip("PIL.Image")
torch = pytest.importorskip("torch")

S = 24  # fixture frames are S×S


def png(path: Path, value: int) -> Path:
    """A flat grey S×S PNG; value identifies the frame (first, middle, last)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((S, S, 3), value, np.uint8)).save(path)
    return path


# first = 40, last = 120, true middle = 80: a blender is exact, and any mix-up of roles is not
A, MID, B = 40, 80, 120


def make_vimeo(root: Path):
    for rel in ("00001/0001", "00002/0007"):
        d = root / "sequences" / rel
        png(d / "im1.png", A), png(d / "im2.png", MID), png(d / "im3.png", B)
    (root / "tri_testlist.txt").write_text("00001/0001\n00002/0007\n\n")


def make_ucf(root: Path):
    for name in ("1", "2", "3"):
        d = root / name
        png(d / "frame_00.png", A), png(d / "frame_01_gt.png", MID), png(d / "frame_02.png", B)
        png(d / "frame_01_ours.png", 0)  # other methods' results in the same folder are ignored
    (root / "README").mkdir()


def make_snu(root: Path):
    seq = root / "test" / "GOPRO_test" / "GOPR0384_11_00"
    lines = []
    for k in (1, 21):  # non-overlapping triplets
        paths = [png(seq / f"{k + d:06d}.png", v) for d, v in ((0, A), (4, MID), (8, B))]
        # as shipped: paths start with data/SNU-FILM/… relative to the authors' repository
        lines.append(" ".join("data/SNU-FILM/" + p.relative_to(root).as_posix() for p in paths))
    for level in ("easy", "extreme"):
        (root / f"test-{level}.txt").write_text("\n".join(lines) + "\n")


def make_middlebury(root: Path):
    for name in ("Beanbags", "Walking"):
        png(root / "other-data" / name / "frame10.png", A)
        png(root / "other-data" / name / "frame11.png", B)
        png(root / "other-gt-interp" / name / "frame10i11.png", MID)
    png(root / "other-data" / "Venus" / "frame10.png", A)  # inputs without ground truth: not scored


def value(path: Path) -> int:
    return int(np.asarray(Image.open(path))[0, 0, 0])


def roles_ok(items):
    return all((value(t.frame0), value(t.gt), value(t.frame1)) == (A, MID, B) for t in items)


def test_vimeo90k_layout(tmp_path):
    make_vimeo(tmp_path)
    items = vimeo90k(tmp_path)
    assert [t.name for t in items] == ["00001/0001", "00002/0007"] and roles_ok(items)
    (tmp_path / "sequences" / "00002" / "0007" / "im3.png").unlink()
    with pytest.raises(FileNotFoundError, match="im3.png"):
        vimeo90k(tmp_path)


def test_ucf101_layout(tmp_path):
    make_ucf(tmp_path)
    items = ucf101(tmp_path)
    assert [t.name for t in items] == ["1", "2", "3"] and roles_ok(items)
    (tmp_path / "2" / "frame_02.png").unlink()
    with pytest.raises(FileNotFoundError, match="frame_02.png"):
        ucf101(tmp_path)


def test_snufilm_layout_resolves_shipped_paths(tmp_path):
    make_snu(tmp_path)
    items = snufilm(tmp_path, "extreme")
    assert len(items) == 2 and roles_ok(items)
    assert items[0].frame0 == tmp_path / "test" / "GOPRO_test" / "GOPR0384_11_00" / "000001.png"
    with pytest.raises(FileNotFoundError, match="test-hard.txt"):
        snufilm(tmp_path, "hard")
    with pytest.raises(ValueError, match="level"):
        snufilm(tmp_path, "insane")
    (tmp_path / "test-easy.txt").write_text("a.png b.png\n")
    with pytest.raises(ValueError, match="3"):
        snufilm(tmp_path, "easy")


def test_middlebury_layout(tmp_path):
    make_middlebury(tmp_path)
    items = middlebury(tmp_path)
    assert [t.name for t in items] == ["Beanbags", "Walking"] and roles_ok(items)


def test_registry_and_missing_root(tmp_path):
    assert {"vimeo90k", "ucf101", "middlebury", "snufilm-easy", "snufilm-medium", "snufilm-hard",
            "snufilm-extreme"} <= set(DATASETS)
    make_snu(tmp_path)
    assert len(triplets("snufilm-easy", tmp_path)) == 2
    with pytest.raises(FileNotFoundError, match="does not exist"):
        triplets("vimeo90k", tmp_path / "nope")
    with pytest.raises(ValueError, match="unknown dataset"):
        triplets("davis", tmp_path)


class Blender(torch.nn.Module):
    """Stands in for UGSPNet: the average of the two frames, with the same call signature."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # the interpolator reads the dtype off a parameter

    def forward(self, img0, img1, t, *, mode, backend, threshold, scale, pair_flow, **kw):
        assert img0.shape == (1, 3, S, S) and 0.0 <= float(img0.min()) and float(img0.max()) <= 1.0
        assert float(t[0]) == 0.5 and mode in ("pruned", "dense") and backend.name == "tiles"
        assert pair_flow is None
        t = t.view(-1, 1, 1, 1)
        return _Out((1 - t) * img0 + t * img1)


@dataclass
class _Out:
    image: torch.Tensor
    macs: int = 10
    dense_macs: int = 20


def _blender(mode="dense"):
    from vsugsp.interpolator import Interpolator
    from vsugsp.preset import load_preset
    from vsugsp.sparse import TileBackend

    settings = load_preset("balanced", mode=mode, flow_prior="none", device="cpu")
    return Interpolator(net=Blender(), device=torch.device("cpu"), settings=settings, backend=TileBackend(),
                        flow_prior="none", cpu_bf16=False, max_density=None)


def test_evaluate_triplets_scores_a_blender_perfectly(tmp_path):
    from vsugsp.eval.dataset_eval import evaluate_triplets

    make_middlebury(tmp_path)
    res = evaluate_triplets(_blender(), middlebury(tmp_path))
    assert res["count"] == 2 and res["psnr"] == 99.0 and res["ssim"] == pytest.approx(1.0) and res["ie"] == 0
    assert res["density"] == pytest.approx(0.5) and res["settings"]["mode"] == "dense"
    # with roles swapped (middle frame fed as frame 1, last frame as truth): (40+80)/2 vs 120
    bad = [type(t)(t.name, t.frame0, t.gt, t.frame1) for t in middlebury(tmp_path)]
    worse = evaluate_triplets(_blender(), bad, max_items=1)
    assert worse["count"] == 1 and worse["ie"] == pytest.approx(60.0) and worse["psnr"] < 25


def test_evaluate_triplets_runs_the_real_network(tmp_path):
    try:
        from vsugsp.model import ModelConfig, UGSPNet
    except ImportError as e:
        pytest.skip(f"model not available: {e}")
    from vsugsp.eval.dataset_eval import evaluate_triplets

    make_vimeo(tmp_path)
    torch.manual_seed(0)
    from vsugsp.interpolator import build_interpolator
    from vsugsp.preset import load_preset

    settings = load_preset("balanced", device="cpu", flow_prior="none", refine=["flow", "fusion", "rgb"])
    res = evaluate_triplets(build_interpolator(settings, UGSPNet(ModelConfig(width="small"))), vimeo90k(tmp_path))
    assert res["count"] == 2 and 0 < res["psnr"] <= 99 and -1 <= res["ssim"] <= 1
    assert 0 < res["macs"] <= res["dense_macs"]
    assert res["settings"]["backend"] == "tiles" and res["settings"]["mode"] == "pruned"
