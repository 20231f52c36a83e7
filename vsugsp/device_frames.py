"""Source planes ↔ RGB tensors on the network's device, with the numbers of :mod:`vsugsp.colors`.

The frame path keeps frames on the device: a source frame goes up in its own
format (a 1080p YUV420P8 frame is 3 MB, its RGBS form 25 MB), is converted to
RGB there, and an output frame is converted back there and comes down once.
The conversions are torch ops, so the same code runs on CPU tensors.

They reproduce VapourSynth's ``resize.Point`` as :func:`vsugsp.colors.to_rgb` /
:func:`~vsugsp.colors.from_rgb` use it (tested against them):

- integer samples ↔ float: ``x·scale + offset`` (limited range: luma 16..235,
  chroma 16..240 at 8 bits, scaled by 2^(bits−8); full range: 0..2^bits − 1,
  chroma centred on 2^(bits−1)); back: rounded to nearest, clamped to the code range;
- float YUV chroma is centred on 0 (−0.5..0.5), as in VapourSynth;
- chroma point-resampled by its siting (``_ChromaLocation``): up, every luma
  pixel takes the nearest chroma sample (ties to the later one); down, every
  chroma sample takes the luma pixel nearest its position (ties to the later);
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

from .colors import FAMILY_GRAY, FAMILY_RGB, FAMILY_YUV, RANGE_FULL, ColorSpec

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


def _nearest(n_out: int, s: int, twice_off: int, n_in: int, device: Any, up: bool) -> "torch.Tensor":
    """Point-resampling indices: up (chroma sample per luma pixel) or down (luma pixel per chroma sample).

    s: subsampling factor; twice_off: twice the chroma siting offset in luma pixels
    (0 left/top, s − 1 centre, 2(s − 1) bottom).  Ties go to the later sample, as in zimg.
    """
    torch = _torch()
    k = torch.arange(n_out, device=device)
    if up:  # chroma coordinate (x − off)/s, rounded half up: floor((2x − 2off + s) / 2s)
        idx = torch.div(2 * k - twice_off + s, 2 * s, rounding_mode="floor")
    else:  # luma coordinate s·j + off, rounded half up
        idx = torch.div(2 * s * k + twice_off + 1, 2, rounding_mode="floor")
    return idx.clamp_(0, n_in - 1)


def _siting(chromaloc: int, ssw: int, ssh: int) -> tuple[int, int]:
    """Twice the horizontal and vertical chroma offsets (luma pixels) of an H.273 chroma location."""
    sw, sh = 1 << ssw, 1 << ssh
    horiz = 0 if chromaloc in (0, 2, 4) else sw - 1
    vert = {0: sh - 1, 1: sh - 1, 2: 0, 3: 0, 4: 2 * (sh - 1), 5: 2 * (sh - 1)}[chromaloc]
    return horiz, vert


def _decode(plane: "torch.Tensor", fmt: PlaneFormat, full: bool, chroma: bool) -> "torch.Tensor":
    """One plane of samples → float32 (chroma of YUV centred on 0)."""
    torch = _torch()
    if fmt.is_float:
        x = plane.to(torch.float32)
        return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)  # NaN/inf samples read as 0
    scale, offset = _scale_offset(fmt, full, chroma)
    return plane.to(torch.float32).mul_(scale).add_(offset)


def _encode(x: "torch.Tensor", fmt: PlaneFormat, full: bool, chroma: bool, dtype: "torch.dtype") -> "torch.Tensor":
    """float32 → samples of ``fmt`` (integers rounded to nearest and clamped to the code range)."""
    if fmt.is_float:
        return x.to(dtype)
    scale, offset = _scale_offset(fmt, full, chroma)
    # the inverse of _decode: (x − offset) / scale, as x·(1/scale) − offset/scale
    return x.mul(1.0 / scale).add_(-offset / scale).round_().clamp_(0, (1 << fmt.bits) - 1).to(dtype)


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
    y = _decode(planes[0], fmt, full, False)
    h, w = y.shape
    u, v = (_decode(p, fmt, full, True) for p in planes[1:3])
    if fmt.ssw or fmt.ssh:
        ox, oy = _siting(spec.chromaloc, fmt.ssw, fmt.ssh)
        rows = _nearest(h, 1 << fmt.ssh, oy, u.shape[0], y.device, up=True)
        cols = _nearest(w, 1 << fmt.ssw, ox, u.shape[1], y.device, up=True)
        u, v = (c.index_select(0, rows).index_select(1, cols) for c in (u, v))
    out = torch.empty((1, 3, h, w), dtype=torch.float32, device=y.device)
    if spec.matrix == MATRIX_YCGCO:  # U = Cg, V = Co
        t = y - u
        torch.add(t, v, out=out[0, 0])
        torch.add(y, u, out=out[0, 1])
        torch.sub(t, v, out=out[0, 2])
        return out
    vr, ug, vg, ub = _coefficients(spec.matrix)
    torch.add(y, v, alpha=vr, out=out[0, 0])
    torch.add(y, u, alpha=ug, out=out[0, 1]).add_(v, alpha=vg)
    torch.add(y, u, alpha=ub, out=out[0, 2])
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
    if fmt.family == FAMILY_GRAY:
        return [_encode((x[0] + x[1] + x[2]) / 3, fmt, full, False, dtype)]  # as Expr "x y + z + 3 /"
    if fmt.family == FAMILY_RGB:
        return [_encode(x[c], fmt, full, False, dtype) for c in range(3)]
    if not matrix_supported(spec.matrix):
        raise ValueError(f"vsugsp: matrix {spec.matrix} is not converted on the device")
    r, g, b = x[0], x[1], x[2]
    luma = _luma(r, g, b, spec.matrix)
    if fmt.ssw or fmt.ssh:  # the chroma samples' own pixels only: point selection commutes with the matrix
        h, w = r.shape
        ox, oy = _siting(spec.chromaloc, fmt.ssw, fmt.ssh)
        rows = _nearest(h >> fmt.ssh, 1 << fmt.ssh, oy, h, x.device, up=False)
        cols = _nearest(w >> fmt.ssw, 1 << fmt.ssw, ox, w, x.device, up=False)
        r, g, b = (c.index_select(0, rows).index_select(1, cols) for c in (r, g, b))
    u, v = _chroma(r, g, b, spec.matrix)
    return [_encode(luma, fmt, full, False, dtype), _encode(u, fmt, full, True, dtype),
            _encode(v, fmt, full, True, dtype)]


def _luma(r: "torch.Tensor", g: "torch.Tensor", b: "torch.Tensor", matrix: int) -> "torch.Tensor":
    if matrix == MATRIX_YCGCO:
        return (r * 0.25 + g * 0.5) + b * 0.25
    kr, kb = KR_KB[matrix]
    return (r * kr + g * (1 - kr - kb)) + b * kb


def _chroma(r: "torch.Tensor", g: "torch.Tensor", b: "torch.Tensor", matrix: int):
    if matrix == MATRIX_YCGCO:
        return (r * -0.25 + g * 0.5) + b * -0.25, r * 0.5 + b * -0.5
    kr, kb = KR_KB[matrix]
    kg = 1 - kr - kb
    cb, cr = 2 * (1 - kb), 2 * (1 - kr)
    u = (r * (-kr / cb) + g * (-kg / cb)) + b * 0.5
    v = (r * 0.5 + g * (-kg / cr)) + b * (-kb / cr)
    return u, v


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
