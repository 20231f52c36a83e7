"""Building blocks: conv + PReLU, the encoder pyramid, and the (prunable) decoder block."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..sparse.backends import BlockWeights, ConvWeights, MaskedBackend, get_backend


class ConvAct(nn.Module):
    """3×3 conv (stride 1 or 2) followed by a per-channel PReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1)
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))

    def macs_per_pixel(self) -> int:
        """MACs per output pixel."""
        return 9 * self.conv.in_channels * self.conv.out_channels


class Encoder(nn.Module):
    """Feature pyramid at 1/2, 1/4, 1/8, 1/16: each stage conv3×3/2 + conv3×3, PReLU after each."""

    def __init__(self, channels: tuple[int, int, int, int]) -> None:
        super().__init__()
        stages = []
        cin = 3
        for c in channels:
            stages.append(nn.Sequential(ConvAct(cin, c, 2), ConvAct(c, c)))
            cin = c
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def macs(self, h: int, w: int) -> int:
        """MACs for one H×W frame (H, W multiples of 16)."""
        total = 0
        for i, stage in enumerate(self.stages):
            px = (h >> (i + 1)) * (w >> (i + 1))
            total += px * sum(m.macs_per_pixel() for m in stage)
        return total


class DecoderBlock(nn.Module):
    """Head 3×3 conv + ``body`` 3×3 convs; all outputs concatenated and fused by a 1×1 conv.

    In pruned blocks the 3×3 convs run only where the mask is on (how is the
    backend's business, :mod:`vsugsp.sparse.backends`); masked-off pixels have
    zero features, and the bias-free fuse maps them to zero output (no flow
    update, no features, for the pixel).
    """

    def __init__(self, cin: int, ch: int, body: int, cout: int, bias: bool = False, logit_rows: int = 0) -> None:
        super().__init__()
        #: trailing fuse outputs that are mask logits (see ``detach_logits``)
        self.logit_rows = logit_rows
        self.head = ConvAct(cin, ch)
        self.body = nn.ModuleList(ConvAct(ch, ch) for _ in range(body))
        self.fuse = nn.Conv2d(ch * (body + 1), cout, 1, bias=bias)

    def convs(self) -> list[ConvAct]:
        return [self.head, *self.body]

    def weights(self) -> BlockWeights:
        """The tensors a masked-conv backend runs (no copies; they track training)."""
        return BlockWeights(tuple(ConvWeights(c.conv.weight, c.conv.bias, c.act.weight) for c in self.convs()),
                            self.fuse.weight, self.fuse.bias)

    def macs_per_pixel(self) -> int:
        return sum(c.macs_per_pixel() for c in self.convs()) + self.fuse.in_channels * self.fuse.out_channels

    def _fuse(self, h: torch.Tensor, detach_logits: bool) -> torch.Tensor:
        if not detach_logits or not self.logit_rows:
            return self.fuse(h)
        # Mask-logit rows read detached features: losses on the masks (labels, sparsity,
        # the masked pass) train only these rows of the 1x1 fuse, never the shared trunk
        # that also produces flow and features.
        k = self.fuse.out_channels - self.logit_rows
        w, b = self.fuse.weight, self.fuse.bias
        main = F.conv2d(h, w[:k], None if b is None else b[:k])
        tail = F.conv2d(h.detach(), w[k:], None if b is None else b[k:])
        return torch.cat([main, tail], 1)

    def forward_dense(self, x: torch.Tensor, detach_logits: bool = False) -> torch.Tensor:
        outs = []
        for conv in self.convs():
            x = conv(x)
            outs.append(x)
        return self._fuse(torch.cat(outs, 1), detach_logits)

    def forward_soft(self, x: torch.Tensor, mask: torch.Tensor, detach_logits: bool = False) -> torch.Tensor:
        """Training: every 3×3 output multiplied by a soft mask in [0, 1]."""
        outs = []
        for conv in self.convs():
            x = conv(x) * mask
            outs.append(x)
        return self._fuse(torch.cat(outs, 1), detach_logits)

    def forward_pruned(self, x: torch.Tensor, mask: torch.Tensor,
                       backend: "str | MaskedBackend" = "reference") -> tuple[torch.Tensor, int]:
        """Hard mask (B×1×H×W bool), run by ``backend`` (a name or a :class:`MaskedBackend`).

        Returns (output, output pixels the backend computed per conv).
        """
        be = get_backend(backend)
        plan = be.plan(mask)
        return be.run_block(self.weights(), x, plan), be.executed_pixels(plan)
