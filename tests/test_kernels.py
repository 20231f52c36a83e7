"""CUDA masked-convolution kernels (kernels/*.cu, vsugsp.sparse.cuda).

CPU tests check what can be checked without a GPU: the sources are shipped and
compile (nvcc, and NVRTC through CuPy when installed), and numpy mirrors of the
kernels' index logic (compaction order, neighbour table, tile loaders, the
tensor-core fragment layout, epilogues, scatter strides) compute the right
convolution.  GPU tests (marked ``gpu``) compare the cuda backend with the
reference on a real device and are skipped without CUDA + CuPy.
"""
from __future__ import annotations

import contextlib
import importlib
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vsugsp.sparse import cuda as sparse_cuda
from vsugsp.sparse import masked_conv3x3
from vsugsp.sparse.reference import masked_conv3x3_reference

K = sparse_cuda._kernels()
T = K.TILING
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "compile_kernels.sh"


# ----------------------------------------------------------------------------- sources


def test_sources_are_shipped_and_listed():
    on_disk = sorted(p.name for p in K.KERNEL_DIR.glob("*.cu"))
    assert on_disk == sorted(K.SOURCES), "every kernels/*.cu must be compiled by launch.py and vice versa"
    names = {p.name for p in importlib.import_module("vsugsp.kernels").kernel_files()}
    assert set(K.SOURCES) | set(K.HEADERS) <= names
    cfg = (ROOT / "setup.cfg").read_text()
    shipped = re.search(r"^\s*vsugsp\.kernels\s*=\s*(.+)$", cfg.split("[options.package_data]")[1], re.M)
    assert shipped and {"*.cu", "*.cuh"} <= {g.strip() for g in shipped.group(1).split(",")}, (
        "setup.cfg package_data must ship the kernel sources"
    )


def test_load_source_inlines_headers_and_names_exist():
    for src in K.SOURCES:
        text = K.load_source(src)
        assert '#include "' not in text
        assert text.count("#define VSUGSP_BM ") == 1
        for expr in K.NAME_EXPRESSIONS[src]:
            assert f"template __global__ void {expr}(" in text, f"{expr} must be explicitly instantiated"
    with pytest.raises(ValueError, match="vsugsp: unknown kernel source"):
        K.load_source("nope.cu")


