"""The network on a device, serving interpolated frames to many threads in any order.

Determinism is the rule that shapes this module: an output frame must be
bit-identical whatever order or thread it is requested from. So

- the frames between one source pair (i, i+1) are always computed in the same
  fixed chunks of that pair's t values (``RateMap.times_of(i)`` split every
  ``batch``), never mixed with another pair;
- encoder features depend on one source frame only, so a cached and a
  recomputed feature are the same numbers;
- network work runs one pass at a time under a lock; a pair's DIS flow prior
  (CPU work that depends on the pair's two source frames only) is computed
  outside it, once per pair.  VapourSynth runs one callback of a filter at a
  time, so the next pair's request arrives only after this pair's frame is
  done; the filter hands the engine source frame i + 2 ahead, and a worker
  thread computes pair i + 1's prior while pair i's pass runs.

Memory stays bounded: a source frame's image tensor and encoder features live
in an LRU keyed by source index; a chunk's
results are dropped once each of its frames has been handed out (a later
request just recomputes them, identically).
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from . import work
from .once import OnceCache

from .interpolator import resolve_device, resolve_model  # noqa: F401  (their old home)

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .interpolator import Interpolator

__all__ = ["Engine", "resolve_device", "resolve_model"]

log = logging.getLogger(__name__)

# ----------------------------------------------------------------- the engine


class Engine:
    """Interpolates source pairs with one :class:`~vsugsp.interpolator.Interpolator`.

    interp: the network, its settings and backend (:func:`vsugsp.interpolator.build_interpolator`).
    batch: t values of one pair per forward pass; cache_frames: source frames
    whose encoder features are kept (None: the settings' values).
    """

    def __init__(self, interp: "Interpolator", *, batch: int | None = None, cache_frames: int | None = None) -> None:
        import torch

        self.interp = interp
        self.net = interp.net
        self.device = interp.device
        self.dtype = interp.dtype
        self.flow_prior = interp.flow_prior
        self.batch = int(interp.settings.batch if batch is None else batch)
        self.cache_frames = int(interp.settings.cache_frames if cache_frames is None else cache_frames)
        self._torch = torch
        self._compute = threading.Lock()
        self._state = threading.Lock()
        self._features: OrderedDict[int, Any] = OrderedDict()
        # Chunks of frames, dropped once every frame is handed out; at most 6 finished
        # ones not yet fully handed out (seeking leaves some behind).
        self._chunks = OnceCache(6)
        self._stats = dict.fromkeys(work.KEYS, 0)
        # Pair priors, computed outside the compute lock; a few cover the pairs in flight.
        self._priors = OnceCache(4)
        # the worker that computes the next pair's prior during a pass, and the pairs it was given
        self._ahead = None
        self._prefetched: OrderedDict[int, None] = OrderedDict()

    # -------------------------------------------------------------- public
    def stats(self) -> dict[str, int]:
        """This engine's counters since it was made (:data:`vsugsp.work.KEYS`; frames_passed stays 0).

        Every computation counts, a chunk recomputed after seeking too; the
        output frames' props (:mod:`vsugsp.work`) count each chunk once.
        """
        with self._state:
            return dict(self._stats)

    def interpolate(
        self,
        i: int,
        t: Fraction,
        frame0: "np.ndarray | Callable[[], np.ndarray]",
        frame1: "np.ndarray | Callable[[], np.ndarray]",
        times: Sequence[Fraction],
    ) -> np.ndarray:
        """The frame ``t`` of the way from source ``i`` to ``i + 1``, 3×H×W float32.

        frame0/frame1: source frames ``i`` and ``i + 1`` as 3×H×W float32 RGB
        (values nominally in [0, 1]), or callables returning them (only called
        when the frame is not cached on the device). times: every t of this
        pair (the fixed batch it is computed in); ``t`` must be one of them.
        """
        return self.render(i, t, frame0, frame1, times)[0]

    def render(
        self,
        i: int,
        t: Fraction,
        frame0: "np.ndarray | Callable[[], np.ndarray]",
        frame1: "np.ndarray | Callable[[], np.ndarray]",
        times: Sequence[Fraction],
        ahead: "tuple[np.ndarray | Callable[[], np.ndarray], Sequence[Fraction]] | None" = None,
    ) -> tuple[np.ndarray, dict[str, int]]:
        """:meth:`interpolate`'s frame and its share of the work (executed_macs, dense_macs,
        forward_passes; :func:`vsugsp.work.split` of its chunk's totals, the same whoever computed it).

        ahead: source frame ``i + 2`` and the times of pair ``i + 1``, when the
        caller has them: the next pair's flow prior is then computed in a worker
        thread while this pair's network pass runs (VapourSynth runs one callback
        of a filter at a time, so the next pair's request comes too late for that).
        """
        if ahead is not None and self.flow_prior != "none":
            self._prefetch_prior(i + 1, frame1, ahead[0], -(-len(ahead[1]) // self.batch))
        try:
            pos = times.index(t)
        except ValueError:
            raise ValueError(f"vsugsp: t={t} is not among the pair's times {list(times)}") from None
        c = pos // self.batch
        chunk = tuple(times[c * self.batch : (c + 1) * self.batch])
        images, spent = self._chunks.get(
            (i, c), lambda: self._run(i, chunk, frame0, frame1, -(-len(times) // self.batch)),
            uses=chunk, reader=t)
        return images[t], spent[t]

    # -------------------------------------------------------------- internals
    def _tensor(self, frame: "np.ndarray | Callable[[], np.ndarray]") -> "torch.Tensor":
        torch = self._torch
        if callable(frame):
            frame = frame()
        frame = np.ascontiguousarray(frame, dtype=np.float32)
        if frame.ndim != 3 or frame.shape[0] != 3:
            raise ValueError(f"vsugsp: engine needs 3×H×W frames, got shape {frame.shape}")
        if not np.isfinite(frame).all():  # NaN/inf samples of a float clip read as 0
            frame = np.nan_to_num(frame, nan=0.0, posinf=0.0, neginf=0.0)
        x = torch.from_numpy(frame)[None]
        return x.to(device=self.device, dtype=self.dtype)

    def _frame(self, idx: int, frame: "np.ndarray | Callable[[], np.ndarray]") -> tuple:
        """(image tensor, encoder features) of source frame ``idx``, from the LRU or computed.

        Called under the compute lock; the LRU itself is guarded by the state
        lock, because :meth:`_image` reads it from threads not holding the compute lock.
        """
        with self._state:
            entry = self._features.get(idx)
            if entry is not None:
                self._features.move_to_end(idx)
        if entry is None:
            img = self._tensor(frame)
            entry = (img, self.interp.encode(img))
            with self._state:
                self._features[idx] = entry
                while len(self._features) > self.cache_frames:
                    self._features.popitem(last=False)
        return entry

    def _image(self, idx: int, frame: "np.ndarray | Callable[[], np.ndarray]") -> "torch.Tensor":
        """Source frame ``idx``'s image tensor: the LRU's, or the same numbers made anew."""
        with self._state:
            entry = self._features.get(idx)
        return entry[0] if entry is not None else self._tensor(frame)

    def _prior(self, i: int, frame0: Any, frame1: Any, uses: int) -> "torch.Tensor | None":
        """Pair ``i``'s flow prior, computed once for its ``uses`` chunks, outside the compute lock.

        So a pair's DIS (CPU) runs while the network (holding the lock) works
        on another pair. The prior depends on the two source frames only, so
        it is the same numbers whichever thread computes it.
        """
        return self._priors.get(i, self._prior_job(i, frame0, frame1), uses)

    def _prior_job(self, i: int, frame0: Any, frame1: Any) -> "Callable[[], torch.Tensor | None]":
        def compute() -> "torch.Tensor | None":
            a, b = self._image(i, frame0), self._image(i + 1, frame1)
            _check_pair(i, a, b)
            return self.interp.prior(a, b)

        return compute

    def _prefetch_prior(self, i: int, frame0: Any, frame1: Any, uses: int) -> None:
        """Start pair ``i``'s prior in the worker thread unless it is there or under way."""
        with self._state:
            if i in self._prefetched:
                return
            self._prefetched[i] = None
            while len(self._prefetched) > 64:
                self._prefetched.popitem(last=False)
            if self._ahead is None:
                from concurrent.futures import ThreadPoolExecutor

                self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vsugsp-prior")
        self._ahead.submit(self._priors.prefetch, i, self._prior_job(i, frame0, frame1), uses)

    def _run(
        self, i: int, chunk: tuple[Fraction, ...], frame0: Any, frame1: Any, chunks: int = 1
    ) -> tuple[dict[Fraction, np.ndarray], dict[Fraction, dict[str, int]]]:
        """Images and per-frame work of one chunk; ``chunks``: how many the pair has (they share its prior)."""
        torch = self._torch
        n = len(chunk)
        # one prior per pair, shared by every t and chunk of it (tiny frames: none)
        pair = self._prior(i, frame0, frame1, chunks) if self.flow_prior != "none" else None
        with self._compute, torch.inference_mode():
            a, f0 = self._frame(i, frame0)
            b, f1 = self._frame(i + 1, frame1)
            _check_pair(i, a, b)
            tt = torch.tensor([float(t) for t in chunk], dtype=self.dtype, device=self.device)
            image, macs, dense = self.interp(
                a.expand(n, -1, -1, -1), b.expand(n, -1, -1, -1), tt, feats0=f0, feats1=f1, pair_flow=pair)
        host = image.float().cpu().numpy()
        macs, dense = int(macs), int(dense)
        with self._state:
            self._stats["frames_interpolated"] += n
            self._stats["executed_macs"] += macs
            self._stats["dense_macs"] += dense
            self._stats["forward_passes"] += self.interp.settings.ensemble
        passes = self.interp.settings.ensemble
        spent = {t: {"executed_macs": work.split(macs, k, n), "dense_macs": work.split(dense, k, n),
                     "forward_passes": work.split(passes, k, n)} for k, t in enumerate(chunk)}
        return {t: host[k] for k, t in enumerate(chunk)}, spent


def _check_pair(i: int, a: "torch.Tensor", b: "torch.Tensor") -> None:
    if a.shape != b.shape:
        raise ValueError(f"vsugsp: frames {i} and {i + 1} differ in size: {tuple(a.shape)} vs {tuple(b.shape)}")
