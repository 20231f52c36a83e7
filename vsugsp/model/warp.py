"""Backward warping and flow resizing."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .opencv import exact_remap

_GRIDS: dict[tuple, torch.Tensor] = {}
_PIXELS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
#: The OpenCV warp takes images of at most this many channels (frames, flows); grid_sample
#: weighs each pixel once for all of a feature map's channels, OpenCV once per channel.
REMAP_MAX_CHANNELS = 4


def _base_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    key = (h, w, device, dtype)
    g = _GRIDS.get(key)
    if g is None:
        ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype)
        g = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).unsqueeze(0)
        if len(_GRIDS) > 64:
            _GRIDS.clear()
        _GRIDS[key] = g
    return g


def _grid(flow: torch.Tensor) -> torch.Tensor:
    """The fp32 sampling grid of ``p + flow(p)``, normalised for ``align_corners=True``: B×H×W×2."""
    _, _, h, w = flow.shape
    flow = flow.float()
    scale = flow.new_tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)]).view(1, 1, 1, 2)
    return _base_grid(h, w, flow.device, torch.float32) + flow.permute(0, 2, 3, 1) * scale


def _sample(img: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(img.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)


def _pixels(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The x and y pixel coordinates of an h×w grid, float32 (cached)."""
    g = _PIXELS.get((h, w))
    if g is None:
        if len(_PIXELS) > 16:
            _PIXELS.clear()
        g = _PIXELS[(h, w)] = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return g


def _remap(cv2, img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """:func:`backwarp` by OpenCV's bilinear remap, plane by plane (fp32, on the CPU)."""
    b, c, h, w = flow.shape[0], img.shape[1], flow.shape[2], flow.shape[3]
    gx, gy = _pixels(h, w)
    src = img.detach().float()
    moves = flow.detach().float().numpy()
    out = np.empty((b, c, h, w), np.float32)
    for k in range(b):
        mx, my = gx + moves[k, 0], gy + moves[k, 1]
        for ch in range(c):
            plane = np.ascontiguousarray(src[k, ch].numpy())
            cv2.remap(plane, mx, my, cv2.INTER_LINEAR, dst=out[k, ch], borderMode=cv2.BORDER_REPLICATE)
    return torch.from_numpy(out).to(img.dtype)


def backwarp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``img`` (B×C×H×W) at ``p + flow(p)``; flow B×2×H×W in pixels (x, y).

    Out-of-frame samples take the nearest border pixel.  The sampling grid is always
    fp32: in fp16/bf16 a normalised coordinate on a 1280-px row is off by up to
    0.6/2.5 px, which costs the half-precision presets dB on real footage.  Half
    precision ``img`` is sampled in fp32 and returned in its own dtype.  On the CPU,
    without gradients, images of up to :data:`REMAP_MAX_CHANNELS` channels go through
    OpenCV's remap where it weighs exactly (:func:`vsugsp.model.opencv.exact_remap`): the
    same numbers to 1.5e-4 at 720p with 20-pixel moves (grid_sample's normalised grid
    rounds), at 3× its speed (720p RGB: 4.7 against 15 ms).
    """
    if (img.device.type == "cpu" and img.shape[1] <= REMAP_MAX_CHANNELS
            and not (torch.is_grad_enabled() and (img.requires_grad or flow.requires_grad))):
        cv2 = exact_remap()
        if cv2 is not None:
            return _remap(cv2, img, flow)
    return _sample(img, _grid(flow)).to(img.dtype)


class Warp:
    """``backwarp(img, flow)``, evaluated only where it is read.

    A pruned decoder reads its warped features at the active tiles only: the tile
    backend asks for those pixels (:meth:`at`), every other reader for the whole
    (:meth:`dense`).  Both give the numbers ``backwarp`` gives at those pixels.
    """

    __slots__ = ("img", "flow")

    def __init__(self, img: torch.Tensor, flow: torch.Tensor) -> None:
        self.img, self.flow = img, flow

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.flow.shape[0], self.img.shape[1], *self.flow.shape[-2:]))

    @property
    def dtype(self) -> torch.dtype:
        return self.img.dtype

    def dense(self) -> torch.Tensor:
        return backwarp(self.img, self.flow)

    def at(self, index: torch.Tensor) -> torch.Tensor:
        """The warped values at flat pixel indices into B·H·W (sorted): P×C in ``img``'s dtype."""
        b, c, h, w = self.shape
        grid = _grid(self.flow).reshape(-1, 2)
        img = self.img
        if img.shape[0] == 1 or img.stride(0) == 0:  # one frame's features serving every t: one call
            g = grid.index_select(0, index).view(1, 1, -1, 2)
            return _sample(img[:1], g)[0, :, 0].t().to(img.dtype)
        out = []
        bounds = torch.searchsorted(index, torch.arange(b + 1, device=index.device) * (h * w))
        for k in range(b):
            g = grid.index_select(0, index[bounds[k] : bounds[k + 1]]).view(1, 1, -1, 2)
            out.append(_sample(img[k : k + 1], g)[0, :, 0].t().to(img.dtype))
        return torch.cat(out, 0)


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a flow field (B×2k×H×W: k flows, x then y), scaling its vectors with the size change."""
    h, w = flow.shape[-2:]
    if (h, w) == tuple(size):
        return flow
    out = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    sx, sy = size[1] / w, size[0] / h
    return out * out.new_tensor([sx, sy] * (flow.shape[1] // 2)).view(1, -1, 1, 1)


def up2(x: torch.Tensor) -> torch.Tensor:
    """×2 bilinear upsampling of features or logits (values unchanged)."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