def test_tiling_constants_match_kernel_assumptions():
    assert T["BM"] == T["BN"] == 64
    assert T["THREADS_F16"] == 128 and T["BK_F16"] % 16 == 0
    assert (T["BM"] * T["BK_F16"] // 8) % T["THREADS_F16"] == 0
    assert T["THREADS_F32"] == (T["BM"] // 4) * (T["BN"] // 4) == T["BM"] * T["BK_F32"] // 4
    assert T["PLAN_THREADS"] % 32 == 0 and T["PLAN_ITEMS"] >= 1


def test_missing_cupy_gives_the_install_hint(monkeypatch):
    import sys

    monkeypatch.setattr(K, "_cupy", None)
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    with pytest.raises(RuntimeError) as e:
        K.import_cupy()
    assert str(e.value) == K.CUDA_MISSING
    assert "pip install 'vsugsp[cuda]'" in str(e.value)


def test_cpu_tensors_are_refused_with_a_clear_error():
    x = torch.zeros(1, 4, 5, 5)
    m = torch.ones(1, 1, 5, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="vsugsp: .*CUDA device"):
        sparse_cuda.build_plan(m)
    with pytest.raises(ValueError, match="vsugsp: mask must be B×1×H×W"):
        sparse_cuda.build_plan(torch.ones(1, 2, 5, 5, device="meta"))
    with pytest.raises(ValueError, match="vsugsp: the cuda backend runs float16 or float32"):
        sparse_cuda.conv3x3_compact(x.double(), None, torch.zeros(4, 4, 3, 3))  # type: ignore[arg-type]


def test_pack_weight_matches_reduction_order():
    w = torch.randn(5, 3, 3, 3)
    wp = sparse_cuda.pack_weight(w)
    assert wp.shape == (5, 27) and wp.is_contiguous()
    for co in range(5):
        for ky in range(3):
            for kx in range(3):
                for c in range(3):
                    assert wp[co, (3 * ky + kx) * 3 + c] == w[co, c, ky, kx]


# ----------------------------------------------------------------------------- compile checks


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_compile_script_compiles_every_kernel():
    r = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    for src in K.SOURCES:
        for arch in ("sm_80", "sm_90"):
            assert f"{Path(src).stem}.cu {arch} ok" in r.stdout


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_compile_script_fails_on_a_broken_kernel(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts" / SCRIPT.name)
    shutil.copytree(K.KERNEL_DIR, tmp_path / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "kernels" / "broken.cu").write_text('#include "common.cuh"\n__global__ void k(int* p) { p[0] = q; }\n')
    env = dict(os.environ, VSUGSP_ARCHS="sm_90")
    r = subprocess.run(["bash", str(tmp_path / "scripts" / SCRIPT.name)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1
    assert "broken.cu sm_90 FAILED" in r.stderr
    assert "plan.cu sm_90 ok" in r.stdout


def _nvrtc_program():
    cupy = pytest.importorskip("cupy")
    compiler = pytest.importorskip("cupy.cuda.compiler")
    if not hasattr(compiler, "_NVRTCProgram"):
        pytest.skip("this CuPy has no _NVRTCProgram")
    try:
        cupy.cuda.nvrtc.getVersion()
    except Exception as e:  # no libnvrtc
        pytest.skip(f"NVRTC not loadable: {e}")
    return compiler._NVRTCProgram


@pytest.mark.parametrize("arch", ["80", "90"])
def test_sources_compile_under_nvrtc_with_name_expressions(arch):
    """The runtime path: NVRTC (what cupy.RawModule uses) with no include paths."""
    program = _nvrtc_program()
    for src in K.SOURCES:
        exprs = K.NAME_EXPRESSIONS[src] or None
        prog = program(K.load_source(src), f"/tmp/{src}", (), (), name_expressions=exprs, method="cubin")
        binary, mapping = prog.compile(K.OPTIONS + ("-ftz=true", f"-arch=sm_{arch}", "--device-as-default-execution-space"))
        assert len(binary) > 1000
        if exprs:
            assert set(mapping) == set(exprs)


# ----------------------------------------------------------------------------- compaction mirror


def _masks():
    g = torch.Generator().manual_seed(0)
    yield "random", torch.rand(2, 1, 37, 53, generator=g) > 0.5
    yield "sparse", torch.rand(3, 1, 64, 64, generator=g) > 0.97
    yield "empty", torch.zeros(2, 1, 9, 11, dtype=torch.bool)
    yield "full", torch.ones(1, 1, 33, 31, dtype=torch.bool)
    single = torch.zeros(2, 1, 17, 19, dtype=torch.bool)
    single[1, 0, 16, 18] = True
    yield "single", single
    border = torch.zeros(1, 1, 20, 30, dtype=torch.bool)
    border[..., 0, :] = border[..., -1, :] = border[..., :, 0] = border[..., :, -1] = True
    yield "border", border
    yield "tile_edge", torch.rand(1, 1, 1, T["PLAN_THREADS"] * T["PLAN_ITEMS"] + 1, generator=g) > 0.5


@pytest.mark.parametrize("kind,mask", list(_masks()), ids=[k for k, _ in _masks()])
def test_plan_indices_follow_nonzero_order(kind, mask):
    pixels, inverse = K.plan_indices_numpy(mask.numpy())
    b, _, h, w = mask.shape
    bi, yi, xi = mask[:, 0].nonzero(as_tuple=True)
    expected = ((bi * h + yi) * w + xi).numpy()
    assert pixels.dtype == np.int32 and inverse.dtype == np.int32
    np.testing.assert_array_equal(pixels, expected)
    assert inverse.shape == (b * h * w,)
    np.testing.assert_array_equal(inverse[pixels], np.arange(len(pixels)))
    off = np.ones(b * h * w, dtype=bool)
    off[pixels] = False
    assert (inverse[off] == -1).all()


# ----------------------------------------------------------------------------- conv kernel mirror


def _neighbours(pixels, inverse, m0, H, W, compact_in):
    """build_neighbours() of conv3x3.cu."""
    BM, P = T["BM"], len(pixels)
    tap = np.arange(9)[:, None]
    p = m0 + np.arange(BM)[None, :]
    valid = p < P
    lin = pixels[np.minimum(p, max(P - 1, 0))].astype(np.int64) if P else np.zeros_like(p)
    r = lin % (H * W)
    y, x = r // W, r % W
    dy, dx = tap // 3 - 1, tap % 3 - 1
    inb = (y + dy >= 0) & (y + dy < H) & (x + dx >= 0) & (x + dx < W)
    q = np.clip(lin + dy * W + dx, 0, None)
    src = inverse[np.minimum(q, len(inverse) - 1)] if compact_in else q
    return np.where(valid & inb, src, -1)


def _load_value(rows, wp, nbr, row, k, C, K_, Co, n0):
    """A and B values one thread writes for reduction index k (zeros where absent)."""
    ok = k < K_
    tap = np.where(ok, k // C, 0)
    src = nbr[tap, row]
    a = np.where(ok & (src >= 0), rows[np.maximum(src, 0), np.where(ok, k - tap * C, 0)], 0.0)
    n = n0 + row
    b = np.where(ok & (n < Co), wp[np.minimum(n, Co - 1), np.minimum(k, K_ - 1)], 0.0)
    return a, b


def _emulate_f16(rows, wp, pixels, inverse, C, Co, H, W, compact_in, vec):
    """conv3x3_f16<vec>: loaders, m16n8k16 fragments (PTX ISA layout), epilogue."""
    BM, BN, BK, NT = T["BM"], T["BN"], T["BK_F16"], T["THREADS_F16"]
    LDS = BK + 8
    P, K_ = len(pixels), 9 * C
    out = np.full((P, Co), np.nan)
    writes = np.zeros((P, Co), dtype=int)
    lane = np.arange(32)
    g, t = lane >> 2, lane & 3
    for m0 in range(0, P, BM):
        nbr = _neighbours(pixels, inverse, m0, H, W, compact_in)
        for n0 in range(0, Co, BN):
            acc = np.zeros((4, 32, 2, 4, 4))  # warp, lane, mt, nt, d[i]
            As = np.full(BM * LDS, np.nan)  # never-written shared memory reads as NaN
            Bs = np.full(BN * LDS, np.nan)
            for kt in range(math.ceil(K_ / BK)):
                for i in range((BM * BK // 8) // NT):
                    tid = np.arange(NT) + i * NT
                    row, kc = tid // (BK // 8), (tid % (BK // 8)) * 8
                    k0 = kt * BK + kc
                    for e in range(8):
                        if vec == 8:  # one 16-byte chunk: tap and validity decided at k0
                            ok0 = k0 < K_
                            tap = np.where(ok0, k0 // C, 0)
                            src = nbr[tap, row]
                            cidx = np.where(ok0, k0 - tap * C + e, 0)
                            a = np.where(ok0 & (src >= 0), rows[np.maximum(src, 0), np.minimum(cidx, C - 1)], 0.0)
                            n = n0 + row
                            b = np.where(ok0 & (n < Co), wp[np.minimum(n, Co - 1), np.minimum(k0 + e, K_ - 1)], 0.0)
                        else:
                            a, b = _load_value(rows, wp, nbr, row, k0 + e, C, K_, Co, n0)
                        As[row * LDS + kc + e] = a
                        Bs[row * LDS + kc + e] = b
                for warp in range(4):
                    wm, wn = (warp >> 1) * 32, (warp & 1) * 32
                    for ks in range(0, BK, 16):
                        for mt in range(2):
                            pa = (wm + mt * 16 + g) * LDS + ks + 2 * t
                            a_reg = [pa, pa + 8 * LDS, pa + 8, pa + 8 * LDS + 8]  # kernel's af[mt][r]
                            A = np.full((16, 16), np.nan)
                            for i in range(8):  # PTX: a_i lives in register i//2, half i%2
                                r_doc = np.where((i < 2) | ((i >= 4) & (i < 6)), g, g + 8)
                                c_doc = 2 * t + (i & 1) + (8 if i >= 4 else 0)
                                A[r_doc, c_doc] = As[a_reg[i // 2] + (i & 1)]
                            for nt in range(4):
                                pb = (wn + nt * 8 + g) * LDS + ks + 2 * t
                                b_reg = [pb, pb + 8]
                                B = np.full((16, 8), np.nan)
                                for i in range(4):
                                    B[2 * t + (i & 1) + (8 if i >= 2 else 0), g] = Bs[b_reg[i // 2] + (i & 1)]
                                assert not np.isnan(A).any() and not np.isnan(B).any()
                                D = A @ B
                                for i in range(4):
                                    acc[warp, :, mt, nt, i] += D[g + (8 if i >= 2 else 0), 2 * t + (i & 1)]
            for warp in range(4):
                wm, wn = (warp >> 1) * 32, (warp & 1) * 32
                for mt in range(2):
                    for h in range(2):
                        m = m0 + wm + mt * 16 + g + 8 * h
                        for nt in range(4):
                            for j in range(2):
                                co = n0 + wn + nt * 8 + 2 * t + j
                                ok = (m < P) & (co < Co)
                                out[m[ok], co[ok]] = acc[warp, ok, mt, nt, 2 * h + j]
                                np.add.at(writes, (m[ok], co[ok]), 1)
    assert (writes == 1).all(), "every output element is written exactly once"
    return out


def _emulate_f32(rows, wp, pixels, inverse, C, Co, H, W, compact_in):
    """conv3x3_f32: fetch/stash (k-major shared tiles), 4x4 micro-tiles, epilogue."""
    BM, BN, BK, NT = T["BM"], T["BN"], T["BK_F32"], T["THREADS_F32"]
    LDS = BM + 4
    P, K_ = len(pixels), 9 * C
    out = np.full((P, Co), np.nan)
    writes = np.zeros((P, Co), dtype=int)
    tid = np.arange(NT)
    tx, ty = tid % 16, tid // 16
    for m0 in range(0, P, BM):
        nbr = _neighbours(pixels, inverse, m0, H, W, compact_in)
        for n0 in range(0, Co, BN):
            acc = np.zeros((NT, 4, 4))
            for kt in range(math.ceil(K_ / BK)):
                As = np.full(BK * LDS, np.nan)
                Bs = np.full(BK * LDS, np.nan)
                row, kc = tid // (BK // 4), (tid % (BK // 4)) * 4
                for e in range(4):
                    a, b = _load_value(rows, wp, nbr, row, kt * BK + kc + e, C, K_, Co, n0)
                    As[(kc + e) * LDS + row] = a
                    Bs[(kc + e) * LDS + row] = b
                for k in range(BK):
                    av = np.stack([As[k * LDS + 4 * ty + i] for i in range(4)], 1)
                    bv = np.stack([Bs[k * LDS + 4 * tx + j] for j in range(4)], 1)
                    acc += av[:, :, None] * bv[:, None, :]
            for i in range(4):
                for j in range(4):
                    m, co = m0 + 4 * ty + i, n0 + 4 * tx + j
                    ok = (m < P) & (co < Co)
                    out[m[ok], co[ok]] = acc[ok, i, j]
                    np.add.at(writes, (m[ok], co[ok]), 1)
    assert (writes == 1).all()
    return out


def _conv_case(B, C, Co, H, W, density, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, C, H, W, generator=g, dtype=torch.float64)
    w = torch.randn(Co, C, 3, 3, generator=g, dtype=torch.float64) / math.sqrt(9 * C)
    mask = torch.rand(B, 1, H, W, generator=g) < density
    return x, w, mask


@pytest.mark.parametrize(
    "half,vec,C,Co,compact_in",
    [
        (True, 8, 16, 40, False),  # cp.async path, Co < one tile
        (True, 8, 8, 72, True),  # compact input, two column tiles
        (True, 1, 5, 19, False),  # element-wise path, odd channels
        (False, 4, 8, 20, False),
        (False, 1, 3, 70, True),
    ],
)
def test_conv_kernel_index_logic_computes_the_convolution(half, vec, C, Co, compact_in):
    B, H, W = 2, 9, 11  # P ≈ 100: two row tiles, the second partial
    x, w, mask = _conv_case(B, C, Co, H, W, 0.5, seed=C * 100 + Co)
    pixels, inverse = K.plan_indices_numpy(mask.numpy())
    src = x * mask if compact_in else x
    ref = F.conv2d(src, w, padding=1).permute(0, 2, 3, 1).reshape(-1, Co).numpy()[pixels]
    dense_rows = x.permute(0, 2, 3, 1).reshape(-1, C).numpy()
    rows = dense_rows[pixels] if compact_in else dense_rows
    wp = sparse_cuda.pack_weight(w).numpy()
    if half:
        got = _emulate_f16(rows, wp, pixels, inverse, C, Co, H, W, compact_in, vec)
    else:
        got = _emulate_f32(rows, wp, pixels, inverse, C, Co, H, W, compact_in)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_scatter_index_logic_round_trips(layout):
    """DenseIndex of scatter.cu: split() covers every (p, c) once, offset() lands on (b, c, y, x)."""
    B, C, H, W = 2, 3, 5, 7
    mask = torch.rand(B, 1, H, W, generator=torch.Generator().manual_seed(1)) > 0.4
    pixels, _ = K.plan_indices_numpy(mask.numpy())
    dense = torch.zeros(B, C, H, W)
    if layout == "nhwc":
        dense = dense.contiguous(memory_format=torch.channels_last)
    sb, sc, sy, sx = dense.stride()
    channel_major = int(sc > 1 and sc >= sx)  # as vsugsp.sparse.cuda._move_rows
    assert channel_major == (layout == "nchw")
    P = len(pixels)
    i = np.arange(P * C)
    if channel_major:
        c, p = i // P, i % P
    else:
        p, c = i // C, i % C
    lin = pixels[p]
    b, r = lin // (H * W), lin % (H * W)
    y, x = r // W, r % W
    off = b * sb + c * sc + y * sy + x * sx
    rows = np.random.default_rng(0).standard_normal((P, C))
    flat = np.zeros(dense.numel())
    flat[off] = rows[p, c]
    got = torch.as_strided(torch.from_numpy(flat), dense.shape, dense.stride())
    expect = torch.zeros(B, C, H, W, dtype=torch.float64)
    bi, yi, xi = mask[:, 0].nonzero(as_tuple=True)
    expect[bi, :, yi, xi] = torch.from_numpy(rows)
    torch.testing.assert_close(got, expect)


# ----------------------------------------------------------------------------- Python glue vs .cu signatures
#
# vsugsp.sparse.cuda runs on CPU tensors with the launches executed by the numpy
# mirrors above.  Arguments are bound to the parameter *names* parsed from the
# .cu signatures, so a wrong order, count or integer width in the Python glue
# changes the result or fails an assertion.

_SIG = re.compile(r"__global__\s+void\s+(?:__launch_bounds__\(\w+\)\s*)?(\w+)\s*\(([^)]*)\)\s*\{", re.S)


def kernel_signatures() -> dict[str, list[tuple[str, str]]]:
    sigs = {}
    for src in K.SOURCES:
        for name, params in _SIG.findall(K.load_source(src)):
            parsed = []
            for prm in params.split(","):
                prm = " ".join(prm.split())
                kind = "ptr" if "*" in prm else ("i64" if "long long" in prm else "i32")
                parsed.append((re.findall(r"\w+", prm)[-1], kind))
            sigs[name] = parsed
    return sigs


def test_kernel_signatures_are_parsed():
    sigs = kernel_signatures()
    assert set(sigs) == {"plan_count", "plan_fill", "conv3x3_f16", "conv3x3_f32", "scatter_rows", "gather_rows"}
    assert [n for n, _ in sigs["conv3x3_f16"]] == [n for n, _ in sigs["conv3x3_f32"]]


def _flat_storage(t: torch.Tensor) -> torch.Tensor:
    n = t.untyped_storage().nbytes() // t.element_size() - t.storage_offset()
    return t.as_strided((n,), (1,))


def _plan_runs(mask_u8: torch.Tensor, n: int, grid, block):
    threads, items = T["PLAN_THREADS"], T["PLAN_ITEMS"]
    assert block == (threads,) and (grid[0] - 1) * threads * items < n <= grid[0] * threads * items
    padded = np.zeros(grid[0] * threads * items, dtype=bool)
    padded[:n] = mask_u8.numpy().reshape(-1)[:n] != 0
    return padded.reshape(grid[0], threads, items)


def _x_plan_count(kernel, grid, block, a):
    runs = _plan_runs(a["mask"], a["n"], grid, block)
    a["counts"].copy_(torch.from_numpy(runs.sum(axis=(1, 2)).astype(np.int32)))


def _x_plan_fill(kernel, grid, block, a):
    runs = _plan_runs(a["mask"], a["n"], grid, block)
    per_thread = runs.sum(axis=2)
    start = a["offsets"].numpy()[:, None] + np.cumsum(per_thread, axis=1) - per_thread
    index = (start[:, :, None] + np.cumsum(runs, axis=2) - runs).reshape(-1)[: a["n"]]
    active = runs.reshape(-1)[: a["n"]]
    a["inverse"].copy_(torch.from_numpy(np.where(active, index, -1).astype(np.int32)))
    a["pixels"][torch.from_numpy(index[active])] = torch.from_numpy(np.flatnonzero(active).astype(np.int32))


def _x_conv(kernel, grid, block, a):
    half = kernel.startswith("conv3x3_f16")
    vec = int(kernel[kernel.index("<") + 1 : -1])
    P, C, Co, H, W = a["P"], a["C"], a["Co"], a["H"], a["W"]
    assert grid == (-(-P // T["BM"]), -(-Co // T["BN"]))
    assert block == ((T["THREADS_F16"] if half else T["THREADS_F32"]),)
    assert a["in"].dtype == a["wp"].dtype == a["out"].dtype == (torch.float16 if half else torch.float32)
    if vec > 1:
        assert C % vec == 0
    rows = a["in"].double().numpy().reshape(-1, C)
    wp = a["wp"].double().numpy().reshape(Co, 9 * C)
    pixels = a["pixels"].numpy()
    compact_in = a["inverse"] is not None
    inverse = a["inverse"].numpy() if compact_in else np.zeros(0, dtype=np.int32)
    if half:
        acc = _emulate_f16(rows, wp, pixels, inverse, C, Co, H, W, compact_in, vec)
    else:
        acc = _emulate_f32(rows, wp, pixels, inverse, C, Co, H, W, compact_in)
    v = torch.from_numpy(acc)
    if a["bias"] is not None:
        v = v + a["bias"].double()
    if a["slope"] is not None:
        v = torch.where(v > 0, v, v * a["slope"].double())
    v = v.to(a["out"].dtype)
    if a["scatter"]:
        lin = torch.from_numpy(pixels).long()
        b, r = lin // (H * W), lin % (H * W)
        base = b * a["sb"] + (r // W) * a["sy"] + (r % W) * a["sx"]
        off = base[:, None] + torch.arange(Co)[None, :] * a["sc"]
        _flat_storage(a["out"])[off.reshape(-1)] = v.reshape(-1)
    else:
        a["out"].copy_(v)


def _x_rows(kernel, grid, block, a):
    P, C, HW, W = a["P"], a["C"], a["HW"], a["W"]
    assert grid[0] * block[0] >= P * C or grid[0] == 1 << 20
    i = torch.arange(P * C)
    p, c = (i % P, i // P) if a["channel_major"] else (i // C, i % C)
    lin = a["pixels"].long()[p]
    off = (lin // HW) * a["sb"] + c * a["sc"] + ((lin % HW) // W) * a["sy"] + (lin % W) * a["sx"]
    if kernel.startswith("scatter_rows"):
        _flat_storage(a["dense"])[off] = a["rows"].reshape(-1)[p * C + c]
    else:
        a["rows"].view(-1)[p * C + c] = _flat_storage(a["dense"])[off]


_EXECUTORS = {
    "plan_count": _x_plan_count,
    "plan_fill": _x_plan_fill,
    "conv3x3_f16": _x_conv,
    "conv3x3_f32": _x_conv,
    "scatter_rows": _x_rows,
    "gather_rows": _x_rows,
}


@pytest.fixture
def emulated(monkeypatch):
    """vsugsp.sparse.cuda on CPU tensors, every launch executed by a numpy mirror."""
    sigs = kernel_signatures()
    calls: list[str] = []
    sources = {name: src for src in K.SOURCES for name in kernel_signatures_of(src)}

    def get_kernel(source, name):
        base = name.split("<")[0]
        assert sources[base] == source
        exprs = K.NAME_EXPRESSIONS[source]
        assert name in exprs if exprs else "<" not in name
        return name

    def launch(kernel, grid, block, args):
        sig = sigs[kernel.split("<")[0]]
        assert len(args) == len(sig), f"{kernel}: {len(args)} arguments for {len(sig)} parameters"
        bound = {}
        for (pname, kind), value in zip(sig, args):
            if kind == "ptr":
                assert isinstance(value, torch.Tensor) or (type(value) is np.uint64 and value == 0), (kernel, pname)
                bound[pname] = value if isinstance(value, torch.Tensor) else None
            else:
                assert type(value) is (np.int32 if kind == "i32" else np.int64), (kernel, pname, type(value))
                bound[pname] = int(value)
        if any(g <= 0 for g in grid):
            return
        calls.append(kernel)
        _EXECUTORS[kernel.split("<")[0]](kernel, grid, block, bound)

    monkeypatch.setattr(K, "get_kernel", get_kernel)
    monkeypatch.setattr(K, "launch", launch)
    def from_dlpack(t):
        assert not t.requires_grad, "torch refuses to export tensors that require grad"
        assert t.dtype != torch.bool
        return t

    monkeypatch.setattr(K, "_from_dlpack", from_dlpack)
    monkeypatch.setattr(K, "torch_stream", lambda index: contextlib.nullcontext())
    monkeypatch.setattr(sparse_cuda, "_check_cuda", lambda t, what: None)
    monkeypatch.setattr(sparse_cuda, "_device_index", lambda t: 0)
    return calls


def kernel_signatures_of(src: str) -> list[str]:
    return [name for name, _ in _SIG.findall(K.load_source(src))]


def _ref64(x, w, b, mask, prelu):
    y = F.conv2d(x.double(), w.double(), None if b is None else b.double(), padding=1)
    if prelu is not None:
        y = F.prelu(y, prelu.double().expand(w.shape[0]).contiguous())
    return y * mask


@pytest.mark.parametrize(
    "dtype,C,layout,mask_kind,epi,kernel",
    [
        (torch.float32, 8, "nchw", "random", True, "conv3x3_f32<4>"),
        (torch.float32, 5, "nhwc", "border", False, "conv3x3_f32<1>"),
        (torch.float16, 16, "nhwc", "random", True, "conv3x3_f16<8>"),
        (torch.float16, 6, "nchw", "full", True, "conv3x3_f16<1>"),
        (torch.float32, 8, "nchw", "empty", True, None),
    ],
)
def test_glue_masked_conv_matches_reference(emulated, dtype, C, layout, mask_kind, epi, kernel):
    B, Co, H, W = 2, 20, 7, 9
    g = torch.Generator().manual_seed(C)
    x = torch.randn(B, C, H, W, generator=g).to(dtype)
    if layout == "nhwc":
        x = x.contiguous(memory_format=torch.channels_last)
    w = (torch.randn(Co, C, 3, 3, generator=g) / math.sqrt(9 * C)).to(dtype)
    b = torch.randn(Co, generator=g) if epi else None
    prelu = torch.rand(Co, generator=g) * 0.5 if epi else None
    mask = _gpu_masks(B, H, W, "cpu")[mask_kind]
    got = masked_conv3x3(x, w, b, mask, prelu=prelu, backend="cuda")
    assert got.dtype == dtype and got.shape == (B, Co, H, W)
    assert got.is_contiguous(memory_format=torch.channels_last) == (layout == "nhwc")
    ref = _ref64(x, w, b, mask, prelu)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(got.double(), ref, **tol)
    plan_kernels = ["plan_count", "plan_fill"] if mask.any() else ["plan_count"]
    assert emulated == plan_kernels + ([kernel] if kernel else [])


def test_glue_compact_chain_scatter_gather(emulated):
    B, C, Co1, Co2, H, W = 1, 8, 12, 9, 8, 10
    g = torch.Generator().manual_seed(7)
    x = torch.randn(B, C, H, W, generator=g)
    w1 = torch.randn(Co1, C, 3, 3, generator=g) / 8
    w2 = torch.randn(Co2, Co1, 3, 3, generator=g) / 10
    mask = torch.rand(B, 1, H, W, generator=g) < 0.5
    plan = sparse_cuda.build_plan(mask)
    assert plan.count == int(mask.sum()) and plan.density == pytest.approx(mask.float().mean().item())
    h = sparse_cuda.conv3x3_compact(x, plan, w1, None, torch.tensor([0.2]))
    y = sparse_cuda.conv3x3_compact(h, plan, sparse_cuda.pack_weight(w2))
    dense = sparse_cuda.scatter(y, plan)
    ref = _ref64(_ref64(x, w1, None, mask, torch.tensor([0.2])), w2, None, mask, None)
    torch.testing.assert_close(dense.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sparse_cuda.gather(dense, plan), y)
    torch.testing.assert_close(sparse_cuda.gather(dense.contiguous(), plan), y)
    nchw = sparse_cuda.scatter(y, plan, memory_format=torch.contiguous_format)
    assert nchw.is_contiguous()
    torch.testing.assert_close(nchw, dense)
    assert emulated.count("conv3x3_f32<4>") == 2 and "scatter_rows<float>" in emulated


def test_glue_misaligned_dense_out_takes_the_unfused_path(emulated):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 6, 7, generator=g)
    w = torch.randn(8, 4, 3, 3, generator=g) / 6
    mask = torch.rand(1, 1, 6, 7, generator=g) < 0.5
    storage = torch.full((1 + 8 * 6 * 7,), 7.0)
    odd = storage[1:].view(1, 8, 6, 7)  # 4-byte offset: not 16-byte aligned
    plan = sparse_cuda.build_plan(mask)
    sparse_cuda.conv3x3_compact(x, plan, w, dense_out=odd)
    ref = _ref64(x, w, None, mask, None)
    keep = mask.expand_as(odd)
    torch.testing.assert_close(odd[keep].double(), ref[keep], rtol=1e-5, atol=1e-5)
    assert (odd[~keep] == 7.0).all(), "pixels outside the mask are left untouched"
    assert storage[0] == 7.0
    assert emulated[-2:] == ["conv3x3_f32<4>", "scatter_rows<float>"]


def test_glue_accepts_parameters_under_no_grad_and_refuses_autograd(emulated):
    conv = torch.nn.Conv2d(4, 6, 3, padding=1)
    act = torch.nn.PReLU(6)
    x = torch.randn(1, 4, 5, 6)
    mask = torch.rand(1, 1, 5, 6, generator=torch.Generator().manual_seed(0)) < 0.5
    with torch.no_grad():
        got = masked_conv3x3(x, conv.weight, conv.bias, mask, prelu=act.weight, backend="cuda")
        ref = act(conv(x)) * mask
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="vsugsp: the cuda masked-conv backend has no backward pass"):
        masked_conv3x3(x, conv.weight, conv.bias, mask, prelu=act.weight, backend="cuda")


def test_glue_empty_and_full_plans(emulated):
    empty = sparse_cuda.build_plan(torch.zeros(2, 1, 3, 5, dtype=torch.bool))
    assert empty.count == 0 and empty.density == 0.0
    assert empty.inverse.shape == (30,) and (empty.inverse == -1).all()
    full = sparse_cuda.build_plan(torch.ones(2, 1, 3, 5))  # float mask: non-zero is active
    assert full.count == 30 and full.density == 1.0
    torch.testing.assert_close(full.pixels, torch.arange(30, dtype=torch.int32))
    torch.testing.assert_close(full.inverse, torch.arange(30, dtype=torch.int32))
    rows = sparse_cuda.conv3x3_compact(torch.zeros(0, 4), empty, torch.zeros(6, 4, 3, 3))
    assert rows.shape == (0, 6)


def test_glue_rejects_mismatched_inputs(emulated):
    mask = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    plan = sparse_cuda.build_plan(mask)
    with pytest.raises(ValueError, match="vsugsp: x .* does not match the plan"):
        sparse_cuda.conv3x3_compact(torch.zeros(1, 3, 5, 4), plan, torch.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match="vsugsp: compact x has 3 rows"):
        sparse_cuda.conv3x3_compact(torch.zeros(3, 3), plan, torch.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match="vsugsp: weight"):
        sparse_cuda.conv3x3_compact(torch.zeros(1, 3, 4, 4), plan, torch.zeros(2, 4, 3, 3))
    with pytest.raises(ValueError, match="vsugsp: prelu has 3 values"):
        sparse_cuda.conv3x3_compact(torch.zeros(1, 3, 4, 4), plan, torch.zeros(2, 3, 3, 3), None, torch.ones(3))
    with pytest.raises(ValueError, match="vsugsp: dense_out must be"):
        sparse_cuda.conv3x3_compact(torch.zeros(1, 3, 4, 4), plan, torch.zeros(2, 3, 3, 3), dense_out=torch.zeros(1, 3, 4, 4))


# ----------------------------------------------------------------------------- GPU


def _gpu_ready() -> bool:
    try:
        return sparse_cuda.is_available()
    except Exception:
        return False


needs_gpu = pytest.mark.skipif(not _gpu_ready(), reason="needs CUDA and CuPy")


def _gpu_masks(B, H, W, device):
    g = torch.Generator(device="cpu").manual_seed(3)
    border = torch.zeros(B, 1, H, W, dtype=torch.bool)
    border[..., 0, :] = border[..., -1, :] = border[..., :, 0] = border[..., :, -1] = True
    single = torch.zeros(B, 1, H, W, dtype=torch.bool)
    single[-1, 0, H // 2, W - 1] = True
    masks = {
        "random": torch.rand(B, 1, H, W, generator=g) < 0.4,
        "empty": torch.zeros(B, 1, H, W, dtype=torch.bool),
        "full": torch.ones(B, 1, H, W, dtype=torch.bool),
        "single": single,
        "border": border,
    }
    return {k: v.to(device) for k, v in masks.items()}


def _reference(x, w, b, mask, prelu):
    prev = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # an exact fp32 reference
    try:
        return masked_conv3x3_reference(x.float(), w.float(), None if b is None else b.float(), mask,
                                        None if prelu is None else prelu.float())
    finally:
        torch.backends.cudnn.allow_tf32 = prev


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("B,C,Co,H,W", [(2, 48, 48, 31, 45), (1, 13, 70, 17, 23), (3, 8, 130, 9, 64)])
@pytest.mark.parametrize("mask_kind", ["random", "empty", "full", "single", "border"])
@pytest.mark.parametrize("epilogue", ["bias_prelu", "plain"])
def test_cuda_matches_reference(dtype, B, C, Co, H, W, mask_kind, epilogue):
    dev = torch.device("cuda")
    g = torch.Generator(device="cpu").manual_seed(B * 1000 + C)
    x = torch.randn(B, C, H, W, generator=g).to(dev, dtype)
    w = (torch.randn(Co, C, 3, 3, generator=g) / math.sqrt(9 * C)).to(dev, dtype)
    b = torch.randn(Co, generator=g).to(dev, dtype) if epilogue == "bias_prelu" else None
    prelu = (torch.rand(Co, generator=g) * 0.5).to(dev, dtype) if epilogue == "bias_prelu" else None
    mask = _gpu_masks(B, H, W, dev)[mask_kind]
    got = masked_conv3x3(x, w, b, mask, prelu=prelu, backend="cuda")
    assert got.dtype == dtype and got.shape == (B, Co, H, W)
    ref = _reference(x, w, b, mask, prelu)
    torch.testing.assert_close(got.float(), ref, **_tol(dtype))
    assert (got[~mask.expand_as(got)] == 0).all()


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_channels_last_in_and_out(dtype):
    dev = torch.device("cuda")
    x = torch.randn(2, 24, 19, 21, device=dev, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(32, 24, 3, 3, device=dev, dtype=dtype) / 15
    mask = torch.rand(2, 1, 19, 21, device=dev) < 0.6
    got = masked_conv3x3(x, w, None, mask, backend="cuda")
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got.float(), _reference(x, w, None, mask, None), **_tol(dtype))
    nchw = masked_conv3x3(x.contiguous(), w, None, mask, backend="cuda")
    assert nchw.is_contiguous()
    torch.testing.assert_close(nchw, got)


@pytest.mark.gpu
@needs_gpu
def test_plan_on_gpu_matches_numpy_mirror():
    for kind, mask in _masks():
        plan = sparse_cuda.build_plan(mask.cuda())
        pixels, inverse = K.plan_indices_numpy(mask.numpy())
        np.testing.assert_array_equal(plan.pixels.cpu().numpy(), pixels, err_msg=kind)
        np.testing.assert_array_equal(plan.inverse.cpu().numpy(), inverse, err_msg=kind)
        assert plan.count == int(mask.sum())


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_compact_chain_equals_masked_reference_chain(dtype):
    """Two convs sharing one plan, the second reading compact rows (inactive neighbours = 0)."""
    dev = torch.device("cuda")
    x = torch.randn(2, 16, 23, 29, device=dev, dtype=dtype)
    w1 = torch.randn(24, 16, 3, 3, device=dev, dtype=dtype) / 12
    w2 = torch.randn(20, 24, 3, 3, device=dev, dtype=dtype) / 15
    b1, b2 = torch.randn(24, device=dev), torch.randn(20, device=dev)
    s1 = torch.full((1,), 0.25, device=dev)  # a single shared PReLU slope
    mask = torch.rand(2, 1, 23, 29, device=dev) < 0.5
    plan = sparse_cuda.build_plan(mask)
    h = sparse_cuda.conv3x3_compact(x, plan, w1, b1, s1)
    assert h.shape == (plan.count, 24)
    y = sparse_cuda.conv3x3_compact(h, plan, sparse_cuda.pack_weight(w2, dtype), b2)
    dense = sparse_cuda.scatter(y, plan)
    r1 = _reference(x, w1, b1, mask, s1.expand(24))
    r2 = _reference(r1, w2, b2, mask, None)
    torch.testing.assert_close(dense.float(), r2, **_tol(dtype))
    torch.testing.assert_close(sparse_cuda.gather(dense, plan), y)
    torch.testing.assert_close(sparse_cuda.gather(dense.contiguous(), plan), y)


@pytest.mark.gpu
@needs_gpu
def test_non_default_stream_and_odd_output_view():
    dev = torch.device("cuda")
    x = torch.randn(1, 32, 40, 50, device=dev, dtype=torch.float16)
    w = torch.randn(48, 32, 3, 3, device=dev, dtype=torch.float16) / 17
    mask = torch.rand(1, 1, 40, 50, device=dev) < 0.3
    ref = _reference(x, w, None, mask, None)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        got = masked_conv3x3(x, w, None, mask, backend="cuda")
        storage = torch.zeros(1 + 48 * 40 * 50, device=dev, dtype=torch.float16)
        odd = storage[1:].view(1, 48, 40, 50)  # 2-byte aligned: takes the unfused path
        plan = sparse_cuda.build_plan(mask)
        sparse_cuda.conv3x3_compact(x, plan, w, dense_out=odd)
    torch.cuda.current_stream().wait_stream(side)
    torch.testing.assert_close(got.float(), ref, **_tol(torch.float16))
    torch.testing.assert_close(odd, got)


@pytest.mark.gpu
@needs_gpu
def test_dispatcher_uses_the_cuda_backend():
    from vsugsp.sparse import masked_conv3x3

    dev = torch.device("cuda")
    x = torch.randn(1, 8, 12, 12, device=dev)
    w = torch.randn(8, 8, 3, 3, device=dev) / 9
    mask = torch.rand(1, 1, 12, 12, device=dev) < 0.5
    got = masked_conv3x3(x, w, None, mask, backend="cuda")
    torch.testing.assert_close(got, _reference(x, w, None, mask, None), rtol=1e-4, atol=1e-4)


def test_benchmark_layer_rows_on_emulated_kernels(emulated, monkeypatch):
    """benchmarks/bench_kernels.py's per-layer code, every backend in one run (timing stubbed: the GPU run is not a test)."""
    import argparse

    from script_modules import load_script

    bench = load_script("benchmarks/bench_kernels.py")
    monkeypatch.setattr(bench, "time_ms", lambda fn, warmup, iters, repeats, dev=None: (fn(), 2.0)[1])
    args = argparse.Namespace(batch=1, mask="blobs", warmup=0, iters=1, repeats=1)
    rows = bench.bench_layer("tiny", 6, 9, 8, 12, torch.float32, [1.0, 0.5], args, torch.Generator().manual_seed(0),
                             torch.device("cpu"), backends=("reference", "tiles", "cuda"))
    assert [(r["density"], r["backend"]) for r in rows] == [
        (d, b) for d in (1.0, 0.5) for b in ("reference", "tiles", "cuda", "best")]
    for r in rows:
        if r["backend"] != "best":
            assert r["max_abs_err"] < 1e-4 and r["active_pixels"] == round(54 * r["density"])
        assert r["speedup"] == 1.0 and r["efficiency"] == pytest.approx(r["density"])
    assert {r["executed_pixels"] for r in rows if r["backend"] == "cuda"} == {54, 27}
    assert [r["best"] for r in rows if r["backend"] == "best"] == ["reference", "reference"]  # ties: the first
    assert bench.backends_for(torch.device("cpu")) == ["reference", "tiles"]
