"""The flow priors of the next pairs, computed ahead by a pool of worker threads.

The DIS prior (:mod:`vsugsp.model.prior`) is CPU work that depends on a pair's two
source frames only, and OpenCV releases the GIL while it runs, so several pairs'
priors can be computed at once while the network works on an earlier pair.  A
prior is the same numbers whichever worker computes it and in whatever order
(DIS objects are per thread, preset and size, each warmed on a zero pair).

Sizing (:func:`default_workers`): the cores left after VapourSynth's share (a
quarter of the machine, at least 2 cores: decoding, the filter's callbacks, the
host side of the network); at least one worker.  The 2-core CPU gets one worker,
as before this pool; a 16-core GPU host gets 12.

Whether the pool keeps up with a clip (:func:`keeps_up`) is measured, not
assumed: the pairs per second its workers deliver against the source frame
rate (each source frame starts one new pair).  ``realtime`` runs with a prior
only where it keeps up (:func:`realtime_prior`).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["PriorPool", "default_workers", "keeps_up", "needs_measuring", "realtime_prior"]

log = logging.getLogger(__name__)


def default_workers(cores: int | None = None) -> int:
    """Prior workers for a machine of ``cores`` logical CPUs (None: this one's), ≥ 1.

    VapourSynth keeps a quarter of the cores, at least 2; the pool gets the rest.
    """
    n = (os.cpu_count() or 1) if cores is None else int(cores)
    return max(1, n - max(2, n // 4))


class PriorPool:
    """``workers`` threads computing priors ahead; ``ahead``: how many pairs past the current one.

    A thin owner of the threads: what a job computes (and where the result goes)
    is the caller's (:meth:`submit`); :meth:`map` computes a list of pairs.
    """

    def __init__(self, workers: int | None = None, ahead: int | None = None) -> None:
        self.workers = default_workers() if workers is None else int(workers)
        if self.workers < 1:
            raise ValueError(f"vsugsp: prior workers={workers!r}; allowed: 1 or more")
        #: pairs past the current one whose priors are started (one per worker)
        self.ahead = self.workers if ahead is None else max(1, int(ahead))
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run ``fn(*args)`` in a worker (threads are started on first use)."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="vsugsp-prior")
            pool = self._pool
        return pool.submit(fn, *args)

    def map(self, setting: str, pairs: Sequence[tuple["torch.Tensor", "torch.Tensor"]]) -> list:
        """The priors (``flow_prior`` setting, resolved) of B×3×H×W frame pairs, in the pairs' order."""
        from .model.prior import prior_for

        futures = [self.submit(prior_for, setting, a, b) for a, b in pairs]
        return [f.result() for f in futures]

    def shutdown(self) -> None:
        """Stop the threads once the running jobs end (a later submit starts new ones)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)


def keeps_up(seconds_per_pair: float, workers: int, source_fps: "Fraction | float | None") -> bool:
    """Whether ``workers`` computing pairs of ``seconds_per_pair`` each deliver the source rate.

    Each source frame starts one new pair, so the pool must finish ``source_fps``
    pairs per second; an unknown rate (None or ≤ 0) counts as not keeping up.
    """
    if source_fps is None or float(source_fps) <= 0:
        return False
    return seconds_per_pair <= 0 or workers / seconds_per_pair >= float(source_fps)


def needs_measuring(setting: str, device: "torch.device") -> bool:
    """Whether :func:`realtime_prior` measures for ``setting`` (resolved) on ``device`` (else it decides at once)."""
    return device.type != "cpu" and setting != "none"


def realtime_prior(setting: str, frames: "tuple[torch.Tensor, torch.Tensor] | None", device: "torch.device",
                   workers: int, source_fps: "Fraction | float | None") -> str:
    """The prior ``realtime`` runs with: ``setting`` (resolved) where the pool keeps up, else "none".

    Measured on the clip's first pair (its second run: the first builds the DIS
    objects) on CUDA, where the network on its own flow is the fast alternative.  On a
    CPU ``setting`` stands without a measurement (``frames`` may be None then, as where
    ``setting`` is "none": OpenCV missing): there the prior alone is the whole frame and
    is both faster and better than the network (:data:`vsugsp.model.prior.MEASURED`).
    Says which, in a log line.
    """
    from .model.prior import prior_for

    if device.type == "cpu" and setting != "none":
        log.info(f"vsugsp: realtime runs with the {setting} prior on the CPU (the prior alone is faster there "
                 f"than the network on its own flow)")
        return setting
    if setting == "none":
        log.warning("vsugsp: realtime runs without the flow prior: OpenCV is not installed "
                    "(pip install opencv-python-headless)")
        return "none"
    if frames is None:
        raise ValueError("vsugsp: realtime_prior measures on a pair of frames; got none")
    a, b = frames
    prior_for(setting, a, b)
    start = time.perf_counter()
    prior_for(setting, a, b)
    cost = time.perf_counter() - start
    rate = workers / cost if cost > 0 else float("inf")
    if keeps_up(cost, workers, source_fps):
        log.info(f"vsugsp: realtime runs with the {setting} prior: {workers} workers give {rate:.1f} pairs/s, "
                 f"the source needs {float(source_fps):.2f}")
        return setting
    need = "an unknown rate" if source_fps is None else f"{float(source_fps):.2f}"
    log.warning(f"vsugsp: realtime runs without the flow prior: {workers} workers give {rate:.1f} pairs/s "
                f"of {setting}, the source needs {need}")
    return "none"
