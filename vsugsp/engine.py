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
  before taking it, once per pair, so it overlaps another pair's pass.

Memory stays bounded: a source frame's image tensor and encoder features live
in an LRU keyed by source index; a chunk's
results are dropped once each of its frames has been handed out (a later
request just recomputes them, identically).
"""
from __future__ import annotations

import copy
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import work
from .once import OnceCache

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .model import UGSPNet

__all__ = ["Engine", "resolve_device", "resolve_model"]

log = logging.getLogger(__name__)

# ----------------------------------------------------------------- device and model


def resolve_device(device: str | None) -> "torch.device":
    """"auto"/None → CUDA when available else CPU; "cuda"/"cuda:N" must exist."""
    import torch

    name = "auto" if device is None else str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(
                f"vsugsp: device {device!r} was requested but CUDA is not available "
                "(torch.cuda.is_available() is False); use device='cpu' or 'auto'"
            )
        idx = int(name[5:]) if ":" in name else 0
        if idx >= torch.cuda.device_count():
            raise ValueError(
                f"vsugsp: device {device!r} does not exist; this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
        return torch.device("cuda", idx)
    raise ValueError(f"vsugsp: device={device!r}; allowed: auto, cpu, cuda, cuda:N")


_model_cache: dict[tuple, Any] = {}
_model_lock = threading.Lock()


def resolve_model(model: "str | Path | UGSPNet", device: "torch.device", half: bool) -> "UGSPNet":
    """A network in eval mode on ``device`` (fp16 when ``half``), ready for inference.

    ``model`` is a packaged weights name, a path to a ``.pt`` file, or a
    ``UGSPNet`` instance (copied, so the caller's module is left untouched).
    Loaded files are cached process-wide per (file, modification time, device,
    precision), so re-running a script (mpv seeks) does not reload them.
    """
    import torch

    from .model import UGSPNet, load
    from .model.io import resolve

    if isinstance(model, UGSPNet):
        net = copy.deepcopy(model)
    elif isinstance(model, (str, Path)):
        try:
            path = resolve(model)
        except ValueError as exc:
            msg = str(exc)
            if "no packaged weights" in msg:
                msg += (
                    " (the trained weights ship in vsugsp/weights/; pass model= a .pt path "
                    "or a UGSPNet if they are not installed)"
                )
            raise ValueError(msg) from None
        key = (str(path.resolve()), path.stat().st_mtime_ns, str(device), half)
        with _model_lock:
            net = _model_cache.get(key)
            if net is None:
                net = load(path)
                net = _prepare(net, device, half)
                _model_cache[key] = net
        return net
    else:
        raise ValueError(
            f"vsugsp: model must be a weights name, a .pt path or a UGSPNet, got {type(model).__name__}"
        )
    return _prepare(net, device, half)


def _prepare(net: "UGSPNet", device: "torch.device", half: bool) -> "UGSPNet":
    import torch

    if device.type == "cpu":  # passes stop page-faulting their tensors in again (vsugsp.allocator)
        from .allocator import retain_freed_memory

        retain_freed_memory()

    net = net.eval().to(device=device, dtype=torch.float16 if half else torch.float32)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


# ----------------------------------------------------------------- the engine


class Engine:
    """Interpolates source pairs with one network on one device.

    net: a ``UGSPNet`` already on ``device`` (see :func:`resolve_model`).
    mode: "pruned" or "dense"; threshold in [0, 1); scale in (0, 1].
    max_density: pruned mode's cap on the computed share of each decoder level
    (a number or three in (0, 1]; None: no cap).  ensemble: views averaged per
    frame, 1, 2 (+ time-swapped) or 4 (+ mirrored); see :mod:`vsugsp.model.ensemble`.
    cpu_bf16: on a CPU device, run the network under bfloat16 autocast (weights stay
    fp32; worth it only where the CPU has native bf16, see :func:`vsugsp.hardware.cpu_bf16`).
    flow_prior: "none", "dis" (the network refines DIS optical flow of each pair,
    computed on the CPU; see :mod:`vsugsp.model.prior`) or "auto" ("dis" where
    OpenCV is installed).
    backend: masked-conv backend: "auto", a name or an instance
    (:func:`vsugsp.sparse.resolve_backend`; on CUDA the CuPy kernels only after
    their self-check).
    refine: the network's corrections to apply (:data:`vsugsp.model.net.REFINE`).
    batch: t values of one pair per forward pass; cache_frames: source frames
    whose encoder features are kept.
    """

    def __init__(
        self,
        net: "UGSPNet",
        device: "torch.device",
        *,
        mode: str = "pruned",
        threshold: float = 0.5,
        scale: float = 1.0,
        backend: str = "auto",
        max_density: "float | Sequence[float] | None" = None,
        ensemble: int = 1,
        cpu_bf16: bool = False,
        flow_prior: str = "none",
        refine: "Sequence[str] | None" = None,
        batch: int = 8,
        cache_frames: int = 8,
    ) -> None:
        import torch

        self.net = net
        self.device = device
        self.dtype = next(net.parameters()).dtype
        self.mode = mode
        self.threshold = float(threshold)
        from .model.net import level_caps

        self.max_density = level_caps(max_density)
        from .model.ensemble import check_passes

        self.ensemble = check_passes(ensemble)
        self.cpu_bf16 = bool(cpu_bf16) and device.type == "cpu"
        from .model import prior

        wanted, flow_prior = flow_prior, prior.resolve(flow_prior, device)
        if wanted in prior.AUTO and flow_prior == "none":
            log.warning(f"vsugsp: OpenCV is not installed, so flow_prior={wanted!r} runs without the DIS prior "
                        "(pip install opencv-python-headless)")
        if flow_prior != "none":
            try:  # fail now, with the install hint, not on the first frame
                prior.cv2_module()
            except ImportError as exc:
                raise ValueError(f"{exc} (preset key flow_prior='dis')") from None
        self.flow_prior = flow_prior
        from .model.net import REFINE, check_refine

        self.refine = check_refine(REFINE if refine is None else refine)
        self.scale = float(scale)
        from .sparse import resolve_backend

        self.backend = resolve_backend(backend, device, mode)
        self.batch = int(batch)
        self.cache_frames = int(cache_frames)
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
    ) -> tuple[np.ndarray, dict[str, int]]:
        """:meth:`interpolate`'s frame and its share of the work (executed_macs, dense_macs,
        forward_passes; :func:`vsugsp.work.split` of its chunk's totals, the same whoever computed it)."""
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
            entry = (img, self.net.encode(img, self.scale))
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
        from .model.prior import prior_for

        def compute() -> "torch.Tensor | None":
            a, b = self._image(i, frame0), self._image(i + 1, frame1)
            _check_pair(i, a, b)
            with self._torch.inference_mode():
                return prior_for(self.flow_prior, a, b)

        return self._priors.get(i, compute, uses)

    def _run(
        self, i: int, chunk: tuple[Fraction, ...], frame0: Any, frame1: Any, chunks: int = 1
    ) -> tuple[dict[Fraction, np.ndarray], dict[Fraction, dict[str, int]]]:
        """Images and per-frame work of one chunk; ``chunks``: how many the pair has (they share its prior)."""
        from .model.ensemble import ensemble_forward

        torch = self._torch
        n = len(chunk)
        # one prior per pair, shared by every t and chunk of it (tiny frames: none)
        pair = self._prior(i, frame0, frame1, chunks) if self.flow_prior != "none" else None
        bf16 = torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_bf16)
        with self._compute, torch.inference_mode(), bf16:
            a, f0 = self._frame(i, frame0)
            b, f1 = self._frame(i + 1, frame1)
            _check_pair(i, a, b)
            tt = torch.tensor([float(t) for t in chunk], dtype=self.dtype, device=self.device)
            image, macs, dense = ensemble_forward(
                self.net,
                a.expand(n, -1, -1, -1),
                b.expand(n, -1, -1, -1),
                tt,
                self.ensemble,
                mode=self.mode,
                backend=self.backend,
                threshold=self.threshold,
                max_density=self.max_density,
                scale=self.scale,
                feats0=f0,
                feats1=f1,
                pair_flow=pair,
                refine=self.refine,
            )
        host = image.float().cpu().numpy()
        macs, dense = int(macs), int(dense)
        with self._state:
            self._stats["frames_interpolated"] += n
            self._stats["executed_macs"] += macs
            self._stats["dense_macs"] += dense
            self._stats["forward_passes"] += self.ensemble
        spent = {t: {"executed_macs": work.split(macs, k, n), "dense_macs": work.split(dense, k, n),
                     "forward_passes": work.split(self.ensemble, k, n)} for k, t in enumerate(chunk)}
        return {t: host[k] for k, t in enumerate(chunk)}, spent


def _check_pair(i: int, a: "torch.Tensor", b: "torch.Tensor") -> None:
    if a.shape != b.shape:
        raise ValueError(f"vsugsp: frames {i} and {i + 1} differ in size: {tuple(a.shape)} vs {tuple(b.shape)}")
