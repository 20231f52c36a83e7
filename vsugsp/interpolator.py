"""Settings → a runnable network: the one way anything in vsugsp builds one.

:func:`build_interpolator` turns validated settings (a :class:`~vsugsp.preset.Preset`,
also exported as ``InferenceSettings``) and a device into an :class:`Interpolator`:
the network on its device in its precision, the masked-conv backend object
(self-checked on CUDA), the flow prior resolved for the device, the pruning caps.
The filter's engine, ``vsugsp bench speed``, the pruning bench, dataset evaluation
and the training-curve script all call it, so they run the same network the same
way; the settings were validated once, when they were loaded.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .preset import Preset

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .calibrate import Calibrator
    from .model import UGSPNet
    from .model.net import Features
    from .sparse.backends import MaskedBackend

__all__ = ["Interpolator", "build_interpolator", "resolve_device", "resolve_model", "InferenceSettings"]

log = logging.getLogger(__name__)

#: The validated, typed inference settings (one preset plus its overrides).
InferenceSettings = Preset


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
    from .model import UGSPNet, load
    from .model.io import resolve

    if isinstance(model, UGSPNet):
        return _prepare(copy.deepcopy(model), device, half)
    if not isinstance(model, (str, Path)):
        raise ValueError(
            f"vsugsp: model must be a weights name, a .pt path or a UGSPNet, got {type(model).__name__}"
        )
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
            net = _prepare(load(path), device, half)
            _model_cache[key] = net
    return net


def _prepare(net: "UGSPNet", device: "torch.device", half: bool) -> "UGSPNet":
    import torch

    if device.type == "cpu":  # passes stop page-faulting their tensors in again (vsugsp.allocator)
        from .allocator import retain_freed_memory

        retain_freed_memory()

    net = net.eval().to(device=device, dtype=torch.float16 if half else torch.float32)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@dataclass(frozen=True)
class Interpolator:
    """One network under one set of settings on one device, ready to interpolate.

    net: the network, eval mode, on ``device`` (fp16 on CUDA with precision fp16).
    settings: the validated settings it was built from.
    backend: the masked-conv backend object pruned passes run on.
    flow_prior: the prior resolved for the device: "none", "dis", "dis-fast" or "dis-light".
    cpu_bf16: the CPU passes run under bfloat16 autocast (weights stay fp32).
    max_density: the pruning cap per decoder level (coarse → fine), or None.
    calibrator: resolves ``mode: auto`` per frame size on a measured device
        (:mod:`vsugsp.calibrate`); None when the mode is fixed.
    """

    net: "UGSPNet"
    device: "torch.device"
    settings: Preset
    backend: "MaskedBackend"
    flow_prior: str
    cpu_bf16: bool
    max_density: "list[float] | None"
    calibrator: "Calibrator | None" = None

    @property
    def dtype(self) -> "torch.dtype":
        return next(self.net.parameters()).dtype

    @property
    def precision(self) -> str:
        """What the passes compute in: "fp16" (CUDA), "bf16" (CPU autocast) or "fp32"."""
        import torch

        if self.dtype == torch.float16:
            return "fp16"
        return "bf16" if self.cpu_bf16 else "fp32"

    def scale_for(self, height: int) -> float:
        """Network scale, (0, 1], for frames ``height`` lines tall."""
        return self.settings.scale_for(height)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Inference mode, and bf16 autocast where the settings ask for it on this CPU."""
        import torch

        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_bf16):
            yield

    def prior(self, img0: "torch.Tensor", img1: "torch.Tensor") -> "torch.Tensor | None":
        """The pair's flow prior (B×4×H×W, on the frames' device) or None (no prior, tiny frames).

        Computed on the CPU (OpenCV) from the two frames only.
        """
        from .model.prior import prior_for

        return prior_for(self.flow_prior, img0, img1)

    @property
    def prior_only(self) -> bool:
        """Whether frames come from the flow prior alone (``refine`` empty, a prior set): the
        network does not run where the pair has a prior (:meth:`UGSPNet.forward`)."""
        return not self.settings.refine and self.flow_prior != "none"

    def encode(self, img: "torch.Tensor") -> "Features | None":
        """Encoder features of one 1×3×H×W frame (on the device, in the net's dtype); None when
        the frames come from the prior alone (a pair without one encodes its frames itself)."""
        if self.prior_only:
            return None
        with self.running():
            return self.net.encode(img, self.scale_for(img.shape[-2]))

    def __call__(
        self,
        img0: "torch.Tensor",
        img1: "torch.Tensor",
        t: "float | torch.Tensor",
        *,
        feats0: "Features | None" = None,
        feats1: "Features | None" = None,
        pair_flow: "torch.Tensor | None" = None,
        masks: Any = None,
    ) -> "tuple[torch.Tensor, int, int]":
        """Frames at ``t`` between B×3×H×W ``img0`` and ``img1`` (values in [0, 1]).

        Returns (B×3×H×W image, executed MACs, dense MACs), over the ``ensemble``
        views of the settings.  feats0/feats1: cached :meth:`encode` results;
        pair_flow: :meth:`prior`'s result (None runs without a prior); masks:
        forced pruning masks (benchmarks only; see :func:`vsugsp.model.masks.forced_masks`).
        """
        from .model.ensemble import ensemble_forward

        s = self.settings
        kw = {} if masks is None else {"masks": masks}

        def forward(mode: str) -> "tuple[torch.Tensor, int, int]":
            with self.running():
                return ensemble_forward(
                    self.net, img0, img1, t, s.ensemble, readings=s.readings,
                    mode=mode, backend=self.backend, threshold=s.threshold, max_density=self.max_density,
                    scale=self.scale_for(img0.shape[-2]), feats0=feats0, feats1=feats1, pair_flow=pair_flow,
                    refine=s.refine, **kw,
                )

        if masks is not None or (self.prior_only and pair_flow is not None):  # nothing to calibrate
            return forward(self._fixed_mode())
        return forward(self.mode_for(img0, forward))

    def _fixed_mode(self) -> str:
        return "pruned" if self.settings.mode == "auto" else self.settings.mode

    def mode_for(self, img0: "torch.Tensor", forward: "Any" = None) -> str:
        """The mode a pass on frames shaped like ``img0`` (B×3×H×W) runs: "pruned" or "dense".

        ``mode: auto`` is calibrated on the first pass of each frame size (``forward(mode)``
        runs one pass; :mod:`vsugsp.calibrate`); without ``forward`` an uncalibrated size
        reads as "pruned" (what the cache does not know yet).
        """
        if self.calibrator is None:
            return self._fixed_mode()
        b, _, h, w = img0.shape
        if forward is None:
            return self.calibrator.known(b, w, h) or "pruned"
        return self.calibrator.mode(b, w, h, forward)


