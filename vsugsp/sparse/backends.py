"""Masked-conv backends as objects: each plans a decoder level's mask once and runs a whole block on it.

The network only decides *which* pixels to compute (its masks); a backend decides
*how*.  A pruned decoder block is a head 3×3 conv, ``body`` 3×3 convs (all on the
same mask, PReLU after each) and a 1×1 fuse of their concatenated outputs, so a
backend is asked for one :meth:`MaskedBackend.plan` per mask and one
:meth:`MaskedBackend.run_block` per block (gather → dense compute → scatter, as in
DynConv and SBNet).  Every backend gives the reference result: where the mask is
off, the 3×3 outputs are zero.

- :class:`ReferenceBackend`: dense convolutions times the mask (training, tests);
- :class:`TileBackend`: the active T×T tiles only, plain torch ops, so it runs on
  any device (the CPU default, and the CUDA fallback);
- :class:`CudaBackend`: the CuPy kernels over the active pixels (:mod:`.cuda`),
  one plan (one host sync) per decoder level.

:func:`get_backend` maps a name to an instance; :func:`resolve_backend` is the one
place that picks a backend for a device, and on CUDA it uses the CuPy kernels only
after :func:`self_check` has compared them with the reference on that device.
"""
from __future__ import annotations

import logging
import statistics
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .reference import masked_conv3x3_reference
from .tiles import TILE, TilePlan, conv_tiles, padded_to_dense, scatter, tile_plan, to_padded

__all__ = [
    "ConvWeights", "BlockWeights", "MaskedBackend", "ReferenceBackend", "TileBackend", "CudaBackend", "BACKEND_NAMES",
    "FastestBackend", "get_backend", "resolve_backend", "self_check", "checked",
]

log = logging.getLogger(__name__)

#: Names a user may give (``backend`` preset key); "cpu" is the tile backend's older name.
BACKEND_NAMES = ("reference", "tiles", "cpu", "cuda")

#: When the active tiles would compute more than this share of the frame's pixels, the
#: tile backend runs the block densely (same result, less overhead).  Tiles count whole,
#: padding past the frame edge included: on small frames a few tiles can cover more
#: pixels than the frame has.
DENSE_FALLBACK = 0.9


def join_parts(x: "torch.Tensor | Sequence[Any]") -> torch.Tensor:
    """A block input given as channel parts (tensors, or lazy parts with ``dense()``, e.g.
    :class:`vsugsp.model.warp.Warp`) as one B×C×H×W tensor; a tensor passes through."""
    if isinstance(x, torch.Tensor):
        return x
    return torch.cat([p if isinstance(p, torch.Tensor) else p.dense() for p in x], 1)


