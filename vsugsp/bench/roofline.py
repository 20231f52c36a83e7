"""The machine's matrix-multiply peak, measured, and the share of it a network run achieves.

A 3×3 convolution is a GEMM in disguise (oneDNN runs it as one), so the best a
preset can do on a device is that device's dense GEMM rate at the precision the
preset computes in.  ``vsugsp bench speed`` measures the peak itself, on the
same threads, in the same run, and reports each preset's *executed* MACs per
second as a share of it: how far the pruned network is from the machine's
limit, whatever the pruning saved.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import torch

__all__ = ["gemm_peak", "roofline_share", "PEAK_SIZES"]

#: Square GEMM sizes tried; the best rate counts (small ones fit caches, large ones
#: amortise the packing).
PEAK_SIZES: Sequence[int] = (1024, 2048)


def gemm_peak(dtype: torch.dtype = torch.float32, device: "torch.device | str" = "cpu", *,
              sizes: Sequence[int] = PEAK_SIZES, repeats: int = 5, min_seconds: float = 0.05) -> float:
    """Best measured dense GEMM rate in GFLOP/s (2 FLOPs per multiply-add) for ``dtype`` on ``device``.

    Every size in ``sizes`` runs ``repeats`` timed batches of at least
    ``min_seconds`` each, after one warm-up; the fastest batch of all counts.
    Uses torch's current thread count (what the network runs with).
    """
    dev = torch.device(device)
    best = 0.0
    gen = torch.Generator().manual_seed(0)
    for n in sizes:
        a = torch.randn(n, n, generator=gen).to(device=dev, dtype=dtype)
        b = torch.randn(n, n, generator=gen).to(device=dev, dtype=dtype)
        out = torch.empty(n, n, device=dev, dtype=dtype)

        def step() -> None:
            torch.mm(a, b, out=out)

        step()
        _sync(dev)
        start = time.perf_counter()
        step()
        _sync(dev)
        once = max(time.perf_counter() - start, 1e-9)
        calls = max(1, int(min_seconds / once))
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(calls):
                step()
            _sync(dev)
            seconds = time.perf_counter() - start
            best = max(best, 2.0 * n**3 * calls / seconds / 1e9)
    return best


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def roofline_share(executed_macs: float, seconds: float, peak_gflops: float) -> float:
    """Achieved FLOP rate (2 per executed MAC over ``seconds``) as a fraction of ``peak_gflops``.

    Values in [0, 1] for a run slower than the peak; 0 when nothing ran.
    ValueError for a non-positive time or peak.
    """
    if seconds <= 0 or peak_gflops <= 0:
        raise ValueError(f"vsugsp: roofline_share needs seconds > 0 and peak > 0, got {seconds}, {peak_gflops}")
    return 2.0 * executed_macs / seconds / 1e9 / peak_gflops