def build_interpolator(settings: Preset, model: "str | Path | UGSPNet | None" = None) -> Interpolator:
    """The :class:`Interpolator` for ``settings`` (validated: see :func:`vsugsp.preset.load_preset`).

    model: weights name, ``.pt`` path or a ``UGSPNet`` (copied); None → ``settings.model``.
    Raises ``ValueError("vsugsp: ...")`` for a missing device, weights or CuPy
    kernel, or a DIS prior asked for without OpenCV.
    """
    from .hardware import cpu_bf16
    from .model import prior
    from .model.net import level_caps
    from .sparse import resolve_backend

    dev = resolve_device(settings.device)
    half = dev.type == "cuda" and settings.precision == "fp16"
    # "fp16" means native half precision: fp16 on CUDA, bf16 autocast on a CPU that has it
    bf16 = dev.type == "cpu" and settings.precision == "fp16" and cpu_bf16()
    net = resolve_model(settings.model if model is None else model, dev, half)
    wanted, flow_prior = settings.flow_prior, prior.resolve(settings.flow_prior, dev)
    if wanted in prior.AUTO and flow_prior == "none":
        log.warning(f"vsugsp: OpenCV is not installed, so flow_prior={wanted!r} runs without the DIS prior "
                    "(pip install opencv-python-headless)")
    if flow_prior != "none":
        try:  # fail now, with the install hint, not on the first frame
            prior.cv2_module()
        except ImportError as exc:
            raise ValueError(f"{exc} (preset key flow_prior={wanted!r})") from None
    calibrator = None
    if settings.mode == "auto":
        from .calibrate import Calibrator

        calibrator = Calibrator(dev, net, settings.to_dict())
        if not calibrator.calibrated:  # not measured here (the CPU): pruned, the very same path and frames
            settings, calibrator = dataclasses.replace(settings, mode="pruned"), None
    return Interpolator(
        net=net, device=dev, settings=settings,
        backend=resolve_backend(settings.backend, dev, "dense" if settings.mode == "dense" else "pruned"),
        flow_prior=flow_prior, cpu_bf16=bf16, max_density=level_caps(settings.max_density), calibrator=calibrator,
    )
