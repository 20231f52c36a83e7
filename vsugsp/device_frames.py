"""Source planes ↔ RGB tensors on the network's device, with the numbers of :mod:`vsugsp.colors`.

The frame path keeps frames on the device: a source frame goes up in its own
format (a 1080p YUV420P8 frame is 3 MB, its RGBS form 25 MB), is converted to
RGB there, and an output frame is converted back there and comes down once.
The conversions are torch ops, so the same code runs on CPU tensors.

They reproduce VapourSynth's ``resize`` as :func:`vsugsp.colors.to_rgb` /
:func:`~vsugsp.colors.from_rgb` use it (tested against them):

- integer samples ↔ float: ``x·scale + offset`` (limited range: luma 16..235,
  chroma 16..240 at 8 bits, scaled by 2^(bits−8); full range: 0..2^bits − 1,
  chroma centred on 2^(bits−1)); back: rounded to nearest, clamped to the code range;
- float YUV chroma is centred on 0 (−0.5..0.5), as in VapourSynth;
- chroma resampled as if each sample sat on luma pixel s·j (top-left siting,
  whatever ``_ChromaLocation`` says; the frames keep their own): up, linear
  between the two nearest samples (``resize.Bilinear``, the last one repeated past
  the edge); down, each sample takes its own luma pixel (``resize.Point``).  Down
  after up gives the samples back exactly, so a still frame comes back code for
  code; and a warp moves a moving frame's chroma smoothly.  The point upsampling
  used before (the nearest sample, by the true siting) made the warped chroma
  blocky: on bigbuckbunny the prior alone lost 0.3 / 0.5 dB in U / V against
  OpenCV's DIS peer, 0.18 dB of RGB PSNR (docs/evaluation.md).  The siting shift
  (at most half a luma pixel) moves both frames' chroma alike, so a warp does not
  see it;
- the matrices of ITU-T H.273 with constant coefficients (:data:`KR_KB`, and
  YCgCo); GRAY becomes three equal channels and comes back as their mean.

Float arithmetic differs from VapourSynth's in the last bits, so a converted
frame may differ from ``colors.py``'s by one rounding step in rare pixels.
:func:`matrix_supported` names the matrices handled here; the filter takes the
VapourSynth path for the others (constant-luminance and ICtCp).

CUDA: :class:`Transfer` uploads through pinned host buffers on an upload
stream and downloads on a download stream; on a CPU it only copies.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .colors import FAMILY_GRAY, FAMILY_RGB, RANGE_FULL, ColorSpec

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["PlaneFormat", "KR_KB", "matrix_supported", "to_rgb", "from_rgb", "Transfer"]

#: (Kr, Kb) per ``_Matrix`` code (H.273): 709, FCC, 470BG, 170M, 240M, 2020 NCL.
KR_KB: dict[int, tuple[float, float]] = {
    1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114),
    7: (0.212, 0.087), 9: (0.2627, 0.0593),
}
MATRIX_YCGCO = 8


def matrix_supported(matrix: int) -> bool:
    """Whether a YUV frame tagged with ``matrix`` (``_Matrix``) converts here (else: the VapourSynth path)."""
    return matrix in KR_KB or matrix == MATRIX_YCGCO


@dataclass(frozen=True)
class PlaneFormat:
    """What the conversions need of a ``vs.VideoFormat``: family, sample kind and depth, subsampling (log2)."""

    family: int
    bits: int
    is_float: bool
    ssw: int = 0
    ssh: int = 0

    @classmethod
    def of(cls, fmt: Any) -> "PlaneFormat":
        """From a ``vs.VideoFormat`` (read by attribute; VapourSynth itself is not imported)."""
        return cls(int(fmt.color_family), int(fmt.bits_per_sample), int(fmt.sample_type) == 1,
                   int(fmt.subsampling_w), int(fmt.subsampling_h))

    @property
    def planes(self) -> int:
        return 1 if self.family == FAMILY_GRAY else 3

    @property
    def numpy_dtype(self) -> np.dtype:
        if self.is_float:
            return np.dtype(np.float16 if self.bits == 16 else np.float32)
        return np.dtype(np.uint8 if self.bits <= 8 else np.uint16)


def _torch():
    import torch

    return torch


def _scale_offset(fmt: PlaneFormat, full: bool, chroma: bool) -> tuple[float, float]:
    """(scale, offset) with float = code·scale + offset, for integer samples (zimg's convention)."""
    k = 1 << (fmt.bits - 8)
    peak = (1 << fmt.bits) - 1
    if full:
        return 1.0 / peak, (-(1 << (fmt.bits - 1)) / peak if chroma else 0.0)
    if chroma:
        return 1.0 / (224 * k), -128.0 / 224
    return 1.0 / (219 * k), -16.0 / 219


def _coefficients(matrix: int) -> tuple[float, float, float, float]:
    """(V→R, U→G, V→G, U→B) of the YUV→RGB matrix (computed in double, used in float32)."""
    kr, kb = KR_KB[matrix]
    kg = 1.0 - kr - kb
    return 2 * (1 - kr), -2 * kb * (1 - kb) / kg, -2 * kr * (1 - kr) / kg, 2 * (1 - kb)


def _upsample(c: "torch.Tensor", dim: int, s: int) -> "torch.Tensor":
    """``c`` linearly upsampled along ``dim`` (0 or 1) by ``s``, sample j on pixel s·j.

    Returns the s phases along a new axis after ``dim``: phase k of sample j is
    c[j] + (k/s)·(c[j+1] − c[j]), the last sample repeated past the edge (what
    ``resize.Bilinear`` with top-left chroma siting computes).  Phase 0 is ``c``.
    """
    torch = _torch()
    n = c.shape[dim]
    step = torch.cat([c.narrow(dim, 1, n - 1), c.narrow(dim, n - 1, 1)], dim) - c
    return torch.stack([c] + [torch.add(c, step, alpha=k / s) for k in range(1, s)], dim + 1)


def _decode(plane: "torch.Tensor", fmt: PlaneFormat, full: bool, chroma: bool) -> "torch.Tensor":
    """One plane of samples → float32 (chroma of YUV centred on 0)."""
    torch = _torch()
    if fmt.is_float:
        x = plane.to(torch.float32)
        return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)  # NaN/inf samples read as 0
    scale, offset = _scale_offset(fmt, full, chroma)
    # three passes of one dtype each: a mixed uint8 + float op takes torch's slow casting loop
    return plane.to(torch.float32).mul_(scale).add_(offset)


