"""CUDA backend of the masked 3×3 convolution: CuPy kernels over the active pixels.

Three steps, each one kernel (``kernels/*.cu``), all on torch's current stream:

1. :func:`build_plan` compacts a B×1×H×W mask into an :class:`ActivePlan`: the
   active pixels in raster order (``pixels``, flat ``b*H*W + y*W + x``) and the
   inverse map (flat index → compact index, or -1).  One plan serves every
   convolution of a decoder level (they share the mask).
2. :func:`conv3x3_compact` runs the convolution at the active pixels only, as an
   implicit GEMM (tensor cores in fp16, fp32 FMA in fp32) with bias and PReLU
   fused.  Input: a dense tensor (every in-image neighbour is read, as in the
   reference) or compact rows P×C (inactive neighbours read as zero, as in
   training, where they were zeroed by the previous masked layer).  Output:
   compact rows P×Co, or written straight into a dense tensor.
3. :func:`scatter` / :func:`gather` move between compact rows and dense tensors.

``vsugsp.sparse.masked_conv3x3(..., backend="cuda")`` chains them with the reference semantics for one
convolution; the network's :class:`vsugsp.sparse.backends.CudaBackend` plans
each decoder level once and runs :func:`conv3x3_dense` per convolution.  Dense inputs are read
channels-last; give channels-last tensors to avoid a layout copy.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

_DTYPES = (torch.float16, torch.float32)


def _kernels() -> ModuleType:
    """``vsugsp.kernels.launch``, also from a source checkout that is not installed."""
    try:
        return importlib.import_module("vsugsp.kernels.launch")
    except ModuleNotFoundError as e:
        if e.name not in ("vsugsp.kernels", "vsugsp.kernels.launch"):
            raise
    root = Path(__file__).resolve().parents[2] / "kernels"
    init = root / "__init__.py"
    if not init.is_file():
        raise RuntimeError("vsugsp: the CUDA kernel sources (vsugsp.kernels) are not installed")
    spec = importlib.util.spec_from_file_location("vsugsp.kernels", init, submodule_search_locations=[str(root)])
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules["vsugsp.kernels"] = package
    spec.loader.exec_module(package)
    return importlib.import_module("vsugsp.kernels.launch")


def is_available() -> bool:
    """True when torch sees a CUDA device and CuPy can use it."""
    if not torch.cuda.is_available():
        return False
    try:
        _kernels().import_cupy()
    except RuntimeError:
        return False
    return True


@dataclass(frozen=True, eq=False)
class ActivePlan:
    """Active pixels of a B×1×H×W mask (see :func:`build_plan`)."""

    batch: int
    height: int
    width: int
    pixels: torch.Tensor  # (P,) int32 flat indices b*H*W + y*W + x, raster order
    inverse: torch.Tensor  # (B*H*W,) int32 compact index, -1 where inactive

    @property
    def count(self) -> int:
        """Number of active pixels P."""
        return int(self.pixels.numel())

    @property
    def density(self) -> float:
        """Active fraction of the B·H·W pixels, in [0, 1]."""
        n = self.batch * self.height * self.width
        return self.count / n if n else 0.0

    @property
    def device(self) -> torch.device:
        return self.inverse.device


def _check_cuda(t: torch.Tensor, what: str) -> None:
    if not t.is_cuda:
        raise ValueError(f"vsugsp: the cuda backend needs {what} on a CUDA device, got {t.device}")


def build_plan(mask: torch.Tensor) -> ActivePlan:
    """Compact a B×1×H×W mask (bool, or non-zero = active) into an :class:`ActivePlan`.

    Order is batch-major raster order, the order of ``torch.nonzero``.  Costs
    one host synchronisation (to learn P).
    """
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"vsugsp: mask must be B×1×H×W, got {tuple(mask.shape)}")
    _check_cuda(mask, "the mask")
    b, _, h, w = mask.shape
    n = b * h * w
    if n >= 2**31:
        raise ValueError(f"vsugsp: mask {tuple(mask.shape)} has {n} pixels; the cuda backend handles < 2**31")
    dev = mask.device
    if n == 0:
        empty = torch.empty(0, dtype=torch.int32, device=dev)
        return ActivePlan(b, h, w, empty, empty.clone())
    k = _kernels()
    m = (mask if mask.dtype == torch.bool else mask != 0).contiguous()
    threads = k.TILING["PLAN_THREADS"]
    tiles = -(-n // (threads * k.TILING["PLAN_ITEMS"]))
    counts = torch.empty(tiles, dtype=torch.int32, device=dev)
    inverse = torch.empty(n, dtype=torch.int32, device=dev)
    with k.torch_stream(_device_index(mask)):
        mc = k.as_cupy(m)
        k.launch(k.get_kernel("plan.cu", "plan_count"), (tiles,), (threads,), (mc, np.int32(n), k.as_cupy(counts)))
        inclusive = torch.cumsum(counts, 0, dtype=torch.int32)
        total = int(inclusive[-1].item())
        offsets = inclusive - counts
        pixels = torch.empty(total, dtype=torch.int32, device=dev)
        if total == 0:
            return ActivePlan(b, h, w, pixels, inverse.fill_(-1))
        k.launch(
            k.get_kernel("plan.cu", "plan_fill"),
            (tiles,),
            (threads,),
            (mc, np.int32(n), k.as_cupy(offsets), k.as_cupy(pixels), k.as_cupy(inverse)),
        )
    return ActivePlan(b, h, w, pixels, inverse)


def pack_weight(weight: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Co×C×3×3 → Co×9C, reduction index ``(3*ky + kx)*C + c`` (the kernels' layout).

    Pack once and pass the result to :func:`conv3x3_compact` to skip the repack per call.
    """
    if weight.dim() != 4 or tuple(weight.shape[2:]) != (3, 3):
        raise ValueError(f"vsugsp: weight must be Co×C×3×3, got {tuple(weight.shape)}")
    co, c = weight.shape[:2]
    return weight.permute(0, 2, 3, 1).reshape(co, 9 * c).to(dtype or weight.dtype).contiguous()


