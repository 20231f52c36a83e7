"""Masked-conv backends as objects: plans, whole blocks, the CUDA self-check and its fallback."""
import ast
import inspect
import logging

import pytest
import torch

from vsugsp.sparse import backends
from vsugsp.sparse.backends import (
    CudaBackend,
    ReferenceBackend,
    TileBackend,
    checked,
    get_backend,
    resolve_backend,
    self_check,
)

CPU = torch.device("cpu")


class _WrongValues(TileBackend):
    """Off by a little, everywhere the mask is on: a kernel with an indexing slip."""

    name = "wrong"

    def conv(self, x, plan, weight, bias, prelu):
        y = super().conv(x, plan, weight, bias, prelu)
        return y + 0.05 * (y != 0)


class _Leaks(TileBackend):
    """Writes where the mask is off."""

    name = "leaky"

    def conv(self, x, plan, weight, bias, prelu):
        return super().conv(x, plan, weight, bias, prelu) + 1e-3


class _DoesNotCompile(TileBackend):
    name = "broken"

    def plan(self, mask):
        raise RuntimeError("nvrtc: error: identifier 'half2' is undefined (injected)")


@pytest.fixture(autouse=True)
def _fresh_check_cache(monkeypatch):
    monkeypatch.setattr(backends, "_checked", {})


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_tile_backend_passes_the_self_check(dtype):
    assert self_check(TileBackend(), CPU, (dtype,)) is None
    assert self_check(TileBackend(4, dense_fallback=float("inf")), CPU, (dtype,)) is None
    assert self_check(ReferenceBackend(), CPU, (dtype,)) is None


@pytest.mark.parametrize("bad, words", [(_WrongValues(), "max error"), (_Leaks(), "where the mask is off"),
                                        (_DoesNotCompile(), "injected")])
def test_the_self_check_catches_wrong_kernels(bad, words):
    problem = self_check(bad, CPU, (torch.float32,))
    assert problem is not None and words in problem


def test_a_failing_candidate_falls_back_once_with_one_warning(caplog):
    fallback = TileBackend()
    with caplog.at_level(logging.WARNING, logger="vsugsp.sparse.backends"):
        assert checked(_DoesNotCompile(), fallback, CPU) is fallback
        assert checked(_DoesNotCompile(), fallback, CPU) is fallback
    warnings = [r for r in caplog.records if "self-check" in r.getMessage()]
    assert len(warnings) == 1 and "injected" in warnings[0].getMessage()
    good = TileBackend(8)
    assert checked(good, fallback, CPU) is good


def test_auto_on_cuda_without_a_working_kernel_runs_the_torch_paths(monkeypatch, caplog):
    # CuPy "installed" but nothing can run (here: no GPU at all): the self-check fails
    # and auto keeps to the torch paths (tiles where they pass their own check, and the
    # dense reference) instead of shipping unchecked kernels.
    from vsugsp.sparse import cuda as sparse_cuda

    monkeypatch.setattr(sparse_cuda, "is_available", lambda: True)
    if torch.cuda.is_available():  # a real GPU: inject the failure into the kernel itself
        monkeypatch.setattr(sparse_cuda, "conv3x3_compact",
                            lambda *a, **k: (_ for _ in ()).throw(RuntimeError("injected kernel failure")))
    cuda = torch.device("cuda")
    with caplog.at_level(logging.WARNING, logger="vsugsp.sparse.backends"):
        chosen = resolve_backend("auto", cuda, "pruned")
    names = [c.name for c in getattr(chosen, "candidates", [chosen])]
    assert "cuda" not in names and names[-1] == "reference"
    if torch.cuda.is_available():  # the tile path runs there (gather → cuDNN → scatter) and passed
        assert names == ["tiles", "reference"]
    assert any("failed its self-check" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="backend='cuda' failed its self-check"):
        resolve_backend("cuda", cuda, "pruned")


def test_resolution_and_names(monkeypatch):
    from vsugsp.sparse import cuda as sparse_cuda

    assert isinstance(resolve_backend("auto", CPU), TileBackend)
    assert isinstance(resolve_backend("cpu", CPU), TileBackend)  # the tile backend's older name
    assert isinstance(resolve_backend("tiles", CPU), TileBackend)
    assert isinstance(resolve_backend("reference", CPU), ReferenceBackend)
    mine = TileBackend(4)
    assert resolve_backend(mine, CPU) is mine and get_backend(mine) is mine
    with pytest.raises(ValueError, match="needs device='cuda'"):
        resolve_backend("cuda", CPU)
    monkeypatch.setattr(sparse_cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="needs CuPy"):
        resolve_backend("cuda", torch.device("cuda"))
    with pytest.raises(ValueError, match="unknown masked-conv backend 'tpu'"):
        get_backend("tpu")
    with pytest.raises(ValueError, match="tile=0"):
        TileBackend(0)
    assert TileBackend().tile == 16 and ReferenceBackend().tile is None and CudaBackend().tile is None


@torch.no_grad()
def test_every_backend_runs_a_whole_block_as_the_reference():
    from vsugsp.model.blocks import DecoderBlock

    torch.manual_seed(0)
    blk = DecoderBlock(10, 12, 2, 9).eval()
    x = torch.randn(2, 10, 40, 52)
    mask = torch.rand(2, 1, 40, 52) < 0.3
    mask[1] = False  # an image with nothing to compute
    want, n_ref = blk.forward_pruned(x, mask, ReferenceBackend())
    assert n_ref == int(mask.sum())
    for be in (TileBackend(), TileBackend(4), TileBackend(8, dense_fallback=float("inf"))):
        got, n = blk.forward_pruned(x, mask, be)
        assert torch.allclose(got, want, atol=1e-5), be
        assert n >= int(mask.sum()) and n % (be.tile * be.tile) == 0 or n == mask.numel()
        assert torch.equal(got[1], torch.zeros_like(got[1]))


def test_the_tile_path_uses_only_device_agnostic_torch_ops():
    # It is the CUDA fallback: nothing in it may pull tensors to the host or build them
    # on the CPU (it runs CUDA tensors in production though no test here can).
    from vsugsp.sparse import tiles

    sources = [inspect.getsource(tiles), inspect.getsource(TileBackend), inspect.getsource(backends._DensePlan)]
    for src in sources:
        tree = ast.parse(src)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("cpu", "numpy", "tolist", "item"), node.attr
            if isinstance(node, ast.Name):
                assert node.id not in ("np", "numpy"), node.id
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value != "cpu", "a hard-coded CPU device"
            if isinstance(node, ast.keyword) and node.arg == "device":
                # tensors are made on the device of the data they go with
                assert "device" in ast.unparse(node.value), ast.unparse(node)


def test_the_preset_key_accepts_exactly_the_backend_names():
    from vsugsp.preset import BACKENDS, load_preset

    assert BACKENDS == ("auto", *backends.BACKEND_NAMES)
    assert load_preset("balanced", backend="tiles").backend == "tiles"
    with pytest.raises(ValueError, match="backend"):
        load_preset("balanced", backend="tpu")