def _weighted(terms: Sequence[tuple["torch.Tensor", float]], fmt: PlaneFormat, full: bool, chroma: bool,
              dtype: "torch.dtype") -> "torch.Tensor":
    """Σ weight·plane (float32 RGB planes) as samples of ``fmt``.

    Integers: the code scale folds into the weights and the offset (plus ½) into
    the first pass; then clamped to the code range and truncated, i.e. rounded
    to nearest (ties up).  Five passes over the plane for three terms.
    """
    torch = _torch()
    if fmt.is_float:
        (x0, w0), *rest = terms
        acc = torch.mul(x0, w0)
        for x, w in rest:
            acc.add_(x, alpha=w)
        return acc.to(dtype)
    scale, offset = _scale_offset(fmt, full, chroma)
    (x0, w0), *rest = terms
    bias = torch.tensor(-offset / scale + 0.5, dtype=torch.float32, device=x0.device)
    acc = torch.add(bias, x0, alpha=w0 / scale)  # one pass: the 0-d bias broadcasts (both float32)
    for x, w in rest:
        acc.add_(x, alpha=w / scale)
    return acc.clamp_(0, (1 << fmt.bits) - 1).to(dtype)


def _sample_dtype(fmt: PlaneFormat) -> "torch.dtype":
    torch = _torch()
    if fmt.is_float:
        return torch.float16 if fmt.bits == 16 else torch.float32
    return torch.uint8 if fmt.bits <= 8 else torch.int32  # uint16 codes fit int32 (torch's uint16 is thin)


