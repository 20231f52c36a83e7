"""UGSPNet: flow-based frame interpolation with uncertainty-guided spatial pruning.

Coarse-to-fine decoders at 1/16, 1/8, 1/4, 1/2 of the (padded) frame estimate the
bidirectional flow from time t to both inputs.  Each decoder also predicts, per
pixel, two mask logits for the next finer level; those masks prune every 3×3
conv of the 1/8, 1/4 and 1/2 decoders.  The finest decoder ends in a transposed
conv to full resolution giving flow, an occlusion logit, an RGB residual and the
per-pixel uncertainty (log-scale).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..sparse.backends import MaskedBackend, get_backend, join_parts
from ..sparse.tiles import TILE
from .blocks import DecoderBlock, Encoder
from .config import ModelConfig
from .masks import cap_mask, compute_prob, hard_mask, nest, soft_mask, tile_union
from .warp import Warp, backwarp, resize_flow

MODES = ("dense", "pruned", "train")
#: The network's corrections on top of the flow it starts from (the DIS prior, or zero):
#: "flow" the decoders' flow residuals, "fusion" the learned occlusion blend (else the
#: linear blend (1 − t)·I0 + t·I1 of the warps), "rgb" the RGB residual.  All of them is the network; none of them, with the prior,
#: is the prior through our own warp and blend (the ablation of ``vsugsp bench ablation``).
REFINE = ("flow", "fusion", "rgb")
#: How the prior alone (``refine`` empty) reads its flows at t (:data:`vsugsp.model.motion.READINGS`):
#: "both", not the network's "mixed".  On the held-out tails of the four training clips (DIS
#: medium, quadratic, frame-drop) "both" scored +0.01 / +0.13 / −0.01 / +0.00 dB over "mixed"
#: (box, cup, tree, vtest); the network keeps "mixed", the prior it was trained on.
PRIOR_ALONE_READING = "both"
#: The prior alone's ensemble (the preset key ``readings``: 1, 2, 4): the readings whose
#: frames are averaged.  Each reading places the warps' samples differently where the flows
#: disagree, so their errors are partly independent.  On the training clips' held-out ends
#: through the filter (mean of four clips, `bench quality --tail 51`) 34.40 dB (one) → 34.45
#: (two) → 34.50 (four); the views of the network's ``ensemble`` (time swap, mirror) give the
#: prior alone the same frame, so they would add nothing.
PRIOR_ALONE_VIEWS: dict[int, tuple[str, ...]] = {
    1: (PRIOR_ALONE_READING,),
    2: (PRIOR_ALONE_READING, "mixed"),
    4: (PRIOR_ALONE_READING, "mixed", "trajectory", "own"),
}
#: The static guard (:func:`static_weight`): frames that agree within this tolerance (0-1
#: scale, max over channels) over a window of this radius (px) pass through as the source.
STATIC_TOL = 2.0 / 255.0
STATIC_RADIUS = 16
#: The input is padded to a multiple of this (the encoder's total stride).
ALIGN = 16
#: Side (px, at each pruned level's own resolution) of the tiles hard masks are decided
#: in, whatever the backend: the CPU tile backend's unit of work.  A per-pixel backend
#: (the CUDA kernels, the reference) given the same tiles computes the same pixels, so a
#: preset gives the same frames on every device; with per-pixel masks on CUDA the
#: ``realtime`` preset lost 0.5-1.2 dB against the CPU (issue 22).
MASK_TILE = TILE


@dataclass
class Features:
    """Encoder pyramid of one frame (1/2 … 1/16) plus the geometry it was computed at."""

    pyramid: list[torch.Tensor]
    size: tuple[int, int]  # the frame's own H, W
    scale: float
    net_size: tuple[int, int]  # H, W the network ran at (scaled, before alignment padding)


@dataclass
class UGSPOutput:
    """Result of one forward pass.

    image: B×3×H×W in [0, 1].  flow: B×4×H×W, (x, y) pixels from t to frame 0 then to
    frame 1.  occlusion: B×1×H×W logit (σ = weight of frame 0).  uncertainty: B×1×H×W
    log-scale.  masks / mask_logits: per pruned level (1/8, 1/4, 1/2).  macs: MACs the
    chosen backend executed; mask_macs: MACs at per-pixel mask granularity;
    dense_macs: the same network unpruned.  features: per-level decoder features
    (for the self-contrast loss).  dense: the auxiliary unpruned pass (train mode).

    executed / masked: the counts behind ``macs`` / ``mask_macs`` as the pass left them:
    an int, or a 0-dim tensor on the pass's device where counting them on the host would
    sync with the device (a pruned pass's mask sums).  ``macs`` and ``mask_macs`` read them
    as ints, so a pass syncs for its counts only where they are read.
    """

    image: torch.Tensor
    flow: torch.Tensor
    occlusion: torch.Tensor
    residual: torch.Tensor
    uncertainty: torch.Tensor
    masks: list[torch.Tensor] = field(default_factory=list)
    mask_logits: list[torch.Tensor] = field(default_factory=list)
    features: list[torch.Tensor] = field(default_factory=list)
    flow_pyramid: list[torch.Tensor] = field(default_factory=list)
    executed: "int | torch.Tensor" = 0
    masked: "int | torch.Tensor" = 0
    dense_macs: int = 0
    dense: "UGSPOutput | None" = None

    @property
    def macs(self) -> int:
        """MACs the backend executed."""
        return int(self.executed)

    @property
    def mask_macs(self) -> int:
        """MACs at per-pixel mask granularity."""
        return int(self.masked)

    @property
    def density(self) -> float:
        """Executed share of the network's MACs (1.0 when nothing was pruned)."""
        return self.macs / max(1, self.dense_macs)


PRUNED_LEVELS = 3  # dec8, dec4, dec2


def level_caps(max_density: float | Sequence[float] | None) -> list[float] | None:
    """``max_density`` as one cap per pruned level (coarse → fine), validated; None: no cap."""
    if max_density is None:
        return None
    caps = [max_density] * PRUNED_LEVELS if isinstance(max_density, (int, float)) else list(max_density)
    if len(caps) != PRUNED_LEVELS or any(isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 < c <= 1
                                         for c in caps):
        raise ValueError(f"vsugsp: max_density={max_density!r}; allowed: a number in (0, 1] or "
                         f"{PRUNED_LEVELS} such numbers (levels 1/8, 1/4, 1/2)")
    return [float(c) for c in caps]


def scaled_size(h: int, w: int, scale: float) -> tuple[int, int]:
    """The size (H, W) a network at ``scale`` runs on for h×w frames (before alignment padding)."""
    if scale == 1.0:
        return h, w
    return max(ALIGN, round(h * scale)), max(ALIGN, round(w * scale))


def prior_alone(pair_flow: "torch.Tensor | None", refine, mode: str = "pruned") -> bool:
    """Whether :meth:`UGSPNet.forward` gives the prior's frame alone (the network does not run):
    a prior, no corrections (``refine`` empty), not training."""
    return pair_flow is not None and not check_refine(refine) and mode != "train"


def check_refine(refine) -> frozenset[str]:
    """``refine`` (an iterable of :data:`REFINE` names) validated as a frozenset."""
    if isinstance(refine, str) or not hasattr(refine, "__iter__"):
        raise ValueError(f"vsugsp: refine={refine!r}; allowed: a list of {', '.join(REFINE)} (or an empty list)")
    out = frozenset(refine)
    if out - set(REFINE):
        raise ValueError(f"vsugsp: refine={sorted(refine)!r}; allowed names: {', '.join(REFINE)}")
    return out


def window_max(x: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """Max of ``x`` over the window [i − radius, i + radius] along ``dim``, for x ≥ 0.

    The same numbers as ``max_pool2d`` with that window and stride 1 (outside the
    frame counts as 0, which a non-negative x never falls below), in
    O(log radius) elementwise maxima instead of O(radius) per pixel: a span
    doubles each step, m[i] = max x[i : i + span].
    """
    k = 2 * radius + 1
    pad = [0, 0] * (x.dim() - 1 - dim % x.dim()) + [radius, radius]
    m = F.pad(x, pad)
    span = 1
    while 2 * span <= k:
        n = m.shape[dim] - span
        m = torch.maximum(m.narrow(dim, 0, n), m.narrow(dim, span, n))
        span *= 2
    if span < k:
        n = m.shape[dim] - (k - span)
        m = torch.maximum(m.narrow(dim, 0, n), m.narrow(dim, k - span, n))
    return m


def static_weight(img0: torch.Tensor, img1: torch.Tensor, flow: torch.Tensor,
                  radius: int = STATIC_RADIUS, tol: float = STATIC_TOL,
                  agree: torch.Tensor | None = None) -> torch.Tensor:
    """B×1×H×W weight in [0, 1] of "nothing moves here": the output is the source there.

    1 where both frames agree (max over channels of |I0 − I1| ≤ tol/2) at every pixel within
    ``radius`` px and both flows from t are shorter than ``radius`` − 1 px, so every sample the
    warps take lies inside that static window; 0 where they differ by ≥ 1.5·tol or a flow
    reaches out of it (an object passing through faster than that keeps the network's output).
    Without it the masks' tile borders and the residual's small offsets show as seams and a
    lifted black level on flat dark areas (the clamp at 0 keeps only the positive errors).
    ``agree``: :func:`static_agreement` of the two frames, when the caller has it already.
    """
    if agree is None:
        agree = static_agreement(img0, img1, radius, tol)
    reach = flow.detach().float().abs().amax(1, keepdim=True)
    return agree * (radius - reach).clamp(0, 1)


def static_agreement(img0: torch.Tensor, img1: torch.Tensor, radius: int = STATIC_RADIUS,
                     tol: float = STATIC_TOL) -> torch.Tensor:
    """The frames' part of :func:`static_weight` (B×1×H×W in [0, 1]): how far they agree
    over the ``radius`` window, whatever the flow."""
    d = (img0.float() - img1.float()).abs().amax(1, keepdim=True)
    d = window_max(window_max(d, radius, -1), radius, -2)  # separable (2r+1)² window max
    return ((1.5 * tol - d) / tol).clamp(0, 1)


def _as_time(t, batch: int, ref: torch.Tensor) -> torch.Tensor:
    """``t`` as a B×1×1×1 fp32 tensor on ``ref``'s device (fp16 would move t = 0.4 by 1e-4)."""
    t = torch.as_tensor(t, dtype=torch.float32, device=ref.device)
    if t.dim() == 0:
        t = t.expand(batch)
    t = t.reshape(-1)
    if t.numel() == 1 and batch > 1:
        t = t.expand(batch)
    if t.numel() != batch:
        raise ValueError(f"vsugsp: t has {t.numel()} values for a batch of {batch}")
    return t.view(batch, 1, 1, 1)


class UGSPNet(nn.Module):
    """The UGSP interpolation network; see the module docstring and :class:`ModelConfig`."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        c1, c2, c3, c4 = self.config.channels
        m, body = self.config.decoder_mult, self.config.body
        self.encoder = Encoder(self.config.channels)
        # non-final blocks: 4 flow + 4·c_next features + 8 mask logits (pixel-shuffled ×2)
        self.dec16 = DecoderBlock(2 * c4 + 1, m * c4, body, 4 + 4 * c3 + 8, bias=True, logit_rows=8)
        self.dec8 = DecoderBlock(3 * c3 + 4, m * c3, body, 4 + 4 * c2 + 8, logit_rows=8)
        self.dec4 = DecoderBlock(3 * c2 + 4, m * c2, body, 4 + 4 * c1 + 8, logit_rows=8)
        self.dec2 = DecoderBlock(3 * c1 + 4, m * c1, body, m * c1)
        self.act2 = nn.PReLU(m * c1)
        # to full resolution: 4 flow + 1 occlusion + 3 RGB residual + 1 log-scale
        self.up = nn.ConvTranspose2d(m * c1, 9, 4, 2, 1)
        #: train mode only: mask logits see detached decoder features, so mask losses
        #: train the logit rows of each fuse and leave flow/features alone
        self.isolate_mask_logits = False

    # ------------------------------------------------------------------ encoder
    def encode(self, img: torch.Tensor, scale: float = 1.0) -> Features:
        """Encoder pyramid of B×3×H×W frames in [0, 1] (depends on that frame only)."""
        h, w = img.shape[-2:]
        # Resized and centred in fp32 (no-ops on fp32 frames): a half frame is rounded once,
        # after them (and the CPU has no half antialiased resize).
        x = img.float()
        sh, sw = scaled_size(h, w, scale)
        if scale != 1.0:
            x = F.interpolate(x, size=(sh, sw), mode="bilinear", align_corners=False, antialias=True)
        x = (x - x.mean(dim=(2, 3), keepdim=True)).to(img.dtype)
        ph, pw = -x.shape[-2] % ALIGN, -x.shape[-1] % ALIGN
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return Features(self.encoder(x), (h, w), scale, (sh, sw))

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        img0: torch.Tensor,
        img1: torch.Tensor,
        t: float | torch.Tensor = 0.5,
        *,
        mode: str = "pruned",
        backend: "str | MaskedBackend" = "cpu",
        threshold: float = 0.5,
        scale: float = 1.0,
        feats0: Features | None = None,
        feats1: Features | None = None,
        masks: list[torch.Tensor] | None = None,
        tau: float = 1.0,
        max_density: float | Sequence[float] | None = None,
        pair_flow: torch.Tensor | None = None,
        refine: "frozenset[str] | Sequence[str]" = REFINE,
        mask_tile: int | None = MASK_TILE,
    ) -> UGSPOutput:
        """Interpolate between B×3×H×W frames in [0, 1] at time(s) t in (0, 1).

        mode: "dense" (no pruning), "pruned" (hard masks, sparse execution) or "train"
        (soft Gumbel masks plus an unpruned pass).  backend: masked-conv backend of
        the pruned mode, a name or an instance (:mod:`vsugsp.sparse.backends`).  threshold: P(compute) a pixel needs to be computed, [0, 1).
        scale: the network runs at this fraction of the frame size, (0, 1].
        masks: forced bool masks per pruned level (benchmarks).  feats0/feats1:
        cached :meth:`encode` results of the two frames (same ``scale``).
        max_density: pruned mode's cap on the fraction of pixels computed per level,
        in (0, 1]: one number for every level or one per level (1/8, 1/4, 1/2 size);
        the pixels most likely to need computing are kept (None: no cap).  Hard masks are
        widened to the tiles they touch and the cap counts tiles: the backend's own tile
        (``backend.tile``) when it computes whole tiles, else ``mask_tile`` px (default
        :data:`MASK_TILE`, the CPU tile backend's, so every backend and device computes the
        same pixels; None: per-pixel masks on a per-pixel backend, e.g. training diagnostics).
        pair_flow: optional flow prior, B×4×H×W at the frame's size in pixels: the pair's
        flows 0→1 and 1→0 (:mod:`vsugsp.model.prior`).  Every decoder level then starts from
        the prior's linear-motion flows from t at that level's detail (area-averaged) and the
        decoders predict residuals to them (the coarsest one sees the encoder features warped
        by them); the output flow keeps the prior's full-resolution detail.  An all-zero prior
        is the plain network.  Its cost is not in the MACs.  A B×8×H×W motion instead (the pair's
        flows and its outer neighbours', :func:`vsugsp.model.motion.motion_tensor`) starts them
        from quadratic-path flows (:func:`vsugsp.model.prior.flows_at`).
        refine: which of the network's corrections to apply (:data:`REFINE`; all by default).
        Without a prior "flow" is always applied (the network's own flow is the only one), and
        an empty ``refine`` means all of them (the prior alone has no prior to run on: the
        plain network, as ``realtime`` runs it); with a prior and none of them the frame is
        the prior's alone (read "both", :data:`PRIOR_ALONE_READING`; :meth:`prior_frame` averages
        several readings) and the network does not
        run (no MACs; not in train mode).

        Wherever both frames are static (:func:`static_weight`) the output is their mean,
        i.e. the source, whatever the masks or the residuals did.
        """
        if mode not in MODES:
            raise ValueError(f"vsugsp: mode={mode!r}; allowed: {', '.join(MODES)}")
        if img0.shape != img1.shape or img0.dim() != 4 or img0.shape[1] != 3:
            raise ValueError(f"vsugsp: frames must both be B×3×H×W, got {tuple(img0.shape)} and {tuple(img1.shape)}")
        if not 0.0 < scale <= 1.0:
            raise ValueError(f"vsugsp: scale={scale}; allowed: 0 < scale <= 1")
        caps = level_caps(max_density)
        refine = check_refine(refine)
        if pair_flow is None:  # no flow to start from: the network's own flow is all there is
            refine = refine | {"flow"} if refine else frozenset(REFINE)
        if mask_tile is not None and (isinstance(mask_tile, bool) or not isinstance(mask_tile, int) or mask_tile < 1):
            raise ValueError(f"vsugsp: mask_tile={mask_tile!r}; allowed: an integer ≥ 1 (px) or None (per pixel)")
        b, _, h, w = img0.shape
        tt = _as_time(t, b, img0)
        if prior_alone(pair_flow, refine, mode):
            return self._prior_only(img0, img1, tt, pair_flow, scale, PRIOR_ALONE_VIEWS[1])
        f0 = feats0 if feats0 is not None else self.encode(img0, scale)
        f1 = feats1 if feats1 is not None else self.encode(img1, scale)
        p0, p1 = f0.pyramid, f1.pyramid
        if p0[0].shape[0] != b:  # cached features of one frame serving several t
            p0 = [p.expand(b, -1, -1, -1) for p in p0]
        if p1[0].shape[0] != b:
            p1 = [p.expand(b, -1, -1, -1) for p in p1]
        ph, pw = p0[0].shape[-2] * 2, p0[0].shape[-1] * 2
        enc_macs = 2 * self.encoder.macs(ph, pw)  # charged per output frame

        q0, q1, priors = p0[3], p1[3], None
        if pair_flow is not None:
            priors = self._prior_pyramid(pair_flow, tt, f0.net_size, (ph, pw), b)
            q0, q1 = backwarp(q0, priors[16][:, :2]), backwarp(q1, priors[16][:, 2:])
        x16 = torch.cat([q0, q1, tt.expand(-1, 1, *q0.shape[-2:]).to(q0.dtype)], 1)
        iso = mode == "train" and self.isolate_mask_logits
        y16 = self.dec16.forward_dense(x16, iso)
        if "flow" not in refine:
            y16 = torch.cat([torch.zeros_like(y16[:, :4]), y16[:, 4:]], 1)
        fixed_macs = enc_macs + x16.shape[-2] * x16.shape[-1] * b * self.dec16.macs_per_pixel()
        fixed_macs += b * (ph // 2) * (pw // 2) * self.up.in_channels * 9 * 16

        if mode == "train":
            out = self._decode(y16, p0, p1, "soft", "reference", threshold, None, tau, iso=iso, priors=priors,
                               refine=refine)
            dense = self._decode(y16, p0, p1, "dense", "reference", threshold, None, tau, priors=priors,
                                 refine=refine)
            result = self._finish(out, img0, img1, f0.net_size, fixed_macs, refine, tt)
            result.dense = self._finish(dense, img0, img1, f0.net_size, fixed_macs, refine, tt)
            return result
        out = self._decode(y16, p0, p1, mode, get_backend(backend), threshold, masks, tau, caps, priors=priors,
                           refine=refine, mask_tile=mask_tile)
        return self._finish(out, img0, img1, f0.net_size, fixed_macs, refine, tt)

    @staticmethod
    def _prior_flows(pair_flow, tt, net_size, batch, reading: str = "mixed") -> torch.Tensor:
        """The prior's flows from t (B×4, fp32, pixels) on the grid the network runs on, unpadded.

        ``reading``: :func:`vsugsp.model.prior.flows_at`'s ("mixed": the network's prior)."""
        return UGSPNet._prior_readings(pair_flow, tt, net_size, batch, (reading,))[0]

    @staticmethod
    def _prior_readings(pair_flow, tt, net_size, batch, readings: tuple[str, ...]) -> list[torch.Tensor]:
        """:meth:`_prior_flows` for each of ``readings`` (the motion's acceleration estimated once)."""
        from .prior import flows_at_readings

        if pair_flow.dim() != 4 or pair_flow.shape[1] not in (4, 8) or pair_flow.shape[0] not in (1, batch):
            raise ValueError(f"vsugsp: pair_flow must be B×4×H×W (or a B×8×H×W motion) for a batch of {batch}, "
                             f"got {tuple(pair_flow.shape)}")
        pf = pair_flow.float()
        if pf.shape[0] != batch:
            pf = pf.expand(batch, -1, -1, -1)
        if pf.shape[1] == 8 and tuple(pf.shape[-2:]) != tuple(net_size):
            # a scaled network: the quadratic path on its own grid (at half size a quarter of the
            # pixels; the linear prior's numbers are the same either way, it is linear in the flows)
            return flows_at_readings(resize_flow(pf, net_size), tt.float(), readings,
                                     px_scale=net_size[1] / pf.shape[-1])
        # the scaled frame the network runs on
        return [resize_flow(f, net_size) for f in flows_at_readings(pf, tt.float(), readings)]

    @staticmethod
    def _prior_pyramid(pair_flow, tt, net_size, padded, batch) -> dict[int, torch.Tensor]:
        """The prior's flows from t on the padded network grid and at strides 2…16 (fp32, their pixels)."""
        flows = UGSPNet._prior_flows(pair_flow, tt, net_size, batch)
        flows = F.pad(flows, (0, padded[1] - flows.shape[-1], 0, padded[0] - flows.shape[-2]), mode="replicate")
        pyramid = {1: flows}
        for stride in (2, 4, 8, 16):  # area averages (bilinear would alias), vectors scaled to each grid
            pyramid[stride] = F.avg_pool2d(pyramid[stride // 2], 2) / 2
        return pyramid

    # ------------------------------------------------------------------ decoders
    def _decode(self, y16, p0, p1, mode, backend, threshold, forced, tau, caps=None, iso=False,
                priors=None, refine=frozenset(REFINE), mask_tile=MASK_TILE) -> dict:
        c = self.config.channels
        flow = y16[:, :4].float()  # flows accumulate in fp32 (bf16 steps 0.25 px at 50 px)
        if priors is not None:  # the coarsest decoder predicted a residual to the prior
            flow = flow + priors[16]
        feat = F.pixel_shuffle(y16[:, 4 : 4 + 4 * c[2]], 2)
        logits = F.pixel_shuffle(y16[:, 4 + 4 * c[2] :], 2)
        flows, masks, all_logits, features = [flow], [], [], [feat]
        executed = mask_px = dense_px = 0
        parent = None
        blocks = [(self.dec8, 2), (self.dec4, 1), (self.dec2, 0)]
        for i, (block, lvl) in enumerate(blocks):
            size = p0[lvl].shape[-2:]
            flow = resize_flow(flow, size)
            if priors is not None:  # the residual so far on top of the prior at this level's detail
                stride = 2 << lvl
                flow = flow - resize_flow(priors[2 * stride], size) + priors[stride]
            # The flow joins in the features' dtype: a half network's convs take no fp32 input,
            # and under bf16 autocast the convs round it to bf16 anyway (the same numbers).
            # Pruned, the backend takes the parts with the warps not yet evaluated: the tile
            # backend copies them straight into its padded rows and warps only the pixels its
            # tiles read (at 1/2 size the concatenation and the warps cost as much as the convs).
            parts = [feat, Warp(p0[lvl], flow[:, :2]), Warp(p1[lvl], flow[:, 2:]), flow.to(feat.dtype)]
            x = parts if mode == "pruned" else join_parts(parts)
            all_logits.append(logits)
            npx = feat.shape[0] * size[0] * size[1]
            per_px = block.macs_per_pixel()
            dense_px += npx * per_px
            if mode == "dense":
                y = block.forward_dense(x)
                executed += npx * per_px
                mask_px += npx * per_px
            elif mode == "soft":
                m = nest(soft_mask(logits, tau), parent)
                masks.append(m)
                parent = m
                y = block.forward_soft(x, m.to(x.dtype), iso)
                executed += npx * per_px
                mask_px += npx * per_px
            else:
                if forced is not None:
                    m = forced[i]
                else:
                    m = nest(hard_mask(logits, threshold), parent)
                    tile = backend.tile or mask_tile  # by default per tile on every backend (MASK_TILE)
                    if caps is not None:
                        m = cap_mask(m, compute_prob(logits), caps[i], tile)
                    if tile:  # keep every pixel a tile backend pays for
                        m = tile_union(m, tile)
                masks.append(m)
                parent = m
                y, done = block.forward_pruned(x, m, backend)
                executed += done * per_px
                mask_px = mask_px + m.count_nonzero() * per_px  # int64 on the device: synced only if read
            if block is self.dec2:
                features.append(y)
                return {
                    "flow": flow, "fused": self.act2(y), "priors": priors, "masks": masks, "logits": all_logits,
                    "features": features, "flows": flows, "executed": executed, "mask_macs": mask_px,
                    "dense_macs": dense_px,
                }
            if "flow" in refine:
                flow = flow + y[:, :4].float()
            feat = F.pixel_shuffle(y[:, 4 : 4 + 4 * c[lvl - 1]], 2)
            logits = F.pixel_shuffle(y[:, 4 + 4 * c[lvl - 1] :], 2)
            flows.append(flow)
            features.append(feat)
        raise AssertionError("unreachable")

    def prior_frame(self, img0: torch.Tensor, img1: torch.Tensor, t: float | torch.Tensor,
                    pair_flow: torch.Tensor, scale: float = 1.0, views: int = 1) -> UGSPOutput:
        """The prior's frame alone at ``t`` (what ``refine`` empty gives), averaged over ``views``
        readings of its flows (1, 2 or 4: :data:`PRIOR_ALONE_VIEWS`); the network does not run.

        img0/img1: B×3×H×W in [0, 1]; pair_flow: B×4×H×W pair or B×8×H×W motion (see
        :meth:`forward`); scale: the grid the flows at t are read on, (0, 1].  The output's flow,
        occlusion and uncertainty are the first reading's.
        """
        if views not in PRIOR_ALONE_VIEWS:
            raise ValueError(f"vsugsp: readings={views!r}; allowed: {', '.join(map(str, PRIOR_ALONE_VIEWS))}")
        if not 0.0 < scale <= 1.0:
            raise ValueError(f"vsugsp: scale={scale}; allowed: 0 < scale <= 1")
        return self._prior_only(img0, img1, _as_time(t, img0.shape[0], img0), pair_flow, scale,
                                PRIOR_ALONE_VIEWS[views])

    def _prior_only(self, img0, img1, tt, pair_flow, scale: float, readings: tuple[str, ...]) -> UGSPOutput:
        """The frame from the prior alone (``refine`` empty): the prior's flows at t, on the grid
        the network would run on, through the same warp, linear blend and static guard as
        :meth:`_finish`, without running the encoder or the decoders; the mean over ``readings``.
        Read "mixed" it is the same numbers as the full pass with every correction off (there
        the decoders' outputs cancel exactly)."""
        b, _, h, w = img0.shape
        sh, sw = scaled_size(h, w, scale)
        # the linear blend's weight is one number per frame: broadcast, not made as an H×W plane per reading
        blend = torch.logit(1 - tt.float()).view(b, 1, 1, 1)
        occ = blend.expand(b, 1, h, w)
        image = first = None
        agree = static_agreement(img0, img1)  # the static guard's frame part, the same for every reading
        for flow in self._prior_readings(pair_flow, tt, (sh, sw), b, readings):  # no pyramid: no decoder reads it
            if (sh, sw) != (h, w):
                flow = resize_flow(flow, (h, w))
            one = self._compose(img0, img1, flow, blend, None, agree)
            image = one if image is None else image + one
            first = flow if first is None else first
        if len(readings) > 1:
            image = image / len(readings)
        return UGSPOutput(image=image, flow=first, occlusion=occ, residual=torch.zeros_like(image),
                          uncertainty=torch.zeros_like(occ))

    @staticmethod
    def _compose(img0, img1, flow, occ, res, agree: torch.Tensor | None = None) -> torch.Tensor:
        """Both frames warped by ``flow`` (B×4, to frame 0 then 1), blended by σ(``occ``: B×1×H×W,
        or B×1×1×1 for one weight per frame) plus the
        residual ``res`` (None: none), and the static guard (``agree``: its frame part, if made
        already); sampled and composed in fp32."""
        w0 = torch.sigmoid(occ)
        # the frames are sampled and composed in fp32 (no half rounding of the output)
        warped0 = backwarp(img0.float(), flow[:, :2])
        warped1 = backwarp(img1.float(), flow[:, 2:])
        image = w0 * warped0 + (1 - w0) * warped1
        if res is not None:
            image = image + res
        still = static_weight(img0, img1, flow, agree=agree)
        return torch.lerp(image, 0.5 * (img0.float() + img1.float()), still).clamp(0, 1)

    def _finish(self, d: dict, img0, img1, net_size, fixed_macs, refine, tt) -> UGSPOutput:
        head = self.up(d["fused"]).float()  # the frame is composed in fp32
        flow = resize_flow(d["flow"], head.shape[-2:])
        if "flow" in refine:
            flow = flow + head[:, :4]
        if d["priors"] is not None:  # the prior's full-resolution detail
            flow = flow - resize_flow(d["priors"][2], head.shape[-2:]) + d["priors"][1]
        rest = head[:, 4:]
        nh, nw = net_size
        flow, rest = flow[..., :nh, :nw], rest[..., :nh, :nw]  # drop the alignment pad
        h, w = img0.shape[-2:]
        if (nh, nw) != (h, w):  # the network ran scaled: bring its outputs to the frame size
            flow = resize_flow(flow, (h, w))
            rest = F.interpolate(rest, size=(h, w), mode="bilinear", align_corners=False)
        occ, res, logscale = rest[:, :1], rest[:, 1:4], rest[:, 4:5]
        if "fusion" not in refine:  # linear blend by time, as the classical interpolators do
            occ = torch.logit(1 - tt.float()).expand_as(occ)
        if "rgb" not in refine:
            res = torch.zeros_like(res)
        image = self._compose(img0, img1, flow, occ, res)
        dense_macs = fixed_macs + d["dense_macs"]
        return UGSPOutput(
            image=image, flow=flow, occlusion=occ, residual=res, uncertainty=logscale,
            masks=d["masks"], mask_logits=d["logits"], features=d["features"], flow_pyramid=d["flows"],
            executed=fixed_macs + d["executed"], masked=fixed_macs + d["mask_macs"], dense_macs=dense_macs,
        )
