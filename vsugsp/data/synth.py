"""Synthetic frame-interpolation triplets with exact ground-truth flow.

A scene is a stack of layers cut from real photographs: an opaque background
(the "camera" view) and 1-4 foreground patches with soft alpha shapes.  Every
layer moves rigidly (translation, rotation, zoom) as a function of normalised
time tau in [0, 1]; translation is quadratic in tau (velocity + acceleration),
so the frame at tau = t is *not* the linear midpoint of frames 0 and 1.
Frames are rendered by inverse mapping (cv2.warpAffine with WARP_INVERSE_MAP)
and composited front to back.  Because every layer's motion is an affine map,
the flow from time t to tau = 0/1 of the surface seen at a pixel is exact.

Conventions (shared by every dataset in :mod:`vsugsp.data`):

- images are float32 C x H x W in [0, 1], RGB;
- flows are float32 2 x H x W in pixels (x then y), in pixel-index coordinates
  (pixel centres at integers), such that ``I_t(x) ~= I_0(x + F_t0(x))`` and
  ``I_t(x) ~= I_1(x + F_t1(x))`` wherever the surface is visible in frame 0/1
  (grid_sample with ``align_corners=True`` after normalising ``x + F``);
- ``valid`` (1 x H x W) is 1 where the flow is well defined (one layer covers
  the pixel, not a blend of two on a soft edge); ``vis0``/``vis1`` are 1 where
  that surface point is also visible (not occluded, inside the frame) in frame
  0/1.  Datasets without flow give zeros for flows, ``valid``, ``vis0``, ``vis1``.

Degradations: lighting change (gain/offset linear in tau) and motion blur are
properties of the scene and apply to all three frames.  Sensor noise and JPEG
compression apply to the two *input* frames only; the ground truth stays clean.
Per-frame noise cannot be predicted from the inputs, so with an L1 loss a noisy
target only adds variance, not a different optimum; keeping it clean lowers the
loss noise and teaches the network not to reproduce compression blocks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch

__all__ = [
    "SynthConfig",
    "SynthTriplets",
    "render_triplet",
    "make_heldout",
    "KEYS",
    "NEIGHBOUR_KEYS",
]

# keys of every sample dict produced by vsugsp.data datasets
KEYS = ("img0", "img1", "gt", "t", "flow_t0", "flow_t1", "valid", "vis0", "vis1")
#: optional keys of datasets asked for the outer neighbours (``neighbours``): frames -1 and 2
#: (3 x H x W, NaN where a neighbour does not exist), for the quadratic-motion prior
NEIGHBOUR_KEYS = ("img_prev", "img_next")

# OpenCV uses several threads per call by default; dataloader workers already
# run in parallel and the machine is small, so one thread per process.
cv2.setNumThreads(1)


#: SynthConfig.interp → OpenCV interpolation flag
_INTERP = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of the synthetic scene generator.

    Motions are in pixels of the output crop per frame interval (tau 0 -> 1).
    Probabilities are per sample, in [0, 1].
    """

    size: int = 128                          # output crop side S (px)
    max_motion: float = 24.0                 # background (camera) displacement 0->1, px
    fg_motion: float = 32.0                  # foreground displacement 0->1, px
    motion_gamma: float = 1.5                # magnitude = max * u**gamma (>1 favours small motion)
    accel: float = 1.0                       # |acceleration| up to accel * the layer's displacement (px)
    bg_rot: float = 3.0                      # background rotation 0->1, degrees (max abs)
    fg_rot: float = 20.0                     # foreground rotation 0->1, degrees (max abs)
    bg_zoom: float = 0.06                    # background log-zoom change 0->1 (max abs)
    fg_zoom: float = 0.15                    # foreground log-zoom change 0->1 (max abs)
    bg_scale: tuple[float, float] = (0.35, 1.2)   # screen px per photo px for the background
    n_fg: tuple[int, int] = (1, 4)           # number of foreground layers, inclusive range
    fg_size: tuple[float, float] = (0.2, 0.75)   # foreground patch side as a fraction of S
    edge_sigma: tuple[float, float] = (0.3, 1.5)  # alpha edge softness (px, Gaussian sigma)
    p_flat: float = 0.1                      # chance a foreground is a flat colour gradient
    p_lighting: float = 0.3                  # global gain/offset change over time
    max_gain: float = 0.15                   # |gain - 1| at either end
    max_offset: float = 0.04                 # |offset| at either end (in [0,1] units)
    p_blur: float = 0.15                     # motion blur (sub-frame average)
    max_exposure: float = 0.5                # shutter open fraction of the frame interval
    blur_subframes: int = 5
    p_noise: float = 0.3                     # Gaussian noise on the inputs
    max_noise: float = 0.02                  # noise sigma (in [0,1] units)
    p_jpeg: float = 0.3                      # JPEG compression of the inputs
    jpeg_quality: tuple[int, int] = (40, 95)
    t: float | None = None                   # None: t ~ U(t_range); a float: fixed t
    t_range: tuple[float, float] = (0.02, 0.98)
    valid_threshold: float = 0.95            # min weight of the front layer for valid=1
    # resampling of the layer warps: "linear" blurs by a sub-pixel-phase-dependent
    # amount (none at whole pixels, a [1/2, 1/2] kernel at half pixels), so the three
    # frames of a triplet differ in sharpness; "cubic"/"lanczos" keep them alike
    interp: str = "linear"
    # also render the outer neighbours (tau = -1 and 2, same motion, lighting, blur and input
    # degradations) as ``img_prev`` / ``img_next``: the quadratic-motion prior's frames -1 and 2
    neighbours: bool = False

    def __post_init__(self) -> None:
        if not 16 <= int(self.size) <= 4096:
            raise ValueError(f"vsugsp: SynthConfig.size={self.size!r}; allowed 16..4096")
        if self.t is not None and not 0.0 <= float(self.t) <= 1.0:
            raise ValueError(f"vsugsp: SynthConfig.t={self.t!r}; allowed None or a float in [0, 1]")
        lo, hi = self.n_fg
        if not 0 <= lo <= hi <= 16:
            raise ValueError(f"vsugsp: SynthConfig.n_fg={self.n_fg!r}; allowed (lo, hi) with 0 <= lo <= hi <= 16")
        if self.interp not in _INTERP:
            raise ValueError(f"vsugsp: SynthConfig.interp={self.interp!r}; allowed: {', '.join(_INTERP)}")
        for name in ("p_flat", "p_lighting", "p_blur", "p_noise", "p_jpeg"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"vsugsp: SynthConfig.{name}={v!r}; allowed a probability in [0, 1]")
        for name in ("max_motion", "fg_motion", "accel", "bg_rot", "fg_rot", "bg_zoom", "fg_zoom",
                     "max_gain", "max_offset", "max_exposure", "max_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"vsugsp: SynthConfig.{name}={getattr(self, name)!r}; must be >= 0")

    def clean(self) -> "SynthConfig":
        """Same motion statistics, no lighting change, blur, noise or JPEG."""
        return replace(self, p_lighting=0.0, p_blur=0.0, p_noise=0.0, p_jpeg=0.0)

    def static(self) -> "SynthConfig":
        """A config with no motion at all (a still scene)."""
        return replace(self, max_motion=0.0, fg_motion=0.0, accel=0.0, bg_rot=0.0,
                       fg_rot=0.0, bg_zoom=0.0, fg_zoom=0.0)


# --------------------------------------------------------------------------- layers


@dataclass
class _Layer:
    rgba: np.ndarray          # h x w x 4 uint8 texture; h x w x 3 for the opaque background
    centre: np.ndarray        # texture point that sits at p(tau) on screen, (2,)
    p0: np.ndarray            # screen position at tau = 0 (px)
    vel: np.ndarray           # px per interval
    acc: np.ndarray           # px per interval^2
    theta0: float             # radians
    omega: float              # radians per interval
    logz0: float
    dlogz: float              # log-zoom change per interval
    border: int               # cv2 border mode outside the texture

    def to_screen(self, tau: float) -> np.ndarray:
        """3x3 affine texture -> screen at time tau."""
        z = math.exp(self.logz0 + self.dlogz * tau)
        th = self.theta0 + self.omega * tau
        c, s = math.cos(th) * z, math.sin(th) * z
        p = self.p0 + self.vel * tau + 0.5 * self.acc * tau * tau
        m = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        m[:2, 2] = p - m[:2, :2] @ self.centre
        return m


def _inv_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 3x3 affine matrix (closed-form 2x2 inverse; called a lot)."""
    a, b, c, d = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    det = a * d - b * c
    out = np.empty((3, 3))
    out[0, 0], out[0, 1], out[1, 0], out[1, 1] = d / det, -b / det, -c / det, a / det
    out[:2, 2] = -out[:2, :2] @ m[:2, 2]
    out[2] = (0.0, 0.0, 1.0)
    return out


def _rand_vec(rng: np.random.Generator, max_mag: float, gamma: float = 1.0) -> np.ndarray:
    ang = rng.uniform(0.0, 2.0 * math.pi)
    mag = max_mag * rng.random() ** gamma
    return np.array([math.cos(ang) * mag, math.sin(ang) * mag])


def _motion(rng: np.random.Generator, max_disp: float, cfg: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """Velocity and acceleration whose displacement 0->1 (vel + acc/2) is <= max_disp."""
    if max_disp <= 0:
        return np.zeros(2), np.zeros(2)
    disp = _rand_vec(rng, max_disp, cfg.motion_gamma)
    # acceleration in proportion to this layer's own displacement: two frames cannot
    # show acceleration, so a still (or slow) layer that wanders at time t teaches
    # the network to distrust identical inputs and to blur static content
    acc = _rand_vec(rng, cfg.accel * float(np.hypot(*disp)))
    return disp - 0.5 * acc, acc


def _photo_crop(rng: np.random.Generator, photos: Sequence[np.ndarray], out_h: int, out_w: int,
                scale: tuple[float, float], tries: int = 2) -> np.ndarray:
    """A photo region shown at a random scale (screen px per photo px), resized to out_h x out_w.

    Of ``tries`` candidate regions the one with the most contrast is kept:
    wallpapers hold large flat areas, and a textureless scene teaches little
    about motion (contrast is measured on a sparse pixel grid, before resizing).
    """
    best, best_c = None, -1.0
    for _ in range(tries):
        photo = photos[int(rng.integers(len(photos)))]
        ph, pw = photo.shape[:2]
        # never upsample more than needed to fill the texture from the photo
        sc = max(rng.uniform(*scale), out_h / ph, out_w / pw)
        ch = min(ph, max(1, int(round(out_h / sc))))
        cw = min(pw, max(1, int(round(out_w / sc))))
        y = int(rng.integers(0, ph - ch + 1))
        x = int(rng.integers(0, pw - cw + 1))
        crop = photo[y:y + ch, x:x + cw]
        step = max(1, min(ch, cw) // 24)
        c = float(crop[::step, ::step].std())
        if c > best_c:
            best, best_c = crop, c
    crop = best
    ch, cw = crop.shape[:2]
    interp = cv2.INTER_AREA if (ch > out_h or cw > out_w) else cv2.INTER_LINEAR
    tex = cv2.resize(crop, (out_w, out_h), interpolation=interp)
    if rng.random() < 0.5:
        tex = cv2.flip(tex, 1)
    if rng.random() < 0.1:
        tex = cv2.flip(tex, 0)
    return tex


def _flat_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth colour gradient (textureless surface: hard for flow, common in video)."""
    c0 = rng.uniform(0, 255, 3)
    c1 = np.clip(c0 + rng.normal(0, 40, 3), 0, 255)
    d = _rand_vec(rng, 1.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    g = (xx * d[0] / max(w, 1) + yy * d[1] / max(h, 1))
    g = (g - g.min()) / max(float(g.max() - g.min()), 1e-6)
    tex = c0[None, None, :] * (1 - g[..., None]) + c1[None, None, :] * g[..., None]
    return tex.astype(np.uint8)


def _alpha_shape(rng: np.random.Generator, h: int, w: int, cfg: SynthConfig) -> np.ndarray:
    """Soft-edged ellipse or star-convex polygon, h x w uint8, zero near the texture border."""
    a = np.zeros((h, w), np.uint8)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    sigma = rng.uniform(*cfg.edge_sigma)
    margin = 2.0 + 3.0 * sigma
    rx, ry = max(cx - margin, 1.0), max(cy - margin, 1.0)
    shift = 4  # sub-pixel vertex precision for cv2 drawing
    if rng.random() < 0.4:
        axes = (int(rx * rng.uniform(0.6, 1.0) * (1 << shift)), int(ry * rng.uniform(0.6, 1.0) * (1 << shift)))
        cv2.ellipse(a, (int(cx * (1 << shift)), int(cy * (1 << shift))), axes, 0.0, 0.0, 360.0, 255,
                    -1, cv2.LINE_AA, shift)
    else:
        n = int(rng.integers(3, 10))
        ang = np.sort(rng.uniform(0, 2 * math.pi, n))
        rad = rng.uniform(0.45, 1.0, n)
        pts = np.stack([cx + np.cos(ang) * rad * rx, cy + np.sin(ang) * rad * ry], axis=1)
        cv2.fillPoly(a, [np.round(pts * (1 << shift)).astype(np.int32)], 255, cv2.LINE_AA, shift)
    if sigma > 0.05:
        a = cv2.GaussianBlur(a, (0, 0), sigma)
    return a


def _background(rng: np.random.Generator, photos: Sequence[np.ndarray], cfg: SynthConfig, t: float) -> _Layer:
    s = cfg.size
    vel, acc = _motion(rng, cfg.max_motion, cfg)
    omega = math.radians(rng.uniform(-cfg.bg_rot, cfg.bg_rot))
    dlogz = rng.uniform(-cfg.bg_zoom, cfg.bg_zoom)
    # texture large enough to cover the screen over [0,1] under this motion
    disp = float(np.abs(vel).max() + np.abs(acc).max())
    rot_extra = s * (abs(math.sin(omega)) + abs(dlogz)) * 0.75
    side = int(math.ceil(s * 1.05 + 2 * (disp + rot_extra) + 4))
    tex = _photo_crop(rng, photos, side, side, cfg.bg_scale)
    rgba = np.ascontiguousarray(tex)      # opaque: no alpha channel needed
    centre = np.array([(side - 1) / 2.0, (side - 1) / 2.0])
    pt = np.array([(s - 1) / 2.0, (s - 1) / 2.0])
    # position at the target time is the screen centre; integrate back to tau = 0
    p0 = pt - vel * t - 0.5 * acc * t * t
    theta0 = -omega * t
    logz0 = -dlogz * t
    return _Layer(rgba, centre, p0, vel, acc, theta0, omega, logz0, dlogz, cv2.BORDER_REFLECT_101)


def _foreground(rng: np.random.Generator, photos: Sequence[np.ndarray], cfg: SynthConfig, t: float) -> _Layer:
    s = cfg.size
    h = max(8, int(round(s * rng.uniform(*cfg.fg_size))))
    w = max(8, int(round(h * math.exp(rng.uniform(-0.5, 0.5)))))
    if rng.random() < cfg.p_flat:
        tex = _flat_texture(rng, h, w)
    else:
        tex = _photo_crop(rng, photos, h, w, (0.4, 1.2))
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., :3] = tex
    rgba[..., 3] = _alpha_shape(rng, h, w, cfg)
    vel, acc = _motion(rng, cfg.fg_motion, cfg)
    omega = math.radians(rng.uniform(-cfg.fg_rot, cfg.fg_rot))
    dlogz = rng.uniform(-cfg.fg_zoom, cfg.fg_zoom)
    pt = rng.uniform(0.0, s - 1.0, 2)          # centre on screen at the target time
    p0 = pt - vel * t - 0.5 * acc * t * t
    theta_t = rng.uniform(-math.pi, math.pi)
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    return _Layer(rgba, centre, p0, vel, acc, theta_t - omega * t, omega, -dlogz * t, dlogz,
                  cv2.BORDER_CONSTANT)


# --------------------------------------------------------------------------- rendering


def _render(layers: Sequence[_Layer], tau: float, s: int, want_ids: bool, interp: int = cv2.INTER_LINEAR
            ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Composite back to front (``layers[-1]`` is the opaque background) at time tau.

    Foregrounds are warped and blended only inside their screen bounding box.
    Returns (H x W x 3 float32 in [0, 255], id map of the layer contributing
    most at each pixel or None, that layer's weight in [0, 1] or None).
    """
    bg = layers[-1]
    inv = _inv_affine(bg.to_screen(tau))
    out = cv2.warpAffine(bg.rgba, inv[:2], (s, s),
                         flags=interp | cv2.WARP_INVERSE_MAP, borderMode=bg.border)
    out = out.astype(np.float32)
    best_w = np.ones((s, s), np.float32) if want_ids else None
    best_id = np.full((s, s), len(layers) - 1, np.int8) if want_ids else None
    for k in range(len(layers) - 2, -1, -1):
        layer = layers[k]
        fwd = layer.to_screen(tau)
        h, w = layer.rgba.shape[:2]
        corners = fwd[:2, :2] @ np.array([[0, w - 1, 0, w - 1], [0, 0, h - 1, h - 1]], float) + fwd[:2, 2:]
        x0 = max(int(math.floor(corners[0].min())) - 1, 0)
        y0 = max(int(math.floor(corners[1].min())) - 1, 0)
        x1 = min(int(math.ceil(corners[0].max())) + 2, s)
        y1 = min(int(math.ceil(corners[1].max())) + 2, s)
        if x1 <= x0 or y1 <= y0:
            continue
        inv = _inv_affine(fwd)[:2]
        inv[:, 2] += inv[:, :2] @ np.array([x0, y0], float)   # ROI-local destination coordinates
        rgba = cv2.warpAffine(layer.rgba, inv, (x1 - x0, y1 - y0),
                              flags=interp | cv2.WARP_INVERSE_MAP,
                              borderMode=layer.border, borderValue=(0, 0, 0, 0))
        a = rgba[..., 3].astype(np.float32) * (1.0 / 255.0)
        roi = out[y0:y1, x0:x1]
        roi += a[..., None] * (rgba[..., :3].astype(np.float32) - roi)
        if want_ids:
            # every deeper contribution shrinks by (1 - a), so their argmax is unchanged
            bw = best_w[y0:y1, x0:x1]
            bw *= 1.0 - a
            better = a > bw
            bw[better] = a[better]
            best_id[y0:y1, x0:x1][better] = k
    return out, best_id, best_w


def _render_exposure(layers: Sequence[_Layer], tau: float, s: int, exposure: float, n_sub: int,
                     sharp: np.ndarray, interp: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Frame integrated over a shutter window centred on tau; ``sharp`` is the frame at tau."""
    if exposure <= 0 or n_sub <= 1:
        return sharp
    acc = np.zeros((s, s, 3), np.float32)
    for off in np.linspace(-0.5 * exposure, 0.5 * exposure, n_sub):
        acc += sharp if abs(off) < 1e-12 else _render(layers, tau + float(off), s, False, interp)[0]
    return acc * (1.0 / n_sub)


def _flow_maps(layers: Sequence[_Layer], ids: np.ndarray, t: float, tau: float, grid: np.ndarray) -> np.ndarray:
    """Flow t -> tau of the dominant layer at each pixel, 2 x H x W float32 (px)."""
    s = ids.shape[0]
    xx, yy = grid[..., 0], grid[..., 1]
    out = np.empty((2, s, s), np.float32)
    for k in range(len(layers) - 1, -1, -1):
        layer = layers[k]
        m = (layer.to_screen(tau) @ _inv_affine(layer.to_screen(t)))[:2].astype(np.float32)
        m[0, 0] -= 1.0
        m[1, 1] -= 1.0
        if k == len(layers) - 1:      # background: the whole grid, overwritten by foregrounds below
            out[0] = m[0, 0] * xx + m[0, 1] * yy + m[0, 2]
            out[1] = m[1, 0] * xx + m[1, 1] * yy + m[1, 2]
            continue
        sel = ids == k
        if not sel.any():
            continue
        x, y = xx[sel], yy[sel]
        out[0][sel] = m[0, 0] * x + m[0, 1] * y + m[0, 2]
        out[1][sel] = m[1, 0] * x + m[1, 1] * y + m[1, 2]
    return out


def _visible(ids_t: np.ndarray, flow: np.ndarray, ids_tau: np.ndarray, w_tau: np.ndarray,
             grid: np.ndarray, thr: float) -> np.ndarray:
    """1 where the surface at time t lands inside frame tau on the same (dominant, solid) layer."""
    s = ids_t.shape[0]
    xi = np.rint(grid[..., 0] + flow[0]).astype(np.int32)
    yi = np.rint(grid[..., 1] + flow[1]).astype(np.int32)
    inside = (xi >= 0) & (xi < s) & (yi >= 0) & (yi < s)
    flat = np.clip(yi, 0, s - 1) * s + np.clip(xi, 0, s - 1)
    same = (ids_tau.ravel()[flat] == ids_t) & (w_tau.ravel()[flat] >= thr)
    return inside & same


_GRIDS: dict[int, np.ndarray] = {}


def _grid(s: int) -> np.ndarray:
    g = _GRIDS.get(s)
    if g is None:
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
        g = np.stack([xx, yy], axis=-1)
        _GRIDS[s] = g
    return g


def _sample_t(rng: np.random.Generator, cfg: SynthConfig) -> float:
    if cfg.t is not None:
        return float(cfg.t)
    return float(rng.uniform(*cfg.t_range))


def _degrade_input(rng: np.random.Generator, img: np.ndarray, sigma: float, quality: int | None) -> np.ndarray:
    """Noise then JPEG on an H x W x 3 float image in [0, 255]; returns float in [0, 1]."""
    if sigma > 0:
        img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma * 255.0)
    if quality is not None:
        u8 = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32)
    return img


def _to_chw01(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.clip(img * (1.0 / 255.0), 0.0, 1.0).transpose(2, 0, 1), dtype=np.float32)


def render_triplet(rng: np.random.Generator, photos: Sequence[np.ndarray], cfg: SynthConfig) -> dict[str, np.ndarray]:
    """Render one synthetic triplet (pure apart from drawing from ``rng``).

    Args:
        rng: numpy Generator; the sample is a deterministic function of its state.
        photos: non-empty sequence of H x W x 3 uint8 RGB arrays (any sizes).
        cfg: scene parameters.

    Returns a dict of float32 numpy arrays: ``img0``, ``img1``, ``gt`` (3 x S x S
    in [0, 1]), ``t`` (0-d, in [0, 1]), ``flow_t0``, ``flow_t1`` (2 x S x S, px),
    ``valid``, ``vis0``, ``vis1`` (1 x S x S in {0, 1}); see the module docstring; with
    ``cfg.neighbours`` also ``img_prev`` and ``img_next`` (frames at tau = -1 and 2).
    """
    if len(photos) == 0:
        raise ValueError("vsugsp: render_triplet photos is empty; need at least one H x W x 3 uint8 image")
    s = int(cfg.size)
    t = _sample_t(rng, cfg)
    n_fg = int(rng.integers(cfg.n_fg[0], cfg.n_fg[1] + 1))
    layers = [_foreground(rng, photos, cfg, t) for _ in range(n_fg)]
    layers.append(_background(rng, photos, cfg, t))

    # scene-level effects, decided up front so the draw order is fixed
    exposure = rng.uniform(0.1, 1.0) * cfg.max_exposure if rng.random() < cfg.p_blur else 0.0
    lighting = None
    if rng.random() < cfg.p_lighting:
        g = 1.0 + rng.uniform(-cfg.max_gain, cfg.max_gain, (2, 3)).astype(np.float32)
        g[:, :] = g[:, :1] * 0.7 + g * 0.3            # mostly global, slightly per channel
        o = rng.uniform(-cfg.max_offset, cfg.max_offset, (2, 1)).astype(np.float32) * 255.0
        lighting = (g, o)
    sig = [rng.uniform(0.2, 1.0) * cfg.max_noise if rng.random() < cfg.p_noise else 0.0 for _ in range(2)]
    q = [int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)) if rng.random() < cfg.p_jpeg else None
         for _ in range(2)]

    grid = _grid(s)
    frames = {}
    maps = {}
    def scene_effects(img: np.ndarray, tau: float) -> np.ndarray:
        """Motion blur and the lighting change of the scene at time tau on a sharp frame."""
        if exposure > 0:
            img = _render_exposure(layers, tau, s, exposure, cfg.blur_subframes, img, _INTERP[cfg.interp])
        if lighting is not None:
            g, o = lighting
            img = img * (g[0] + (g[1] - g[0]) * tau) + (o[0] + (o[1] - o[0]) * tau)
        return img

    for name, tau in (("img0", 0.0), ("gt", t), ("img1", 1.0)):
        img, ids, w = _render(layers, tau, s, True, _INTERP[cfg.interp])
        maps[name] = (ids, w)
        frames[name] = scene_effects(img, tau)

    ids_t, w_t = maps["gt"]
    flow0 = _flow_maps(layers, ids_t, t, 0.0, grid)
    flow1 = _flow_maps(layers, ids_t, t, 1.0, grid)
    thr = cfg.valid_threshold
    valid = w_t >= thr
    vis0 = valid & _visible(ids_t, flow0, *maps["img0"], grid, thr)
    vis1 = valid & _visible(ids_t, flow1, *maps["img1"], grid, thr)

    img0 = _degrade_input(rng, frames["img0"], sig[0], q[0])
    img1 = _degrade_input(rng, frames["img1"], sig[1], q[1])
    extra = {}
    if cfg.neighbours:  # drawn after everything else: the triplet is the same with or without them
        for name, tau in zip(NEIGHBOUR_KEYS, (-1.0, 2.0)):
            sg = rng.uniform(0.2, 1.0) * cfg.max_noise if rng.random() < cfg.p_noise else 0.0
            qq = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)) if rng.random() < cfg.p_jpeg else None
            img = scene_effects(_render(layers, tau, s, False, _INTERP[cfg.interp])[0], tau)
            extra[name] = _to_chw01(_degrade_input(rng, img, sg, qq))
    return {
        **extra,
        "img0": _to_chw01(img0),
        "img1": _to_chw01(img1),
        "gt": _to_chw01(frames["gt"]),
        "t": np.float32(t),
        "flow_t0": flow0,
        "flow_t1": flow1,
        "valid": valid[None].astype(np.float32),
        "vis0": vis0[None].astype(np.float32),
        "vis1": vis1[None].astype(np.float32),
    }


