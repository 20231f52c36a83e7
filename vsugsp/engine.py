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
  done; the filter hands the engine the source frames ahead (i + 2, i + 3, ...),
  and a pool of worker threads (:class:`vsugsp.prior_pool.PriorPool`, sized
  from the machine's cores) computes the priors of pairs i + 1, i + 2, ...
  while pair i's pass runs (without a prior, the workers still convert the
  next source frames).  A frame converted ahead serves its two pairs' priors
  and the pass; a VapourSynth thread never waits on a worker's conversion (the
  worker may be waiting for VapourSynth), it converts the frame itself then.
- with ``motion: quadratic`` a pair's prior is not read by the pass itself but by
  the motions (:meth:`Engine._motion`) of pairs i − 1, i and i + 1, each built once
  from the three pairs' priors; the caller hands over source frames i − 1 and i + 2
  with the pair (``render(neighbours=...)``), so no VapourSynth thread waits for them.

Frames reach the engine as host arrays or as callables giving an RGB tensor
already on the device (:mod:`vsugsp.device_frames`, through :attr:`Engine.transfer`);
results stay on the device until the caller converts and downloads them
(``render(..., host=False)``).  On CUDA the passes run on the engine's own
stream (:attr:`Engine.stream`), uploads and downloads on the transfer's.