def to_rgb(planes: Sequence["torch.Tensor"], fmt: PlaneFormat, spec: ColorSpec) -> "torch.Tensor":
    """A frame's planes (H×W each, chroma subsampled) → 1×3×H×W float32 RGB on their device.

    spec: the frame's colour description (:func:`vsugsp.colors.resolve_color`).
    """
    torch = _torch()
    full = spec.range == RANGE_FULL
    if fmt.family == FAMILY_GRAY:
        y = _decode(planes[0], fmt, full, False)
        return y.expand(3, -1, -1)[None].contiguous()
    if fmt.family == FAMILY_RGB:
        return torch.stack([_decode(p, fmt, full, False) for p in planes])[None]
    if not matrix_supported(spec.matrix):
        raise ValueError(f"vsugsp: matrix {spec.matrix} is not converted on the device")
    # Y = code·scale + offset; the offset joins the chroma terms (computed at the chroma's
    # own size: linear resampling commutes with the matrix), so each channel is one pass
    # over the raw luma: channel = chroma term + scale·code.
    if fmt.is_float:
        y, (scale, offset) = _decode(planes[0], fmt, full, False), (1.0, 0.0)
    else:
        y, (scale, offset) = planes[0].to(torch.float32), _scale_offset(fmt, full, False)
    h, w = y.shape
    u, v = (_decode(p, fmt, full, True) for p in planes[1:3])
    if spec.matrix == MATRIX_YCGCO:  # U = Cg, V = Co: R = Y − Cg + Co, G = Y + Cg, B = Y − Cg − Co
        adds = [v - u, u.clone(), -u - v]
    else:
        vr, ug, vg, ub = _coefficients(spec.matrix)
        adds = [v * vr, u * ug + v * vg, u * ub]
    for a in adds:
        a.add_(offset)
    out = torch.empty((1, 3, h, w), dtype=torch.float32, device=y.device)
    if not (fmt.ssw or fmt.ssh):
        for c in range(3):
            torch.add(adds[c], y, alpha=scale, out=out[0, c])
        return out
    sw, sh = 1 << fmt.ssw, 1 << fmt.ssh
    for c in range(3):
        full_w = adds[c] if sw == 1 else _upsample(adds[c], 1, sw).reshape(h >> fmt.ssh, w)
        up = _upsample(full_w, 0, sh) if sh > 1 else full_w[:, None]  # (h/sh, sh or 1, w)
        torch.add(up, y.view(h >> fmt.ssh, sh, w), alpha=scale, out=out[0, c].view(h >> fmt.ssh, sh, w))
    return out


def from_rgb(rgb: "torch.Tensor", fmt: PlaneFormat, spec: ColorSpec) -> list["torch.Tensor"]:
    """3×H×W RGB (any float dtype) → the planes of ``fmt`` coded as ``spec`` says, on its device.

    Integer planes come as uint8 (8 bits) or int32 (9–16 bits) holding the codes;
    float planes as float32/float16.
    """
    torch = _torch()
    full = spec.range == RANGE_FULL
    dtype = _sample_dtype(fmt)
    x = rgb.to(torch.float32)
    r, g, b = x[0], x[1], x[2]
    if fmt.family == FAMILY_GRAY:  # the mean of the channels
        return [_weighted([(r, 1 / 3), (g, 1 / 3), (b, 1 / 3)], fmt, full, False, dtype)]
    if fmt.family == FAMILY_RGB:
        return [_weighted([(c, 1.0)], fmt, full, False, dtype) for c in (r, g, b)]
    if not matrix_supported(spec.matrix):
        raise ValueError(f"vsugsp: matrix {spec.matrix} is not converted on the device")
    rows_y = _luma(spec.matrix)
    luma = _weighted(list(zip((r, g, b), rows_y)), fmt, full, False, dtype)
    if fmt.ssw or fmt.ssh:  # the chroma samples' own pixels only: point selection commutes with the matrix
        r, g, b = (c[:: 1 << fmt.ssh, :: 1 << fmt.ssw] for c in (r, g, b))
    rows_u, rows_v = _chroma(spec.matrix)
    return [luma, _weighted(list(zip((r, g, b), rows_u)), fmt, full, True, dtype),
            _weighted(list(zip((r, g, b), rows_v)), fmt, full, True, dtype)]