@dataclass(frozen=True)
class ConvWeights:
    """One 3×3 conv of a masked block: weight Co×Ci×3×3, bias Co or None, PReLU slopes Co or None."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    prelu: torch.Tensor | None


@dataclass(frozen=True)
class BlockWeights:
    """What a backend runs for a pruned block: its 3×3 convs in order, each reading the previous
    one's output, and the 1×1 fuse (weight Cout×ΣCo×1×1, bias Cout or None) of their concatenation.

    The model hands these over (``DecoderBlock.weights``), so backends need no model class.
    """

    convs: tuple[ConvWeights, ...]
    fuse_weight: torch.Tensor
    fuse_bias: torch.Tensor | None

    @property
    def out_channels(self) -> int:
        """Channels of the block's output (the fuse's)."""
        return self.fuse_weight.shape[0]

    def fuse(self, h: torch.Tensor) -> torch.Tensor:
        """The 1×1 fuse on the concatenated conv outputs ``h``."""
        return F.conv2d(h, self.fuse_weight, self.fuse_bias)


class MaskedBackend(ABC):
    """How a pruned decoder block is computed on a B×1×H×W bool mask."""

    #: the name :func:`get_backend` knows it by
    name: str = ""
    #: side of the tiles it computes whole (masks are widened to them), None: per pixel
    tile: int | None = None

    @abstractmethod
    def plan(self, mask: torch.Tensor) -> Any:
        """What :meth:`run_block` needs to know of ``mask`` (computed once per decoder level)."""

    @abstractmethod
    def executed_pixels(self, plan: Any) -> "int | torch.Tensor":
        """Output pixels the backend computes for ``plan`` (per conv of the block).

        An int where the plan knows it on the host, else a 0-dim int64 tensor on the
        mask's device (counting it on the host would sync with the device).
        """

    @abstractmethod
    def conv(self, x: torch.Tensor, plan: Any, weight: torch.Tensor, bias: torch.Tensor | None,
             prelu: torch.Tensor | None) -> torch.Tensor:
        """One masked 3×3 conv (+ bias, PReLU) → dense B×Co×H×W, zero where the mask is off."""

    def run_block(self, block: BlockWeights, x: "torch.Tensor | Sequence[torch.Tensor]", plan: Any) -> torch.Tensor:
        """The block's 3×3 convs on ``plan`` and its 1×1 fuse → B×Cout×H×W.

        ``x``: the block's input, or its channel parts: tensors, or parts evaluated
        where they are read (:class:`vsugsp.model.warp.Warp`); concatenated here, while a
        backend that reads only some pixels reads the parts there.
        """
        x = join_parts(x)
        outs = []
        for c in block.convs:
            x = self.conv(x, plan, c.weight, c.bias, c.prelu)
            outs.append(x)
        return block.fuse(torch.cat(outs, 1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReferenceBackend(MaskedBackend):
    """Dense convolution times the mask: the definition the others reproduce."""

    name = "reference"

    def plan(self, mask: torch.Tensor) -> torch.Tensor:
        return mask

    def executed_pixels(self, plan: torch.Tensor) -> torch.Tensor:
        return plan.count_nonzero()  # on the mask's device: no host sync

    def conv(self, x, plan, weight, bias, prelu):
        return masked_conv3x3_reference(x, weight, bias, plan, prelu)


class _DensePlan:
    """A tile plan that covers (nearly) everything: the block runs densely."""

    __slots__ = ("mask",)

    def __init__(self, mask: torch.Tensor) -> None:
        self.mask = mask


class TileBackend(MaskedBackend):
    """Active T×T tiles gathered with a halo, one dense conv over them, scattered back.

    Device-agnostic torch ops only (no host arrays), so the same code runs CUDA tensors.
    tile: tile side in pixels of each level's own resolution, ≥ 1.
    dense_fallback: above this share of the frame's pixels in active tiles the
    block runs densely (same result); ``inf``: always tiles.
    """

    name = "tiles"

    def __init__(self, tile: int = TILE, dense_fallback: float = DENSE_FALLBACK) -> None:
        if not isinstance(tile, int) or isinstance(tile, bool) or tile < 1:
            raise ValueError(f"vsugsp: tile={tile!r}; must be an int ≥ 1")
        self.tile = tile
        self.dense_fallback = float(dense_fallback)

    def plan(self, mask: torch.Tensor) -> "TilePlan | _DensePlan":
        plan = tile_plan(mask, self.tile)
        if plan.executed_pixels <= self.dense_fallback * mask.numel():
            return plan
        return _DensePlan(mask)

    def executed_pixels(self, plan) -> int:
        if isinstance(plan, _DensePlan):
            return plan.mask.numel()
        return plan.executed_pixels

    def conv(self, x, plan, weight, bias, prelu):
        if isinstance(plan, _DensePlan):
            return masked_conv3x3_reference(x, weight, bias, plan.mask, prelu)
        y = conv_tiles(to_padded(x, plan), plan, weight, bias, prelu)
        return padded_to_dense(scatter(y, plan), plan).contiguous()

    def run_block(self, block, x, plan):
        if isinstance(plan, _DensePlan):
            return super().run_block(block, x, plan)
        if plan.count == 0:
            first = x if isinstance(x, torch.Tensor) else x[0]
            b, _, h, w = first.shape
            return first.new_zeros(b, block.out_channels, h, w)
        buf = to_padded(x, plan)  # the parts go straight into padded rows
        body_buf = None  # one zeroed buffer for every body layer: the active tiles are the same
        outs = []
        for i, c in enumerate(block.convs):
            if i:
                buf = body_buf = scatter(outs[-1], plan, out=body_buf)
            outs.append(conv_tiles(buf, plan, c.weight, c.bias, c.prelu))
        fused = block.fuse(torch.cat(outs, 1))
        return padded_to_dense(scatter(fused, plan, pad=0), plan, pad=0)

    def __repr__(self) -> str:
        return f"TileBackend(tile={self.tile})"


class CudaBackend(MaskedBackend):
    """The CuPy kernels (:mod:`vsugsp.sparse.cuda`): one active-pixel plan per decoder level."""

    name = "cuda"

    def plan(self, mask: torch.Tensor):
        from .cuda import build_plan

        return build_plan(mask)

    def executed_pixels(self, plan) -> int:
        return plan.count

    def conv(self, x, plan, weight, bias, prelu):
        from .cuda import conv3x3_dense

        return conv3x3_dense(x, plan, weight, bias, prelu)


class _Trial:
    """A plan whose level has no chosen backend yet: the first block run on it times the candidates."""

    __slots__ = ("key", "mask", "chosen", "plan")

    def __init__(self, key: tuple, mask: torch.Tensor) -> None:
        self.key, self.mask = key, mask
        self.chosen: MaskedBackend | None = None
        self.plan: Any = None


class _Chosen:
    """A plan of the backend chosen for its level."""

    __slots__ = ("backend", "plan")

    def __init__(self, backend: MaskedBackend, plan: Any) -> None:
        self.backend, self.plan = backend, plan


class FastestBackend(MaskedBackend):
    """Per decoder level, the fastest of several backends, timed on the level's first block.

    A level is known by its mask's device and B×H×W (one pruned block per level).  The
    first :meth:`run_block` (or :meth:`conv`) on a level runs each candidate once untimed
    (kernel compiles, allocator), then ``trials`` times timed (plan + block, ``sync``
    before each clock read), keeps the fastest (median) for the level and returns its
    result; later plans go straight to the chosen backend.  Candidates must give the
    reference's results (self-checked); the reference itself (a dense conv times the mask:
    cuDNN's speed) may be one, so no level runs slower than dense.  Its work counts as
    dense in :meth:`executed_pixels`.

    candidates: the backends, ≥ 1; sync: waits for queued device work (CUDA:
    ``torch.cuda.synchronize``); clock: seconds (injectable for tests).
    """

    name = "fastest"

    def __init__(self, candidates: Sequence[MaskedBackend], *, trials: int = 2,
                 sync: "Any" = None, clock: "Any" = time.perf_counter) -> None:
        if not candidates:
            raise ValueError("vsugsp: FastestBackend needs at least one candidate backend")
        if trials < 1:
            raise ValueError(f"vsugsp: trials={trials!r}; must be ≥ 1")
        self.candidates = tuple(candidates)
        self.trials = trials
        self.sync = sync or (lambda: None)
        self.clock = clock
        self.chosen: dict[tuple, MaskedBackend] = {}  # level key → backend
        self.timings: dict[tuple, dict[str, float]] = {}  # level key → median ms per candidate name
        self._lock = threading.Lock()

    @staticmethod
    def _key(mask: torch.Tensor) -> tuple:
        return (str(mask.device), mask.shape[0], *mask.shape[2:])

    def plan(self, mask: torch.Tensor) -> "_Trial | _Chosen":
        key = self._key(mask)
        be = self.chosen.get(key)
        return _Trial(key, mask) if be is None else _Chosen(be, be.plan(mask))

    def executed_pixels(self, plan) -> int:
        be, p = (plan.chosen, plan.plan) if isinstance(plan, _Trial) else (plan.backend, plan.plan)
        if be is None:
            raise ValueError("vsugsp: executed_pixels of a plan that has not run yet")
        return p.numel() if isinstance(be, ReferenceBackend) else be.executed_pixels(p)

    def _run(self, plan: "_Trial | _Chosen", call: "Any") -> torch.Tensor:
        if isinstance(plan, _Chosen):
            return call(plan.backend, plan.plan)
        with self._lock:  # one trial at a time: concurrent passes would skew the clocks
            be = self.chosen.get(plan.key)
            if be is not None:
                plan.chosen, plan.plan = be, be.plan(plan.mask)
                return call(be, plan.plan)
            ms: dict[str, float] = {}
            results: dict[str, tuple[Any, torch.Tensor]] = {}
            for c in self.candidates:
                p = c.plan(plan.mask)
                out = call(c, p)  # warm-up
                times = []
                for _ in range(self.trials):
                    self.sync()
                    t0 = self.clock()
                    p = c.plan(plan.mask)
                    out = call(c, p)
                    self.sync()
                    times.append((self.clock() - t0) * 1000.0)
                ms[c.name] = statistics.median(times)
                results[c.name] = (p, out)
            best = min(self.candidates, key=lambda c: ms[c.name])  # ties: the earlier candidate
            self.chosen[plan.key], self.timings[plan.key] = best, ms
            log.info(f"vsugsp: masked convs at {plan.key}: {best.name} "
                     f"({', '.join(f'{n} {t:.2f} ms' for n, t in ms.items())})")
        plan.chosen, (plan.plan, out) = best, results[best.name]
        return out

    def conv(self, x, plan, weight, bias, prelu):
        return self._run(plan, lambda be, p: be.conv(x, p, weight, bias, prelu))

    def run_block(self, block, x, plan):
        return self._run(plan, lambda be, p: be.run_block(block, x, p))

    def __repr__(self) -> str:
        return f"FastestBackend({', '.join(c.name for c in self.candidates)})"


def get_backend(backend: "str | MaskedBackend") -> MaskedBackend:
    """A backend instance from a name in :data:`BACKEND_NAMES` (instances pass through)."""
    if isinstance(backend, MaskedBackend):
        return backend
    if backend == "reference":
        return ReferenceBackend()
    if backend in ("tiles", "cpu"):
        return TileBackend()
    if backend == "cuda":
        return CudaBackend()
    raise ValueError(f"vsugsp: unknown masked-conv backend {backend!r}; allowed: {', '.join(BACKEND_NAMES)}")


# ----------------------------------------------------------------- the CUDA self-check

#: (channels in, channels out): a vectorised and a scalar kernel variant, and a body-like layer
_CHECK_SHAPES: Sequence[tuple[int, int]] = ((24, 16), (13, 7), (16, 16))
#: largest error allowed, relative to the output's scale (at least 1)
_TOLERANCE = {torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 5e-2}


def self_check(candidate: MaskedBackend, device: "torch.device | str",
               dtypes: Sequence[torch.dtype] = (torch.float16, torch.float32)) -> str | None:
    """Compare ``candidate`` with the reference on a small problem on ``device``.

    For each dtype and three channel counts: a random 2×C×37×45 input, a random
    mask (about 40 % on, one full row, half of the second image off) and 3×3
    weights with bias and PReLU.  The candidate's :meth:`~MaskedBackend.conv`, and a
    second conv on its output (as a block's body layers run), must match the
    reference computed in float64 within the dtype's tolerance (relative to the
    output's scale), with exact zeros where the mask is off.  Returns None when it
    passes, else what went wrong (an exception while compiling or launching
    counts as a failure).
    """
    ref = ReferenceBackend()
    gen = torch.Generator().manual_seed(1234)
    try:
        with torch.inference_mode():
            for dtype in dtypes:
                for cin, cout in _CHECK_SHAPES:
                    x = torch.randn(2, cin, 37, 45, generator=gen)
                    mask = torch.rand(2, 1, 37, 45, generator=gen) < 0.4
                    mask[0, 0, 5] = True
                    mask[1, 0, 20:] = False
                    w = torch.randn(cout, cin, 3, 3, generator=gen) / (3 * cin**0.5)
                    w2 = torch.randn(cout, cout, 3, 3, generator=gen) / (3 * cout**0.5)
                    b = torch.randn(cout, generator=gen) * 0.1
                    a = torch.rand(cout, generator=gen) * 0.3
                    x, w, w2, b, a = (v.to(device=device, dtype=dtype) for v in (x, w, w2, b, a))
                    mask = mask.to(device)
                    # the reference in float64 on the same (rounded) values: exact, and
                    # untouched by TF32 or the dtype's own accumulation error
                    want = ref.conv(x.double(), mask, w.double(), b.double(), a.double())
                    plan = candidate.plan(mask)
                    got = candidate.conv(x, plan, w, b, a)
                    # a body layer reads the previous layer's output, zero where the mask is off
                    want2 = ref.conv(got.double(), mask, w2.double(), None, None)
                    got2 = candidate.conv(got, plan, w2, None, None)
                    want, got, want2, got2 = want.float(), got.float(), want2.float(), got2.float()
                    for label, g, e in (("conv", got, want), ("chained conv", got2, want2)):
                        if g.shape != e.shape:
                            return f"{label} {dtype}: shape {tuple(g.shape)}, expected {tuple(e.shape)}"
                        if not torch.isfinite(g).all():
                            return f"{label} {dtype} {cin}→{cout}: non-finite output"
                        if bool((g[~mask.expand_as(g)] != 0).any()):
                            return f"{label} {dtype} {cin}→{cout}: non-zero output where the mask is off"
                        err = float((g - e).abs().max())
                        scale = max(1.0, float(e.abs().max()))
                        if err > _TOLERANCE[dtype] * scale:
                            return f"{label} {dtype} {cin}→{cout}: max error {err:.3g} (tolerance {_TOLERANCE[dtype] * scale:.3g})"
    except Exception as exc:  # a compile error, a missing library, a launch failure
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{type(exc).__name__}: {first}"
    return None


_checked: dict[tuple[str, str], str | None] = {}
_checked_lock = threading.Lock()


def checked(candidate: MaskedBackend, fallback: MaskedBackend, device: "torch.device") -> MaskedBackend:
    """``candidate`` if it passes :func:`self_check` on ``device`` (once per process), else ``fallback``.

    A failure is logged once as a warning naming the reason.
    """
    key = (type(candidate).__name__, str(device))
    with _checked_lock:
        if key not in _checked:
            problem = self_check(candidate, device)
            _checked[key] = problem
            if problem is not None:
                log.warning(f"vsugsp: the {candidate.name} masked-conv backend failed its self-check on {device} "
                            f"({problem}); running the {fallback.name} backend instead")
        problem = _checked[key]
    return candidate if problem is None else fallback


def cuda_auto(device: "torch.device", cupy: bool) -> MaskedBackend:
    """``auto`` on a CUDA device: per level the fastest (:class:`FastestBackend`) of the CuPy kernels
    (when ``cupy``), the tile path (gather → cuDNN conv → scatter) and the reference (dense
    conv × mask), each but the reference used only once it passes :func:`self_check` there."""
    if not cupy:
        log.warning("vsugsp: CuPy is not available; pruned mode runs the torch backends on the GPU "
                    "(pip install 'vsugsp[cuda]' for the CUDA kernels)")
    ref, tiles = ReferenceBackend(), TileBackend()
    cands = [CudaBackend()] if cupy and checked(CudaBackend(), tiles, device).name == "cuda" else []
    # the tile path checked with tiles forced (a small check problem would otherwise run densely)
    if checked(TileBackend(dense_fallback=float("inf")), ref, device) is not ref:
        cands.append(tiles)
    cands.append(ref)
    if len(cands) == 1:
        return ref
    return FastestBackend(cands, sync=lambda: torch.cuda.synchronize(device))


def resolve_backend(backend: "str | MaskedBackend", device: "torch.device", mode: str = "pruned") -> MaskedBackend:
    """The masked-conv backend to run on ``device``.

    backend: "auto", a name in :data:`BACKEND_NAMES` or an instance.  "auto": the
    tile backend on a CPU; on CUDA :func:`cuda_auto` (per level the fastest of the
    self-checked CuPy kernels, the tile path and the dense reference).  An
    explicit "cuda" needs a CUDA device and CuPy, and must pass the self-check too
    (ValueError naming the failure otherwise).  ``mode``: "dense" runs no masked
    convs, so nothing is checked or warned about.
    """
    if isinstance(backend, MaskedBackend):
        return backend
    from . import cuda as sparse_cuda

    if backend == "auto":
        if device.type != "cuda" or mode != "pruned":
            return TileBackend()
        return cuda_auto(device, sparse_cuda.is_available())
    chosen = get_backend(backend)
    if isinstance(chosen, CudaBackend):
        if device.type != "cuda":
            raise ValueError("vsugsp: backend='cuda' needs device='cuda'")
        if not sparse_cuda.is_available():
            raise ValueError("vsugsp: backend='cuda' needs CuPy for CUDA (pip install 'vsugsp[cuda]')")
        if mode == "pruned" and checked(chosen, TileBackend(), device) is not chosen:
            raise ValueError(f"vsugsp: backend='cuda' failed its self-check on {device} "
                             f"({_checked[(type(chosen).__name__, str(device))]}); use backend='auto' or 'tiles'")
    return chosen