def _per_channel(v: torch.Tensor | None, co: int, what: str, device: torch.device) -> torch.Tensor | None:
    if v is None:
        return None
    v = v.reshape(-1)
    if v.numel() == 1 and co != 1:  # nn.PReLU() default: one shared slope
        v = v.expand(co)
    if v.numel() != co:
        raise ValueError(f"vsugsp: {what} has {v.numel()} values, the convolution has {co} output channels")
    return v.to(device=device, dtype=torch.float32).contiguous()


def _check_no_grad(*ts: torch.Tensor | None) -> None:
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in ts):
        raise ValueError(
            "vsugsp: the cuda masked-conv backend has no backward pass; run it under torch.no_grad() / "
            "torch.inference_mode(), or use backend='reference' for training"
        )


def _device_index(t: torch.Tensor) -> int:
    return t.device.index if t.device.index is not None else torch.cuda.current_device()


def _aligned16(*ts: torch.Tensor) -> bool:
    return all(t.data_ptr() % 16 == 0 for t in ts)


def conv3x3_compact(
    x: torch.Tensor,
    plan: ActivePlan,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    prelu: torch.Tensor | None = None,
    *,
    dense_out: torch.Tensor | None = None,
) -> torch.Tensor:
    """3×3 convolution (stride 1, padding 1) + bias + PReLU at the plan's active pixels.

    x: dense B×C×H×W (any layout; read channels-last) or compact rows P×C of
    this plan (inactive neighbours then read as zero).  fp16 or fp32.
    weight: Co×C×3×3 or packed Co×9C (:func:`pack_weight`); cast to x's dtype.
    bias, prelu: Co values (or one PReLU slope) or None; applied in fp32.
    Returns compact rows P×Co in x's dtype, or, when ``dense_out`` (a
    B×Co×H×W tensor of x's dtype, any strides) is given, writes the active
    pixels into it and returns it (other pixels are left untouched).
    Inference only: raises ValueError when autograd would need a backward pass.
    """
    if x.dtype not in _DTYPES:
        raise ValueError(f"vsugsp: the cuda backend runs float16 or float32, got x of {x.dtype}")
    _check_cuda(x, "x")
    _check_no_grad(x, weight, bias, prelu)
    b, h, w = plan.batch, plan.height, plan.width
    p = plan.count
    if x.dim() == 4:
        if x.shape[0] != b or tuple(x.shape[2:]) != (h, w):
            raise ValueError(f"vsugsp: x {tuple(x.shape)} does not match the plan's mask {b}×1×{h}×{w}")
        c = x.shape[1]
        rows = x.permute(0, 2, 3, 1).contiguous()  # no copy when x is channels-last
        compact_in = False
    elif x.dim() == 2:
        if x.shape[0] != p:
            raise ValueError(f"vsugsp: compact x has {x.shape[0]} rows, the plan has {p} active pixels")
        c = x.shape[1]
        rows = x.contiguous()
        compact_in = True
    else:
        raise ValueError(f"vsugsp: x must be B×C×H×W or compact P×C, got {tuple(x.shape)}")

    if weight.dim() == 4:
        if weight.shape[1] != c:
            raise ValueError(f"vsugsp: weight {tuple(weight.shape)} does not take {c} input channels")
        wp = pack_weight(weight, x.dtype)
    elif weight.dim() == 2 and weight.shape[1] == 9 * c:
        wp = weight.to(x.dtype).contiguous()
    else:
        raise ValueError(f"vsugsp: weight must be Co×{c}×3×3 or packed Co×{9 * c}, got {tuple(weight.shape)}")
    co = wp.shape[0]
    wp = wp.to(x.device)
    bias32 = _per_channel(bias, co, "bias", x.device)
    slope32 = _per_channel(prelu, co, "prelu", x.device)

    if dense_out is not None:
        if tuple(dense_out.shape) != (b, co, h, w) or dense_out.dtype != x.dtype or dense_out.device != x.device:
            raise ValueError(
                f"vsugsp: dense_out must be a {b}×{co}×{h}×{w} {x.dtype} tensor on {x.device}, "
                f"got {tuple(dense_out.shape)} {dense_out.dtype} on {dense_out.device}"
            )
        if dense_out.data_ptr() % 16:
            # The fused scatter stores 4/16-byte vectors; an odd view goes through compact rows.
            compact = conv3x3_compact(x, plan, wp, bias, prelu)
            _move_rows("scatter_rows", compact, dense_out, plan)
            return dense_out
        out = dense_out
        sb, sc, sy, sx = dense_out.stride()
    else:
        out = torch.empty(p, co, dtype=x.dtype, device=x.device)
        sb = sc = sy = sx = 0
    if p == 0 or co == 0:
        return out

    k = _kernels()
    t = k.TILING
    half = x.dtype == torch.float16
    vec_width = 8 if half else 4
    vec = vec_width if c % vec_width == 0 and _aligned16(rows, wp) else 1
    name = f"conv3x3_f16<{vec}>" if half else f"conv3x3_f32<{vec}>"
    threads = t["THREADS_F16"] if half else t["THREADS_F32"]
    grid = (-(-p // t["BM"]), -(-co // t["BN"]))
    with k.torch_stream(_device_index(x)):
        args = (
            k.as_cupy(rows),
            k.as_cupy(wp),
            k.as_cupy(bias32) if bias32 is not None else k.NULL,
            k.as_cupy(slope32) if slope32 is not None else k.NULL,
            k.as_cupy(plan.pixels),
            k.as_cupy(plan.inverse) if compact_in else k.NULL,
            k.as_cupy(out),
            np.int32(p),
            np.int32(c),
            np.int32(co),
            np.int32(h),
            np.int32(w),
            np.int32(dense_out is not None),
            np.int64(sb),
            np.int64(sc),
            np.int64(sy),
            np.int64(sx),
        )
        k.launch(k.get_kernel("conv3x3.cu", name), grid, (threads,), args)
    return out


def _move_rows(kind: str, rows: torch.Tensor, dense: torch.Tensor, plan: ActivePlan) -> None:
    k = _kernels()
    p, c = rows.shape
    if p == 0 or c == 0:
        return
    sb, sc, sy, sx = dense.stride()
    channel_major = int(sc > 1 and sc >= sx)  # NCHW-like: keep the dense side coalesced along x
    tname = "f16_t" if rows.dtype == torch.float16 else "float"
    threads = 256
    blocks = min(-(-(p * c) // threads), 1 << 20)
    with k.torch_stream(_device_index(rows)):
        src, dst = (rows, dense) if kind == "scatter_rows" else (dense, rows)
        args = (
            k.as_cupy(src),
            k.as_cupy(plan.pixels),
            np.int64(p),
            np.int32(c),
            np.int32(plan.height * plan.width),
            np.int32(plan.width),
            k.as_cupy(dst),
            np.int64(sb),
            np.int64(sc),
            np.int64(sy),
            np.int64(sx),
            np.int32(channel_major),
        )
        k.launch(k.get_kernel("scatter.cu", f"{kind}<{tname}>"), (blocks,), (threads,), args)


def _check_rows(rows: torch.Tensor, plan: ActivePlan) -> None:
    if rows.dim() != 2 or rows.shape[0] != plan.count:
        raise ValueError(f"vsugsp: compact rows must be {plan.count}×C, got {tuple(rows.shape)}")
    if rows.dtype not in _DTYPES:
        raise ValueError(f"vsugsp: the cuda backend runs float16 or float32, got {rows.dtype}")
    _check_cuda(rows, "the compact rows")


def scatter(
    compact: torch.Tensor, plan: ActivePlan, *, memory_format: torch.memory_format = torch.channels_last
) -> torch.Tensor:
    """Compact rows P×C → dense B×C×H×W (zeros at inactive pixels) in ``memory_format``."""
    _check_rows(compact, plan)
    rows = compact.contiguous()
    dense = torch.empty(
        (plan.batch, rows.shape[1], plan.height, plan.width),
        dtype=rows.dtype,
        device=rows.device,
        memory_format=memory_format,
    ).zero_()
    _move_rows("scatter_rows", rows, dense, plan)
    return dense


def gather(dense: torch.Tensor, plan: ActivePlan) -> torch.Tensor:
    """Dense B×C×H×W (any strides) → compact rows P×C at the plan's active pixels."""
    if dense.dim() != 4 or dense.shape[0] != plan.batch or tuple(dense.shape[2:]) != (plan.height, plan.width):
        raise ValueError(
            f"vsugsp: dense {tuple(dense.shape)} does not match the plan's mask {plan.batch}×1×{plan.height}×{plan.width}"
        )
    rows = torch.empty(plan.count, dense.shape[1], dtype=dense.dtype, device=dense.device)
    _check_rows(rows, plan)
    _move_rows("gather_rows", rows, dense, plan)
    return rows


def conv3x3_dense(
    x: torch.Tensor,
    plan: ActivePlan,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    prelu: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`conv3x3_compact` of dense ``x`` into a new zeroed B×Co×H×W tensor.

    The result has x's dtype and memory format (channels-last stays
    channels-last) and is zero where the plan's mask is off.
    """
    b, _, h, w = x.shape
    co = weight.shape[0]
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty((b, co, h, w), dtype=x.dtype, device=x.device, memory_format=fmt).zero_()
    return conv3x3_compact(x, plan, weight, bias, prelu, dense_out=out)


__all__ = [
    "ActivePlan",
    "build_plan",
    "pack_weight",
    "conv3x3_compact",
    "conv3x3_dense",
    "scatter",
    "gather",
    "is_available",
]
