"""Model configuration: a small dataclass stored inside every weights file."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..quote import short

#: Encoder channels at 1/2, 1/4, 1/8, 1/16 (IFRNet-S and IFRNet widths).
WIDTHS: dict[str, tuple[int, int, int, int]] = {
    "small": (24, 36, 54, 72),
    "base": (32, 48, 72, 96),
}

#: Per width: (body convs, decoder channel multiplier).  small ≈ 5.8 GMAC and
#: base ≈ 28.6 GMAC per 256×448 frame (the paper's release: ≈ 31.8 G).
DEFAULTS: dict[str, tuple[int, int]] = {"small": (2, 2), "base": (4, 3)}


#: Upper bounds of ``body`` and ``decoder_mult``: well above any trained network (the
#: defaults are 2..4 and 2..3), low enough that a crafted config cannot ask for a
#: network of hundreds of gigabytes (``body: 100000``).  base at both bounds: 175 M weights.
MAX_BODY = 16
MAX_DECODER_MULT = 8

#: Keys older weights files hold that no longer describe the network (ignored on load).
_RETIRED = frozenset({"tile"})


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a :class:`~vsugsp.model.UGSPNet`.

    width: ``"small"`` or ``"base"`` (encoder channels, see :data:`WIDTHS`).
    body: number of 3×3 convs after the head conv in each decoder block,
        1..:data:`MAX_BODY`; None → the width's default (:data:`DEFAULTS`).
    decoder_mult: decoder block channels = mult × the level's encoder channels,
        1..:data:`MAX_DECODER_MULT`; None → the width's default.

    How pruned pixels are computed (tile size and all) belongs to the masked-conv
    backend, not to the weights: :mod:`vsugsp.sparse.backends`.
    """

    width: str = "small"
    body: int | None = None
    decoder_mult: int | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.width, str) or self.width not in WIDTHS:
            raise ValueError(f"vsugsp: model width={short(self.width)}; allowed: {', '.join(WIDTHS)}")
        body, mult = DEFAULTS[self.width]
        if self.body is None:
            object.__setattr__(self, "body", body)
        if self.decoder_mult is None:
            object.__setattr__(self, "decoder_mult", mult)
        for key, hi in (("body", MAX_BODY), ("decoder_mult", MAX_DECODER_MULT)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
                raise ValueError(f"vsugsp: model {key}={short(v)}; allowed: an integer in 1..{hi}")
        if not isinstance(self.extra, dict):
            raise ValueError(f"vsugsp: model extra={short(self.extra)}; allowed: a mapping")

    @property
    def channels(self) -> tuple[int, int, int, int]:
        return WIDTHS[self.width]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """A validated config from a mapping (a weights file's ``config``, a recipe's ``model``)."""
        if not isinstance(d, dict):
            raise ValueError(f"vsugsp: model config must be a mapping, got {type(d).__name__}")
        known = {"width", "body", "decoder_mult", "extra"}
        # Weights written before the tile size moved to the backend carry "tile"
        # (always the CPU backend's 16): it is no part of the architecture.
        d = {k: v for k, v in d.items() if k not in _RETIRED}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"vsugsp: unknown model config keys {short(sorted(map(str, unknown)))}; "
                             f"allowed: {sorted(known)}")
        return cls(**d)