# --------------------------------------------------------------------------- torch datasets


def _to_torch(sample: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.asarray(v)) for k, v in sample.items()}


def _resolve_pool(pool: str | Path | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(pool, (str, Path)):
        from .photos import load_pool
        photos = load_pool(Path(pool))
    else:
        photos = list(pool)
    if not photos:
        raise ValueError(f"vsugsp: photo pool {pool if isinstance(pool, (str, Path)) else '(list)'} is empty; "
                         "prepare one with `python -m vsugsp.data.photos DEST`")
    for i, p in enumerate(photos):
        if not (isinstance(p, np.ndarray) and p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3):
            raise ValueError(f"vsugsp: photo pool item {i} must be an H x W x 3 uint8 array, got "
                             f"{getattr(p, 'dtype', type(p))} {getattr(p, 'shape', '')}")
    return photos


def _stream_seed(seed: int) -> list[int]:
    """Seed sequence unique per (seed, DDP rank, dataloader worker)."""
    info = torch.utils.data.get_worker_info()
    worker = info.id if info is not None else 0
    rank = 0
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank = torch.distributed.get_rank()
    return [int(seed), rank, worker]


class SynthTriplets(torch.utils.data.IterableDataset):
    """Endless stream of synthetic triplets (dicts of float32 tensors, see :data:`KEYS`).

    Args:
        pool: a folder of images (see :mod:`vsugsp.data.photos`) or a sequence of
            H x W x 3 uint8 RGB arrays. Decoded once, shared by forked workers.
        cfg: scene parameters.
        seed: the stream is deterministic for a given seed, DDP rank and worker id.
        length: stop after this many samples per worker (None: endless).
    """

    def __init__(self, pool: str | Path | Sequence[np.ndarray], cfg: SynthConfig | None = None,
                 seed: int = 0, length: int | None = None) -> None:
        super().__init__()
        self.photos = _resolve_pool(pool)
        self.cfg = cfg or SynthConfig()
        self.seed = int(seed)
        self.length = length

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rng = np.random.default_rng(_stream_seed(self.seed))
        n = 0
        while self.length is None or n < self.length:
            yield _to_torch(render_triplet(rng, self.photos, self.cfg))
            n += 1


def make_heldout(pool: str | Path | Sequence[np.ndarray], n: int, size: int = 128, seed: int = 12345,
                 cfg: SynthConfig | None = None) -> dict[str, torch.Tensor]:
    """A fixed validation batch: ``n`` samples stacked along dim 0, deterministic in (pool, n, size, seed).

    Uses ``cfg`` (default :class:`SynthConfig`) with its size replaced by ``size``.
    """
    if n < 1:
        raise ValueError(f"vsugsp: make_heldout n={n!r}; must be >= 1")
    photos = _resolve_pool(pool)
    c = replace(cfg or SynthConfig(), size=int(size))
    rng = np.random.default_rng([int(seed), 0xE7A1])
    samples = [render_triplet(rng, photos, c) for _ in range(n)]
    return {k: torch.from_numpy(np.stack([s[k] for s in samples])) for k in KEYS}


# --------------------------------------------------------------------------- CLI: preview and speed


def _flow_rgb(flow: np.ndarray, max_mag: float) -> np.ndarray:
    mag, ang = cv2.cartToPolar(np.ascontiguousarray(flow[0]), np.ascontiguousarray(flow[1]))
    hsv = np.zeros(flow.shape[1:] + (3,), np.uint8)
    hsv[..., 0] = (ang * (90.0 / math.pi)).astype(np.uint8)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(mag * (255.0 / max(max_mag, 1e-6)), 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def preview(samples: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    """H x W x 3 uint8 grid, one row per sample: img0, gt, img1, flow_t0, flow_t1, vis0."""
    rows = []
    for s in samples:
        m = float(max(np.abs(s["flow_t0"]).max(), np.abs(s["flow_t1"]).max(), 1.0))
        ims = [np.clip(s[k].transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8) for k in ("img0", "gt", "img1")]
        ims += [_flow_rgb(s["flow_t0"], m), _flow_rgb(s["flow_t1"], m),
                np.repeat((s["vis0"][0] * 255).astype(np.uint8)[..., None], 3, axis=2)]
        rows.append(np.concatenate(ims, axis=1))
    return np.concatenate(rows, axis=0)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys
    import time

    from .photos import DEFAULT_POOL

    ap = argparse.ArgumentParser(prog="python -m vsugsp.data.synth",
                                 description="Measure the synthetic triplet rate and write a preview grid.")
    ap.add_argument("--pool", default=str(DEFAULT_POOL), help="photo pool folder (default: %(default)s)")
    ap.add_argument("--size", type=int, default=128, help="crop side, px")
    ap.add_argument("--n", type=int, default=300, help="samples to time")
    ap.add_argument("--clean", action="store_true", help="no lighting/blur/noise/JPEG")
    ap.add_argument("--preview", help="write a PNG grid of 8 samples here")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    photos = _resolve_pool(args.pool)
    load_s = time.perf_counter() - t0
    cfg = SynthConfig(size=args.size)
    cfg = cfg.clean() if args.clean else cfg
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    for _ in range(args.n):
        _to_torch(render_triplet(rng, photos, cfg))
    rate = args.n / (time.perf_counter() - t0)
    mib = sum(p.nbytes for p in photos) / 2**20
    msg = (f"pool: {len(photos)} photos, {mib:.0f} MiB, loaded in {load_s:.1f} s; "
           f"{rate:.0f} samples/s at {args.size}x{args.size} (one process)")
    print(msg, file=sys.stderr)
    if args.preview:
        grid = preview([render_triplet(rng, photos, cfg) for _ in range(8)])
        cv2.imwrite(args.preview, grid[..., ::-1])
        print(f"preview written to {args.preview}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