Memory stays bounded: a source frame's image tensor and encoder features live
in an LRU keyed by source index; a chunk's
results are dropped once each of its frames has been handed out (a later
request just recomputes them, identically).
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from . import prior_pool, work
from .device_frames import Transfer
from .once import OnceCache
from .prior_pool import PriorPool

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
    whose encoder features are kept (None: the settings' values); prior_workers:
    threads computing the priors of the next pairs (None:
    :func:`vsugsp.prior_pool.default_workers`, one per pair ahead); source_fps: the
    clip's rate, frames/s (None: unknown), which a measured prior ("auto-realtime") must
    keep up with.
    """

    def __init__(self, interp: "Interpolator", *, batch: int | None = None, cache_frames: int | None = None,
                 prior_workers: int | None = None, source_fps: "Fraction | float | None" = None) -> None:
        import torch

        from .model.prior import MEASURED

        self.interp = interp
        self.net = interp.net
        self.device = interp.device
        self.dtype = interp.dtype
        self.flow_prior = interp.flow_prior
        self.batch = int(interp.settings.batch if batch is None else batch)
        self.cache_frames = int(interp.settings.cache_frames if cache_frames is None else cache_frames)
        self._torch = torch
        #: moves frames between the host and the device (pinned buffers and their own streams on CUDA)
        self.transfer = Transfer(self.device)
        #: the stream the passes run on (CUDA), None on a CPU
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self._compute = threading.Lock()
        self._state = threading.Lock()
        self._features: OrderedDict[int, Any] = OrderedDict()
        # Chunks of frames, dropped once every frame is handed out; at most 6 finished
        # ones not yet fully handed out (seeking leaves some behind).
        self._chunks = OnceCache(6)
        self._stats = dict.fromkeys(work.KEYS, 0)
        # the workers that compute the next pairs' priors during a pass, and the pairs they were given
        self.prior_pool = PriorPool(prior_workers)
        self._prefetched: OrderedDict[Any, None] = OrderedDict()
        #: "linear" or "quadratic" (preset key ``motion``): quadratic passes the network each pair's
        #: motion (its prior and its outer neighbours' priors, :meth:`_motion`) instead of its prior
        self.motion = interp.settings.motion
        #: pairs past the current one whose priors the pool starts during a pass: quadratic motion
        #: reads pair i + 1's prior in pair i's own pass, so the pool looks one pair further (else
        #: that DIS would start only when the pass needs it: 720p `fast` ran 26 % slower)
        self.prior_ahead = self.prior_pool.ahead + (1 if self.motion == "quadratic" else 0)
        # source frames converted for a prior ahead, each read by its two pairs' priors and the pass
        self._ahead_images = OnceCache(2 * self.prior_ahead + 2)
        # Pair priors, computed outside the compute lock; enough for the pairs in flight and ahead.
        self._priors = OnceCache(max(4, 2 * self.prior_ahead + 2))
        # Pairs' motions (quadratic), read by each chunk of the pair; a pair's prior is then read by
        # the motions of pairs i − 1, i and i + 1 (:meth:`_prior_uses`), never by a chunk itself.
        self._motions = OnceCache(4)
        #: the clip's frame rate (frames/s; None: unknown), what a measured prior must keep up with
        self.source_fps = source_fps
        # A measured prior ("auto-realtime"): decided on the first pair rendered, once, before any
        # frame is made, so every frame of the run has the same prior.  On a CPU (or without
        # OpenCV) it is decided now, with no measurement.
        self._decide_lock = threading.Lock()
        self._undecided = False
        if interp.settings.flow_prior in MEASURED:
            if prior_pool.needs_measuring(self.flow_prior, self.device):
                self._undecided = True
            else:
                self._use_prior(prior_pool.realtime_prior(self.flow_prior, None, self.device,
                                                          self.prior_pool.workers, source_fps))

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
        ahead: "Sequence[tuple[np.ndarray | Callable[[], Any], Sequence[Fraction]]] | None" = None,
        host: bool = True,
        neighbours: "tuple[Any, Any] | None" = None,
    ) -> "tuple[np.ndarray | torch.Tensor, dict[str, int]]":
        """:meth:`interpolate`'s frame and its share of the work (executed_macs, dense_macs,
        forward_passes; :func:`vsugsp.work.split` of its chunk's totals, the same whoever computed it).

        ahead: source frames ``i + 2, i + 3, ...`` each with the times of the pair
        it ends (``i + 1, i + 2, ...``), as far as the caller has them: the pool
        computes the first :attr:`prior_ahead` of those pairs' priors while this
        pair's network pass runs (VapourSynth runs one callback of a filter at a
        time, so the next pairs' requests come too late for that).
        host: False returns the frame as a 3×H×W tensor on the device, in the
        network's dtype, made on :attr:`stream` (the caller converts and downloads
        it, :meth:`Transfer.download`); it is shared with the chunk's other readers:
        read it, never write it.
        neighbours: with ``motion: quadratic``, source frames ``i − 1`` and ``i + 2`` (as frame0,
        or None where that side has none: a clip's end, a scene cut; the caller decides,
        :func:`vsugsp.model.motion.quad_neighbours`); ignored under linear motion.
        """
        if self._undecided:
            self._decide_prior(i, frame0, frame1)
        if ahead:
            prev = frame1
            for m, (nxt, nxt_times) in enumerate(ahead[: self.prior_ahead]):
                if self.flow_prior != "none":
                    self._prefetch_prior(i + 1 + m, prev, nxt, self._prior_uses(i + 1 + m, len(nxt_times)))
                else:  # no prior: the workers still bring the next source frames onto the device
                    self._prefetch(("image", i + 2 + m), self._ahead_images.prefetch, i + 2 + m,
                                   self._image_job(nxt), 3)
                prev = nxt
        try:
            pos = times.index(t)
        except ValueError:
            raise ValueError(f"vsugsp: t={t} is not among the pair's times {list(times)}") from None
        c = pos // self.batch
        chunk = tuple(times[c * self.batch : (c + 1) * self.batch])
        nb = neighbours if self.motion == "quadratic" else None
        images, spent = self._chunks.get(
            (i, c), lambda: self._run(i, chunk, frame0, frame1, -(-len(times) // self.batch), nb),
            uses=chunk, reader=t)
        image = images[t]
        return (image.float().cpu().numpy() if host else image), spent[t]

    # -------------------------------------------------------------- internals
    def _decide_prior(self, i: int, frame0: Any, frame1: Any) -> None:
        """Measure the prior pool on pair ``i`` and keep its prior or none (:func:`prior_pool.realtime_prior`)."""
        with self._decide_lock:
            if not self._undecided:  # another thread decided while this one waited
                return
            a, b = self._image(i, frame0, wait=False), self._image(i + 1, frame1, wait=False)
            if self.transfer.cuda:  # uploaded on the transfer's stream; DIS reads them on the host
                self._torch.cuda.current_stream(self.device).wait_stream(self.transfer.up)
            _check_pair(i, a, b)
            self._use_prior(prior_pool.realtime_prior(self.flow_prior, (a, b), self.device,
                                                      self.prior_pool.workers, self.source_fps))
            self._undecided = False

    def _use_prior(self, setting: str) -> None:
        """Run with the resolved prior ``setting`` from now on (set before any frame is made)."""
        if setting != self.interp.flow_prior:
            self.interp = dataclasses.replace(self.interp, flow_prior=setting)
        self.flow_prior = setting

    def _tensor(self, frame: "np.ndarray | Callable[[], np.ndarray | torch.Tensor]") -> "torch.Tensor":
        """1×3×H×W on the device in the net's dtype: from a host array, or a callable's array or device tensor."""
        torch = self._torch
        if callable(frame):
            frame = frame()
        if isinstance(frame, torch.Tensor):  # RGB already on the device (vsugsp.device_frames: NaN read as 0)
            if frame.dim() != 4 or frame.shape[:2] != (1, 3):
                raise ValueError(f"vsugsp: engine needs 1×3×H×W frame tensors, got shape {tuple(frame.shape)}")
            return frame.to(device=self.device, dtype=self.dtype)
        frame = np.ascontiguousarray(frame, dtype=np.float32)
        if frame.ndim != 3 or frame.shape[0] != 3:
            raise ValueError(f"vsugsp: engine needs 3×H×W frames, got shape {frame.shape}")
        if not np.isfinite(frame).all():  # NaN/inf samples of a float clip read as 0
            frame = np.nan_to_num(frame, nan=0.0, posinf=0.0, neginf=0.0)
        if self.transfer.cuda:  # on the upload stream, like every frame the workers may read
            return self.transfer.upload([frame], lambda ps: ps[0][None].to(self.dtype))
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
            img = self._image(idx, frame, wait=False)
            if self.transfer.cuda:  # made on another thread's stream (a prior worker's upload)
                current = self._torch.cuda.current_stream(self.device)
                current.wait_stream(self.transfer.up)
                img.record_stream(current)
            entry = (img, self.interp.encode(img))
            with self._state:
                self._features[idx] = entry
                while len(self._features) > self.cache_frames:
                    self._features.popitem(last=False)
        return entry

    def _image(self, idx: int, frame: "np.ndarray | Callable[[], np.ndarray]", wait: bool = True) -> "torch.Tensor":
        """Source frame ``idx``'s image tensor: the LRU's, or the same numbers made anew."""
        with self._state:
            entry = self._features.get(idx)
        if entry is not None:
            return entry[0]
        if wait:  # a worker: share the conversion with the other workers
            return self._ahead_images.get(idx, self._image_job(frame), uses=3)
        # A VapourSynth thread never waits on a worker's conversion: the worker may be waiting for
        # VapourSynth to deliver the frame (with one VapourSynth thread, the one waiting here).
        img = self._ahead_images.peek(idx)
        return self._tensor(frame) if img is None else img

    def _prior(self, i: int, frame0: Any, frame1: Any, uses: int) -> "torch.Tensor | None":
        """Pair ``i``'s flow prior, computed once for its ``uses`` chunks, outside the compute lock.

        So a pair's DIS (CPU) runs while the network (holding the lock) works
        on another pair. The prior depends on the two source frames only, so
        it is the same numbers whichever thread computes it.
        """
        return self._priors.get(i, self._prior_job(i, frame0, frame1, wait=False), uses)

    def _prior_uses(self, i: int, n_times: int) -> "int | set[int]":
        """The reads pair ``i``'s prior serves: each chunk of its ``n_times`` frames (linear), or
        the motions of pairs i − 1, i and i + 1 (quadratic; a reader that never comes, at a cut,
        leaves it to the bounded cache)."""
        if self.motion == "quadratic":
            return {i - 1, i, i + 1}
        return -(-n_times // self.batch)

    def _motion(self, i: int, frame0: Any, frame1: Any, neighbours: "tuple[Any, Any] | None",
                chunks: int) -> "torch.Tensor | None":
        """Pair ``i``'s B×8 motion (:func:`vsugsp.model.motion.motion_tensor`), once for its ``chunks``.

        Read from the three pairs' priors (computed once each, shared with the neighbours'
        motions: no extra DIS run).  Without a neighbour on either side (or without a prior)
        it is the pair's prior itself, so the network gets the linear prior's very numbers.
        """
        prev, nxt = neighbours if neighbours is not None else (None, None)

        def read(j: int, a: Any, b: Any) -> "torch.Tensor | None":
            return self._priors.get(j, self._prior_job(j, a, b, wait=False), self._prior_uses(j, 0), reader=i)

        def compute() -> "torch.Tensor | None":
            from .model.motion import motion_tensor

            own = read(i, frame0, frame1)
            left = read(i - 1, prev, frame0) if prev is not None else None
            right = read(i + 1, frame1, nxt) if nxt is not None else None
            if own is None or (left is None and right is None):
                return own
            return motion_tensor(own, left, right)

        return self._motions.get((i, prev is not None, nxt is not None), compute, chunks)
    def _prior_job(self, i: int, frame0: Any, frame1: Any, wait: bool = True) -> "Callable[[], torch.Tensor | None]":
        """Pair ``i``'s prior as a job; ``wait``: it may wait on a worker's conversion (workers only)."""

        def compute() -> "torch.Tensor | None":
            return self._pair_prior(i, self._image(i, frame0, wait), self._image(i + 1, frame1, wait))

        return compute

    def _pair_prior(self, i: int, a: "torch.Tensor", b: "torch.Tensor") -> "torch.Tensor | None":
        if self.transfer.cuda:  # their uploads are queued by now (maybe by another worker): wait for them
            self._torch.cuda.current_stream(self.device).wait_stream(self.transfer.up)
        _check_pair(i, a, b)
        return self.interp.prior(a, b)

    def _prefetch_prior(self, i: int, frame0: Any, frame1: Any, uses: int) -> None:
        """Start pair ``i``'s prior in a worker unless it is there or under way.

        The worker has both frames before it claims the pair: a VapourSynth
        thread that needs this prior waits on the claim, and with one
        VapourSynth thread (the one waiting) a frame asked for after the claim
        would never come.  If that thread computes the prior itself meanwhile,
        the worker's later claim finds it (or, once it has been read, computes
        one more that the bounded cache drops).
        """

        def job() -> None:
            a, b = self._image(i, frame0), self._image(i + 1, frame1)
            self._priors.prefetch(i, lambda: self._pair_prior(i, a, b), uses)

        self._prefetch(i, job)

    def _image_job(self, frame: Any) -> "Callable[[], torch.Tensor]":
        return lambda: self._tensor(frame)

    def _prefetch(self, key: Any, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in a prior worker, once per ``key`` (the last 64 keys are remembered)."""
        with self._state:
            if key in self._prefetched:
                return
            self._prefetched[key] = None
            while len(self._prefetched) > 64:
                self._prefetched.popitem(last=False)
        self.prior_pool.submit(fn, *args)

    def _run(
        self, i: int, chunk: tuple[Fraction, ...], frame0: Any, frame1: Any, chunks: int = 1,
        neighbours: "tuple[Any, Any] | None" = None,
    ) -> tuple[dict[Fraction, np.ndarray], dict[Fraction, dict[str, int]]]:
        """Images and per-frame work of one chunk; ``chunks``: how many the pair has (they share its prior)."""
        torch = self._torch
        n = len(chunk)
        # one prior (or motion) per pair, shared by every t and chunk of it (tiny frames: none)
        pair = None
        if self.flow_prior != "none":
            pair = (self._motion(i, frame0, frame1, neighbours, chunks) if self.motion == "quadratic"
                    else self._prior(i, frame0, frame1, chunks))
        with self._compute, torch.inference_mode(), self._on_stream():
            if pair is not None and self.stream is not None:
                # the prior came up on its worker's default stream
                self.stream.wait_stream(torch.cuda.default_stream(self.device))
                pair.record_stream(self.stream)
            a, f0 = self._frame(i, frame0)
            b, f1 = self._frame(i + 1, frame1)
            _check_pair(i, a, b)
            # t in fp32 whatever the network's dtype (the network takes it so; fp16 moves 0.4 by 1e-4)
            tt = torch.tensor([float(t) for t in chunk], dtype=torch.float32, device=self.device)
            image, macs, dense = self.interp(
                a.expand(n, -1, -1, -1), b.expand(n, -1, -1, -1), tt, feats0=f0, feats1=f1, pair_flow=pair)
        macs, dense = int(macs), int(dense)
        with self._state:
            self._stats["frames_interpolated"] += n
            self._stats["executed_macs"] += macs
            self._stats["dense_macs"] += dense
            self._stats["forward_passes"] += self.interp.settings.ensemble
        passes = self.interp.settings.ensemble
        spent = {t: {"executed_macs": work.split(macs, k, n), "dense_macs": work.split(dense, k, n),
                     "forward_passes": work.split(passes, k, n)} for k, t in enumerate(chunk)}
        return {t: image[k] for k, t in enumerate(chunk)}, spent

    def _on_stream(self):
        """The engine's CUDA stream as the current one (a no-op context on a CPU)."""
        import contextlib

        return contextlib.nullcontext() if self.stream is None else self._torch.cuda.stream(self.stream)


def _check_pair(i: int, a: "torch.Tensor", b: "torch.Tensor") -> None:
    if a.shape != b.shape:
        raise ValueError(f"vsugsp: frames {i} and {i + 1} differ in size: {tuple(a.shape)} vs {tuple(b.shape)}")