def _luma(matrix: int) -> tuple[float, float, float]:
    """The RGB→Y row of the matrix."""
    if matrix == MATRIX_YCGCO:
        return 0.25, 0.5, 0.25
    kr, kb = KR_KB[matrix]
    return kr, 1 - kr - kb, kb


def _chroma(matrix: int) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The RGB→U and RGB→V rows of the matrix."""
    if matrix == MATRIX_YCGCO:
        return (-0.25, 0.5, -0.25), (0.5, 0.0, -0.5)
    kr, kb = KR_KB[matrix]
    kg = 1 - kr - kb
    cb, cr = 2 * (1 - kb), 2 * (1 - kr)
    return (-kr / cb, -kg / cb, 0.5), (0.5, -kg / cr, -kb / cr)


class Transfer:
    """Moves planes between VapourSynth frames (host) and ``device``.

    CPU: an upload copies each plane into a tensor of its own (a frame's memory
    belongs to VapourSynth), a download is a view of the tensor.  CUDA: planes go
    through pinned buffers (torch's caching host allocator keeps a buffer until
    its copy is done), uploads on one stream, downloads on another; the only
    host sync is the download's.
    """

    def __init__(self, device: "torch.device") -> None:
        torch = _torch()
        self.device = device
        self.cuda = device.type == "cuda"
        self.up = torch.cuda.Stream(device) if self.cuda else None
        self.down = torch.cuda.Stream(device) if self.cuda else None

    def upload(self, planes: Sequence[np.ndarray], convert: Any) -> "torch.Tensor":
        """``convert(list of device planes)`` on the upload stream; the result is safe on the current stream."""
        torch = _torch()
        if not self.cuda:
            return convert([torch.from_numpy(_host(p)) for p in planes])
        with torch.cuda.stream(self.up):
            dev = []
            for p in planes:
                pinned = torch.empty(p.shape, dtype=_host_dtype(p.dtype), pin_memory=True)
                pinned.numpy()[...] = p
                dev.append(pinned.to(self.device, non_blocking=True))
            out = convert(dev)
        current = torch.cuda.current_stream(self.device)
        current.wait_stream(self.up)
        out.record_stream(current)  # made on the upload stream, used on the compute stream
        return out

    def download(self, image: "torch.Tensor", convert: Any, after: Any = None) -> list[np.ndarray]:
        """``convert(image)`` → planes, brought to host arrays; ``after``: the CUDA stream that made ``image``."""
        torch = _torch()
        if not self.cuda:
            return [_as_numpy(p) for p in convert(image)]
        with torch.cuda.stream(self.down):
            if after is not None:
                self.down.wait_stream(after)
            image.record_stream(self.down)
            host = []
            for p in convert(image):
                pinned = torch.empty(p.shape, dtype=p.dtype, pin_memory=True)
                pinned.copy_(p, non_blocking=True)
                host.append(pinned)
        self.down.synchronize()  # the one host sync per output frame
        return [_as_numpy(p) for p in host]


def _host(plane: np.ndarray) -> np.ndarray:
    """A writable, torch-readable copy of a frame plane (uint16 codes widened to int32)."""
    if plane.dtype == np.uint16:
        return plane.astype(np.int32)
    return np.array(plane, copy=True)


def _host_dtype(dtype: np.dtype) -> "torch.dtype":
    torch = _torch()
    return {np.dtype(np.uint8): torch.uint8, np.dtype(np.uint16): torch.int32, np.dtype(np.float16): torch.float16,
            np.dtype(np.float32): torch.float32}[np.dtype(dtype)]


def _as_numpy(t: "torch.Tensor") -> np.ndarray:
    return t.numpy()
