"""Weights files: ``{"format": "vsugsp-weights", "version": 1, "config": {...}, "state_dict": {...}, "meta": {...}}``.

Saved with ``torch.save`` and loaded with ``weights_only=True``: tensors, numbers,
strings and plain containers only, never pickled code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..names import names_a_file
from ..quote import clip, short
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


def looks_like_path(name: str | Path) -> bool:
    """Whether ``name`` names a file: a ``Path``, or text with a separator or a ``.pt``
    suffix.  A bare word is a packaged name, whatever the current folder holds."""
    return names_a_file(name, (".pt",))


def resolve(path_or_name: str | Path) -> Path:
    """A packaged weights name (e.g. ``"small"``) or a path → an existing file path."""
    if not isinstance(path_or_name, (str, Path)) or not str(path_or_name):
        raise ValueError(f"vsugsp: model={short(path_or_name)}; allowed: a packaged weights name or a .pt path")
    if looks_like_path(path_or_name):
        p = Path(path_or_name).expanduser()
        if p.is_dir():
            raise ValueError(f"vsugsp: model={short(str(path_or_name))} is a directory; "
                             "give a weights .pt file or a packaged name")
        if not p.is_file():
            raise ValueError(f"vsugsp: weights file {short(str(p))} does not exist")
        return p
    cand = weights_dir() / f"{path_or_name}.pt"
    if not cand.is_file():
        names = ", ".join(available()) or "none are installed"
        hint = f" (a file here needs a path: ./{path_or_name})" if Path(str(path_or_name)).exists() else ""
        raise ValueError(f"vsugsp: no packaged weights named {short(str(path_or_name))}; available: {names}{hint}")
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
    name = short(str(path), 240)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or not a torch file at all
        raise ValueError(f"vsugsp: weights file {name} is corrupt or not a vsugsp weights file "
                         f"({type(exc).__name__}: {clip(str(exc), 200)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"vsugsp: {name} is not a vsugsp weights file (missing format tag {FORMAT!r})")
    if payload.get("version") != VERSION:
        raise ValueError(f"vsugsp: weights file {name} has format version {short(payload.get('version'))}; "
                         f"this vsugsp reads version {VERSION}")
    if not isinstance(payload.get("config"), dict) or not isinstance(payload.get("state_dict"), dict):
        raise ValueError(f"vsugsp: weights file {name} lacks its config or state_dict")
    payload["path"] = str(path)
    return payload


def load(path_or_name: str | Path = "small") -> UGSPNet:
    """Build a :class:`UGSPNet` from packaged weights (by name) or a file path; eval mode, CPU.

    The config is checked against its bounds, and every tensor's shape against the
    network it describes, on a network built on the meta device (no memory); the file's
    tensors then become its parameters, so a crafted config cannot make this allocate
    more than the file holds.
    """
    payload = read(path_or_name)
    path = short(payload["path"], 240)
    try:
        config = ModelConfig.from_dict(payload["config"])
    except (TypeError, ValueError) as exc:
        msg = str(exc).removeprefix("vsugsp: ") if isinstance(exc, ValueError) else short(str(exc))
        raise ValueError(f"vsugsp: weights file {path} has an invalid config: {msg}") from None
    state = payload["state_dict"]
    with torch.device("meta"):  # the network's shapes without its memory
        net = UGSPNet(config)
    _check_shapes(net.state_dict(), state, config, path)
    _check_finite(state, path)
    # the file's tensors become the parameters (one network built, no second copy)
    net.load_state_dict({k: v.float().contiguous() for k, v in state.items()}, assign=True)
    left = [name for name, t in [*net.named_parameters(), *net.named_buffers()] if t.is_meta]
    if left:  # a tensor the state dict does not hold (none today): refuse rather than run on nothing
        raise ValueError(f"vsugsp: weights file {path} leaves {short(left)} unset")
    net.meta = payload.get("meta", {})
    return net.eval()


def _check_shapes(own: dict[str, Any], state: dict[str, Any], config: ModelConfig, path: str) -> None:
    """Refuse ``state`` unless it holds exactly ``own``'s keys with their shapes."""
    if not all(isinstance(k, str) for k in state):
        raise ValueError(f"vsugsp: weights file {path} is corrupt: its state_dict has non-text keys")
    for key in set(own) & set(state):
        if not isinstance(state[key], torch.Tensor):
            raise ValueError(f"vsugsp: weights file {path} is corrupt: {short(key)} is a "
                             f"{type(state[key]).__name__}, not a tensor")
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or bad:
        parts = []
        if missing:
            parts.append(f"missing {short(missing[:3], 200)}")
        if unexpected:
            parts.append(f"unexpected {short(unexpected[:3], 200)}")
        if bad:
            shapes = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in bad[:2]]
            parts.append(f"shape mismatch (key, file, config) {short(shapes, 200)}")
        desc = f"width={config.width}, body={config.body}, decoder_mult={config.decoder_mult}"
        raise ValueError(f"vsugsp: weights file {path} does not match config ({desc}): " + "; ".join(parts))


def _check_finite(state: dict[str, Any], path: str) -> None:
    """Refuse a state dict with NaN or infinite values (a corrupt file), naming the first bad tensor."""
    for key in sorted(state):
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"vsugsp: weights file {path} is corrupt: {short(key)} is a {type(value).__name__}, "
                             "not a tensor")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise ValueError(f"vsugsp: weights file {path} is corrupt: tensor {short(key)} has {bad} non-finite "
                             f"value(s) (NaN or infinity) of {value.numel()}")
