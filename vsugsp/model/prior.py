"""A classical flow prior for the network: OpenCV DIS optical flow between the two inputs.

The network can start its coarse-to-fine flow search from a prior instead of from
nothing (``UGSPNet.forward(pair_flow=...)``).  The prior is the pair's flow in both
directions, 0→1 and 1→0, at the frame's size in pixels; under linear motion the
flows from time t are ``t·F(1→0)`` towards frame 0 and ``(1−t)·F(0→1)`` towards
frame 1 (:func:`flows_at`).  DIS (Kroeger et al., ECCV 2016) is fast on a CPU and
strong on large motion, exactly where a small network trained on small crops is weak.

OpenCV (``opencv-python-headless``) is needed only when a prior is asked for.

DIS needs every level of its pyramid to hold a whole patch, and OpenCV picks the
pyramid's depth from the width, so short frames need a bounded width too (e.g. 8
pixels high: at most 39 wide; :func:`fits`, checked after any downscaling); frames it
cannot take run without the prior.  In the luma DIS reads, NaN reads as 0 and
infinities as the ends of [0, 1].
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np
import torch

from .motion import QuadLimits, quadratic_readings_torch
from .opencv import available, cv2_module  # noqa: F401  (this module's names since the prior came first)

PRESETS = {"ultrafast": "DISOPTICAL_FLOW_PRESET_ULTRAFAST", "fast": "DISOPTICAL_FLOW_PRESET_FAST",
           "medium": "DISOPTICAL_FLOW_PRESET_MEDIUM"}
# A DIS object keeps state between calls: its result for a pair depends on the sizes it
# computed before (OpenCV 4.x/5.x: up to 3.5 px apart at 176×144 after one 16×16 call).
# So there is one per thread, preset and frame size, and each starts with a call on a
# zero pair of its size; from then on its results depend on the pair alone.
_local = threading.local()
_MAX_SIZES = 4  # DIS objects kept per thread and preset


#: ``flow_prior`` settings that run DIS: (DIS preset, fraction of the frame size it runs at).
#: "dis-fast" runs on half-size frames (flows upsampled): a quarter of the pixels, and on
#: bigbuckbunny's first 48 frames the prior alone scores 34.44 dB against 34.49 at full size
#: (ultrafast at full size: 34.33, ultrafast at half size: 33.81).  Only on frames taller
#: than :data:`SCALED_ABOVE` lines, though.  "dis-light" runs OpenCV's lighter "fast" preset
#: (coarsest finest scale, fewer iterations) at full size, the CPU's playback prior: a fifth
#: of medium's cost (640×360: 7 against 33 ms a pair, both flows) for 0.06 dB less on the
#: training clips' held-out ends (benchmarks/results/priors-training-clips-cpu-2026-12-07.md).
VARIANTS: dict[str, tuple[str, float]] = {"dis": ("medium", 1.0), "dis-fast": ("medium", 0.5),
                                          "dis-light": ("fast", 1.0)}
#: A scaled DIS prior ("dis-fast") runs at full size on frames this tall or shorter.  On the
#: held-out tails of the training clips (DIS medium, quadratic, frame-drop protocol) the half-size
#: prior lost 0.07 / 0.21 dB on the two 640×480 clips and 0.13 dB on the 768×576 one (0.00 on
#: 320×240, a still camera), and such frames cost DIS at most 45 % of a 720p pair; the same
#: 576-line boundary as the ``fast`` preset's half-size network (``large_height``).
SCALED_ABOVE = 576
#: "auto" / "auto-fast" per device kind, where OpenCV is installed (else "none").  On a CPU
#: the full-size prior is measured best at the network's own cost.  On CUDA the prior still
#: runs on the CPU (0.35–0.4 s per 1080p pair), which would cap the GPU's frame rate, so
#: "auto" takes the half-size prior there (a quarter of the cost; within 0.05 dB of the
#: full-size one as the prior alone on bigbuckbunny, see VARIANTS).  No GPU measurement
#: of this choice exists yet.
AUTO_BY_DEVICE: dict[str, dict[str, str]] = {
    "cpu": {"auto": "dis", "auto-fast": "dis-fast"},
    "cuda": {"auto": "dis-fast", "auto-fast": "dis-fast"},
}
#: the CPU's choices (the names "auto" settings may take)
AUTO = AUTO_BY_DEVICE["cpu"]
#: Playback settings, with the prior they run per device kind where OpenCV is installed (else
#: "none").  "auto-realtime" on CUDA runs "dis-fast" where the prior pool keeps up with the
#: clip's frame rate, measured on the clip's first pair by the engine
#: (:func:`vsugsp.prior_pool.realtime_prior`; one log line says which and why), else "none"
#: (the network, its own flow, on the GPU).  On a CPU it runs "dis-light" with no measurement:
#: there the prior alone is the whole frame, and it beats the network on its own flow both in
#: speed and in quality (640×360 mpv playback 3.8× the frame rate; +0.7 / +1.0 dB on
#: carphone / bigbuckbunny, 2026-12-07).  :func:`resolve` gives the prior tried (the measurement is the engine's), so an
#: interpolator used outside the engine runs it unmeasured.
MEASURED: dict[str, dict[str, str]] = {"auto-realtime": {"cpu": "dis-light", "cuda": "dis-fast"}}
SETTINGS = ("none", *VARIANTS, *AUTO, *MEASURED)


def _kind(device: "str | torch.device") -> str:
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0].lower()
    if kind not in AUTO_BY_DEVICE:
        raise ValueError(f"vsugsp: flow prior for device {device!r}; allowed kinds: {', '.join(AUTO_BY_DEVICE)}")
    return kind


def resolve(setting: str, device: "str | torch.device" = "cpu") -> str:
    """A ``flow_prior`` setting made concrete for a device ("cpu", "cuda", "cuda:N" or a torch.device).

    "auto" / "auto-fast" take :data:`AUTO_BY_DEVICE`'s choice and a :data:`MEASURED`
    setting the prior it runs (CPU) or tries (CUDA), where OpenCV is installed, else
    "none"; the other settings stand as they are.
    """
    if setting not in SETTINGS:
        raise ValueError(f"vsugsp: flow_prior={setting!r}; allowed: {', '.join(SETTINGS)}")
    if setting in MEASURED:
        return MEASURED[setting][_kind(device)] if available() else "none"
    if setting in AUTO:
        return AUTO_BY_DEVICE[_kind(device)][setting] if available() else "none"
    return setting


def describe(setting: str, device: "str | torch.device" = "cpu") -> str:
    """What ``setting`` runs on ``device``, for reports: e.g. "dis-fast (auto on cuda)"."""
    chosen = resolve(setting, device)
    if setting in MEASURED:
        why = "" if available() else ", OpenCV missing"
        measured = chosen != "none" and _kind(device) == "cuda"
        kept = " where the prior pool keeps up with the source, else none" if measured else ""
        return f"{chosen}{kept} ({setting} on {_kind(device)}{why})"
    if setting in AUTO:
        why = "" if available() else ", OpenCV missing"
        return f"{chosen} ({setting} on {_kind(device)}{why})"
    return chosen


def prior_for(setting: str, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor | None:
    """The pair flow a resolved ``flow_prior`` setting gives for B×3×H×W frames; None for "none" or tiny frames.

    A scaled variant runs at full size on frames of at most :data:`SCALED_ABOVE` lines.
    """
    if setting == "none":
        return None
    preset, scale = VARIANTS[setting]
    if img0.shape[-2] <= SCALED_ABOVE:
        scale = 1.0
    if not fits(img0.shape[-2], img0.shape[-1], preset):
        return None
    return pair_flow(img0, img1, preset, scale)


#: (patch size, finest pyramid scale) of OpenCV's DIS presets (OpenCV 4.x/5.x defaults).
PRESET_GEOMETRY: dict[str, tuple[int, int]] = {"ultrafast": (8, 2), "fast": (8, 2), "medium": (8, 1)}


def dis_levels(height: int, width: int, preset: str = "medium") -> tuple[int, int] | None:
    """OpenCV DIS's coarsest pyramid scale and patch size for a ``height``×``width`` frame (None: it refuses).

    OpenCV's own choice, restated: the coarsest scale is the smaller of round(log2(long
    side / 4·patch)) and floor(log2(short side / patch)) (C truncation toward zero).  When
    that falls below the preset's finest scale, OpenCV (4.8+) re-picks it from the
    *width alone* as floor(log2(2·width / (5·patch))), so a wide, short frame gets a
    pyramid deeper than its height allows.
    """
    patch, finest = PRESET_GEOMETRY[preset]
    if height < 1 or width < 1:
        return None
    coarsest = min(int(math.log(max(height, width) / (4.0 * patch)) / math.log(2.0) + 0.5),
                   int(math.log(min(height, width) / patch) / math.log(2.0)))
    if coarsest < 0:
        return None  # OpenCV: "The input image must have either width or height >= 12"
    if coarsest < finest:
        coarsest = max(0, math.floor(math.log2(2.0 * width / (5.0 * patch))))
    return coarsest, patch


def fits(height: int, width: int, preset: str = "medium") -> bool:
    """True when DIS ``preset`` computes a flow for ``height``×``width`` frames safely (else: run without it).

    Safe means every pyramid level OpenCV builds holds a whole patch (8 pixels) on both
    sides.  Below that OpenCV 5.1 raises ``inv_scale_x > 0`` (a level 0 pixels high:
    1024×8, 4096×12, 8192×8, 320×10) or reads outside its buffers and crashes the
    process (64×8, 128×8, 48×8, 64×12, 128×16 with "fast").  Checked against OpenCV on
    11,376 sizes from 1 to 8192 pixels (tests/test_prior.py runs a sample in a child process).
    """
    if preset not in PRESET_GEOMETRY:
        raise ValueError(f"vsugsp: DIS preset must be one of {sorted(PRESET_GEOMETRY)}, got {preset!r}")
    levels = dis_levels(height, width, preset)
    if levels is None:
        return False
    coarsest, patch = levels
    return min(height, width) >> coarsest >= patch


def dis(preset: str, shape: tuple[int, int]):
    """This thread's DIS object for ``preset`` ("ultrafast", "fast", "medium") and H×W ``shape``.

    A new object first computes a zero pair of ``shape``, so every object of that
    size is in the same state however many pairs it has computed.  A shape that
    :func:`fits` refuses raises ValueError (OpenCV would crash the process on some).
    """
    if preset not in PRESETS:
        raise ValueError(f"vsugsp: DIS preset must be one of {sorted(PRESETS)}, got {preset!r}")
    if not fits(shape[0], shape[1], preset):
        raise ValueError(f"vsugsp: DIS ({preset}) cannot take {shape[1]}×{shape[0]} frames safely (see prior.fits)")
    cv2 = cv2_module()
    cache = getattr(_local, "dis", None)
    if cache is None:
        cache = _local.dis = OrderedDict()
    key = (preset, tuple(shape))
    obj = cache.get(key)
    if obj is None:
        obj = cv2.DISOpticalFlow_create(getattr(cv2, PRESETS[preset]))
        zero = np.zeros(shape, np.uint8)
        obj.calc(zero, zero, None)
        cache[key] = obj
        while len(cache) > _MAX_SIZES * len(PRESETS):
            cache.popitem(last=False)
    cache.move_to_end(key)
    return obj


def gray_u8(img: torch.Tensor) -> np.ndarray:
    """Luma (BT.601 weights) of B×3×H×W RGB frames in [0, 1] as contiguous uint8 B×H×W (on the CPU).

    Samples are clamped to [0, 1] (infinities to its ends) and NaN reads as 0.  Computed on the frames'
    own planes with torch (no H×W×3 copy): at 720p 6 against 23 ms a frame in numpy, where
    two frames cost as much as a half-size DIS pair.
    """
    x = img.detach().float().clamp(0, 1).nan_to_num(nan=0.0, posinf=0.0, neginf=0.0).cpu() * 255.0
    y = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    return y.round_().clamp_(0, 255).to(torch.uint8).contiguous().numpy()


def pair_flow_np(g0: np.ndarray, g1: np.ndarray, preset: str = "medium") -> tuple[np.ndarray, np.ndarray]:
    """DIS flows (H×W×2 float32, pixels, x then y) 0→1 and 1→0 of two uint8 H×W luma frames.

    F(0→1)(p) is where pixel p of frame 0 lies in frame 1: ``g1(p + F(0→1)(p)) ≈ g0(p)``.
    """
    if g0.shape != g1.shape:
        raise ValueError(f"vsugsp: DIS needs frames of one size, got {g0.shape} and {g1.shape}")
    d = dis(preset, g0.shape)
    return d.calc(g0, g1, None), d.calc(g1, g0, None)


def _upsample_flow(flow: np.ndarray, h: int, w: int) -> np.ndarray:
    """An h'×w'×2 flow resized to h×w with its vectors scaled to the new pixels."""
    cv2 = cv2_module()
    fh, fw = flow.shape[:2]
    up = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
    up[..., 0] *= w / fw
    up[..., 1] *= h / fh
    return up


@torch.no_grad()
def pair_flow(img0: torch.Tensor, img1: torch.Tensor, preset: str = "medium", scale: float = 1.0) -> torch.Tensor:
    """DIS prior of B×3×H×W frames in [0, 1]: B×4×H×W fp32 on their device, (F(0→1), F(1→0)) in pixels.

    Runs on the CPU (OpenCV), one image pair at a time.  ``scale`` in (0, 1]: DIS runs on
    frames area-downscaled by it and the flows are upsampled (bilinear) and rescaled to
    the frame's pixels.  Frames smaller than :func:`fits` allows are refused (callers run
    those without the prior).
    """
    if not 0 < scale <= 1:
        raise ValueError(f"vsugsp: prior scale={scale!r}; allowed: 0 < scale <= 1")
    if img0.shape != img1.shape or img0.dim() != 4 or img0.shape[1] != 3:
        raise ValueError(f"vsugsp: frames must both be B×3×H×W, got {tuple(img0.shape)} and {tuple(img1.shape)}")
    if not fits(img0.shape[2], img0.shape[3], preset):
        raise ValueError(f"vsugsp: the DIS flow prior cannot take {img0.shape[3]}×{img0.shape[2]} frames (OpenCV's "
                         f"DIS needs 8 pixels on each side at every pyramid level, whose depth it picks from the "
                         f"width); run them without it")
    a, b = gray_u8(img0), gray_u8(img1)
    out = np.empty((a.shape[0], 4, a.shape[1], a.shape[2]), np.float32)
    h, w = a.shape[1:3]
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    small = (sh, sw) != (h, w) and fits(sh, sw, preset)  # else DIS runs on the full-size frames
    for i in range(a.shape[0]):
        g0, g1 = a[i], b[i]
        if small:
            cv2 = cv2_module()
            g0, g1 = (cv2.resize(g, (sw, sh), interpolation=cv2.INTER_AREA) for g in (g0, g1))
        f01, f10 = pair_flow_np(g0, g1, preset)
        if small:
            f01, f10 = (_upsample_flow(f, h, w) for f in (f01, f10))
        out[i, :2] = f01.transpose(2, 0, 1)
        out[i, 2:] = f10.transpose(2, 0, 1)
    return torch.from_numpy(out).to(img0.device)


def flows_at(pair: torch.Tensor, t: torch.Tensor, px_scale: float = 1.0, reading: str = "mixed") -> torch.Tensor:
    """Flows from time t (B×1×1×1 in (0, 1)) to frames 0 and 1 from a B×4 pair flow or a B×8 motion.

    Returns B×4×H×W, the network's flow layout: F(t→0) then F(t→1).  A B×4 pair moves
    linearly; a B×8 motion (:func:`vsugsp.model.motion.motion_tensor`: the pair flow and its
    outer neighbours' flows) on a quadratic path (:func:`vsugsp.model.motion.quadratic_flows_at_torch`,
    the linear numbers where no acceleration is trusted).  ``reading``
    (:data:`vsugsp.model.motion.READINGS`): through which frame's flows each side is read;
    "mixed" (the network's prior, what it was trained on) is ``t·F(1→0)`` then
    ``(1−t)·F(0→1)`` under linear motion, "both" (the prior alone's) the mean of that and
    each frame's own trajectory.  ``px_scale``: this grid's pixels per frame pixel (below 1
    for a motion resized down to the grid a scaled network runs on), so that the quadratic
    path trusts the same accelerations, in frame pixels, at any size.
    """
    return flows_at_readings(pair, t, (reading,), px_scale)[0]


def flows_at_readings(pair: torch.Tensor, t: torch.Tensor, readings: tuple[str, ...],
                      px_scale: float = 1.0) -> list[torch.Tensor]:
    """:func:`flows_at` for each of ``readings`` (validated by
    :func:`~vsugsp.model.motion.quadratic_readings_torch`), in order, the motion's acceleration
    estimated once."""
    t = t.to(pair.dtype)
    if pair.shape[1] == 8:
        base = QuadLimits()
        limits = base if px_scale == 1.0 else QuadLimits(base.max_accel * px_scale, base.tolerance * px_scale,
                                                          base.rel_tolerance)
        return quadratic_readings_torch(pair[:, 0:2], pair[:, 2:4], pair[:, 4:6], pair[:, 6:8], t, limits, readings)
    return quadratic_readings_torch(pair[:, 0:2], pair[:, 2:4], None, None, t, readings=readings)  # linear


def swap(pair: torch.Tensor) -> torch.Tensor:
    """The pair flow (or B×8 motion) of the time-swapped pair (frame 1 first)."""
    if pair.shape[1] == 8:  # F01, F10, F0m, F12 → F10, F01, F12, F0m
        return torch.cat([pair[:, 2:4], pair[:, 0:2], pair[:, 6:8], pair[:, 4:6]], 1)
    return torch.cat([pair[:, 2:], pair[:, :2]], 1)


def mirror(pair: torch.Tensor) -> torch.Tensor:
    """The pair flow (or B×8 motion) of the horizontally mirrored frames."""
    sign = pair.new_tensor([-1.0, 1.0] * (pair.shape[1] // 2)).view(1, -1, 1, 1)
    return pair.flip(-1) * sign
