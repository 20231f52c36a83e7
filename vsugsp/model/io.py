"""Weights files: ``{"format": "vsugsp-weights", "version": 1, "config": {...}, "state_dict": {...}, "meta": {...}}``.

Saved with ``torch.save`` and loaded with ``weights_only=True``: tensors, numbers,
strings and plain containers only, never pickled code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .config import ModelConfig
from .net import UGSPNet

FORMAT = "vsugsp-weights"
VERSION = 1


def weights_dir() -> Path:
    """Folder of the weights shipped inside the package."""
    from .. import weights

    return Path(weights.__file__).resolve().parent


def available() -> list[str]:
    """Names of the packaged weights (``load(name)`` accepts them)."""
    return sorted(p.stem for p in weights_dir().glob("*.pt"))


def resolve(path_or_name: str | Path) -> Path:
    """A packaged weights name (e.g. ``"small"``) or a path → an existing file path."""
    p = Path(path_or_name).expanduser()
    if p.suffix == ".pt" or p.exists() or "/" in str(path_or_name) or "\\" in str(path_or_name):
        if p.is_dir():
            raise ValueError(f"vsugsp: model={str(path_or_name)!r} is a directory; "
                             "give a weights .pt file or a packaged name")
        if not p.is_file():
            raise ValueError(f"vsugsp: weights file {str(p)!r} does not exist")
        return p
    cand = weights_dir() / f"{path_or_name}.pt"
    if not cand.is_file():
        names = ", ".join(available()) or "none are installed"
        raise ValueError(f"vsugsp: no packaged weights named {str(path_or_name)!r}; available: {names}")
    return cand


def save(net: UGSPNet, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``net``'s weights and config (fp32) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "config": net.config.to_dict(), "state_dict": state,
               "meta": dict(meta or {})}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def read(path_or_name: str | Path) -> dict[str, Any]:
    """Load and validate a weights file's payload (no model built)."""
    path = resolve(path_or_name)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or not a torch file at all
        raise ValueError(f"vsugsp: weights file {str(path)!r} is corrupt or not a vsugsp weights file ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"vsugsp: {str(path)!r} is not a vsugsp weights file (missing format tag {FORMAT!r})")
    if payload.get("version") != VERSION:
        raise ValueError(f"vsugsp: weights file {str(path)!r} has format version {payload.get('version')!r}; this vsugsp reads version {VERSION}")
    if not isinstance(payload.get("config"), dict) or not isinstance(payload.get("state_dict"), dict):
        raise ValueError(f"vsugsp: weights file {str(path)!r} lacks its config or state_dict")
    payload["path"] = str(path)
    return payload


def load(path_or_name: str | Path = "small") -> UGSPNet:
    """Build a :class:`UGSPNet` from packaged weights (by name) or a file path; eval mode, CPU."""
    payload = read(path_or_name)
    path = payload["path"]
    try:
        config = ModelConfig.from_dict(payload["config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"vsugsp: weights file {path!r} has an invalid config: {exc}") from None
    net = UGSPNet(config)
    missing, unexpected = [], []
    own = net.state_dict()
    state = payload["state_dict"]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or bad:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}")
        if bad:
            parts.append(f"shape mismatch {[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in bad[:3]]}")
        raise ValueError(f"vsugsp: weights file {path!r} does not match config {config}: " + "; ".join(parts))
    _check_finite(state, path)
    net.load_state_dict(state)
    net.meta = payload.get("meta", {})
    return net.eval()


def _check_finite(state: dict[str, Any], path: str) -> None:
    """Refuse a state dict with NaN or infinite values (a corrupt file), naming the first bad tensor."""
    for key in sorted(state):
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"vsugsp: weights file {path!r} is corrupt: {key!r} is a {type(value).__name__}, "
                             "not a tensor")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise ValueError(f"vsugsp: weights file {path!r} is corrupt: tensor {key!r} has {bad} non-finite "
                             f"value(s) (NaN or infinity) of {value.numel()}")
