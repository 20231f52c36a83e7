"""``mode: auto``: the faster of pruned and dense per device, frame size and preset, measured once and cached.

On a GPU a small network at 1080p is launch- and memory-bound, and a masked
convolution can cost more than the dense one it replaces (DESIGN §9).  ``auto``
therefore times both modes on the first pair of each frame size (the real
frames, so the masks are the real ones) and keeps the faster:

- :func:`choose_mode` is the decision, a pure function of measured timings;
- :func:`measure` times the two modes alternately (drift hits both alike);
- :class:`Calibrator` caches the decision in memory (per process) and on disk
  (``$XDG_CACHE_HOME/vsugsp/calibration.json``), keyed by device name, torch
  version, batch and frame size, the settings that change the work, and a
  checksum of the weights; :func:`decisions` lists this process's decisions
  (the CLI summary prints them), :func:`cached_decisions` the disk's (``vsugsp info``).

Only devices in :data:`CALIBRATED` are measured.  Elsewhere (the CPU) ``auto``
is ``pruned``: the tile backend is faster than dense there at every bundled
pruned preset (``vsugsp bench speed``), and a CPU's frames should not depend on
a noisy timing: they stay bit-identical to ``mode: pruned``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["CALIBRATED", "Decision", "choose_mode", "measure", "cache_key", "cache_path", "Calibrator",
           "decisions", "cached_decisions", "describe", "weights_checksum"]

log = logging.getLogger(__name__)

#: Device types on which ``auto`` measures; elsewhere it is ``pruned`` (see the module doc).
CALIBRATED: tuple[str, ...] = ("cuda",)
#: The two modes ``auto`` chooses between.
CANDIDATES: tuple[str, ...] = ("pruned", "dense")
#: Preset keys that do not change the network's work per pass (left out of the cache key).
_NOT_WORK = frozenset({"description", "device", "mode", "scene_change", "scene_threshold", "batch",
                       "cache_frames", "mpv", "adapt"})
#: Format of the disk cache (bumped when the measurement changes meaning).
_SCHEMA = 1


@dataclass(frozen=True)
class Decision:
    """What ``auto`` runs for one device, size and preset.

    mode: "pruned" or "dense"; pruned_ms / dense_ms: median ms per call of each
    (None when a run failed); source: "measured" or "disk cache"; device: its name; size: "W×H" of the frames
    (batch B as "B×W×H" when B > 1).
    """

    mode: str
    pruned_ms: float | None
    dense_ms: float | None
    source: str
    device: str
    size: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_mode(timings: Mapping[str, Sequence[float]]) -> str:
    """The mode with the lower median time: "pruned" or "dense".

    timings: ms per call for each of "pruned" and "dense" (a mode whose runs failed
    has an empty list or is missing: the other wins).  Ties go to dense (the
    unpruned frame, at no cost).  Raises ValueError when neither has a time.
    """
    med = {m: statistics.median(timings[m]) for m in CANDIDATES if timings.get(m)}
    if not med:
        raise ValueError("vsugsp: mode auto has no timing of either pruned or dense")
    if len(med) == 1:
        return next(iter(med))
    return "pruned" if med["pruned"] < med["dense"] else "dense"


def measure(run: Callable[[str], object], *, sync: Callable[[], None] = lambda: None, warmup: int = 1,
            repeats: int = 3, clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Time ``run(mode)`` for each of :data:`CANDIDATES`, alternating, in ms per call.

    Each mode runs ``warmup`` times untimed (kernel compiles, allocator), then the
    modes alternate ``repeats`` times so that a drifting clock rate hits both.
    A mode that raises is left out (its list stays empty) and logged.
    """
    times: dict[str, list[float]] = {m: [] for m in CANDIDATES}
    broken: set[str] = set()
    for m in CANDIDATES:
        try:
            for _ in range(warmup):
                run(m)
            sync()
        except Exception as exc:  # e.g. a backend failing on this size: the other mode wins
            log.warning(f"vsugsp: mode auto: the {m} pass failed while calibrating ({type(exc).__name__}: {exc})")
            broken.add(m)
    for _ in range(repeats):
        for m in CANDIDATES:
            if m in broken:
                continue
            t0 = clock()
            run(m)
            sync()
            times[m].append((clock() - t0) * 1000.0)
    return times


def weights_checksum(net: Any) -> str:
    """SHA-256 (hex, first 16 digits) of a module's state dict: names, dtypes, shapes and values."""
    import torch

    h = hashlib.sha256()
    for name, v in net.state_dict().items():
        t = v.detach().cpu().contiguous().view(-1)
        h.update(f"{name}:{t.dtype}:{tuple(v.shape)};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def cache_key(*, device_name: str, torch_version: str, batch: int, width: int, height: int,
              settings: Mapping[str, Any], weights: str) -> str:
    """One hex key for a calibration: the device, torch, the frame batch and size, the
    settings that change the work per pass (not ``_NOT_WORK``), the weights' checksum."""
    work = {k: v for k, v in sorted(settings.items()) if k not in _NOT_WORK}
    blob = json.dumps({"device": device_name, "torch": torch_version, "batch": batch, "w": width, "h": height,
                       "settings": work, "weights": weights, "schema": _SCHEMA}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def cache_path() -> Path:
    """The disk cache: ``$XDG_CACHE_HOME/vsugsp/calibration.json`` (``~/.cache`` without XDG)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vsugsp" / "calibration.json"


def _read(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: measure again
    if not isinstance(data, dict) or data.get("schema") != _SCHEMA or not isinstance(data.get("entries"), dict):
        return {}
    return data["entries"]


def _write(path: Path, key: str, decision: Decision) -> None:
    """Add one entry (read-modify-write, atomic rename; a failure only costs a re-measure next time)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        entries = _read(path)
        entries[key] = decision.to_dict()
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps({"schema": _SCHEMA, "entries": entries}, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning(f"vsugsp: mode auto: cannot write the calibration cache {path} ({exc})")


_memory: dict[str, Decision] = {}
_order: list[str] = []
_lock = threading.Lock()


def _remember(key: str, decision: Decision) -> None:
    if key not in _memory:
        _order.append(key)
    _memory[key] = decision


def decisions() -> list[Decision]:
    """This process's ``auto`` decisions, in the order they were made (for the CLI summary)."""
    with _lock:
        return [_memory[k] for k in _order]


def cached_decisions(path: Path | None = None) -> list[Decision]:
    """The decisions on disk (for ``vsugsp info``)."""
    out = []
    for entry in _read(path or cache_path()).values():
        try:
            out.append(Decision(**entry))
        except TypeError:
            continue
    return out


def describe(d: Decision) -> str:
    """One line: ``mode auto: dense at 1920x1080 on NVIDIA H200 (pruned 9.4 ms, dense 5.0 ms; measured)``."""
    times = ", ".join(f"{m} {ms:.1f} ms" for m, ms in (("pruned", d.pruned_ms), ("dense", d.dense_ms))
                      if ms is not None)
    return f"mode auto: {d.mode} at {d.size} on {d.device} ({times + '; ' if times else ''}{d.source})"


class Calibrator:
    """Resolves ``auto`` for one network and settings on one device by measuring (thread-safe).

    device: a torch device; net: the network (its weights key the disk cache);
    settings: the preset as a mapping (``Preset.to_dict()``); use_disk: read and
    write the disk cache.
    """

    def __init__(self, device: Any, net: Any, settings: Mapping[str, Any], use_disk: bool = True) -> None:
        self.device = device
        self.net = net
        self.settings = dict(settings)
        self.use_disk = use_disk
        self._local: dict[tuple[int, int, int], str] = {}
        self._weights: str | None = None
        self._measuring = threading.Lock()  # one calibration at a time: concurrent passes would skew it

    @property
    def calibrated(self) -> bool:
        """True when ``auto`` measures on this device (:data:`CALIBRATED`); elsewhere it is ``pruned``."""
        return self.device.type in CALIBRATED

    def device_name(self) -> str:
        import torch

        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return str(self.device)

    def key(self, batch: int, width: int, height: int) -> str:
        import torch

        if self._weights is None:
            self._weights = weights_checksum(self.net)
        return cache_key(device_name=self.device_name(), torch_version=torch.__version__, batch=batch,
                         width=width, height=height, settings=self.settings, weights=self._weights)

    def known(self, batch: int, width: int, height: int) -> str | None:
        """The mode already decided for B×3×H×W frames, or None."""
        return self._local.get((batch, width, height))

    def mode(self, batch: int, width: int, height: int, run: Callable[[str], object]) -> str:
        """"pruned" or "dense" for B×3×H×W frames; ``run(mode)`` runs one pass (called only to measure)."""
        hit = self.known(batch, width, height)
        if hit is not None:
            return hit
        with self._measuring:
            hit = self.known(batch, width, height)
            return hit if hit is not None else self._decide(batch, width, height, run)

    def _decide(self, batch: int, width: int, height: int, run: Callable[[str], object]) -> str:
        size = f"{width}x{height}" if batch == 1 else f"{batch}x{width}x{height}"
        key = self.key(batch, width, height)
        decision = self._lookup(key, run, size)
        with _lock:
            _remember(key, decision)
        self._local[(batch, width, height)] = decision.mode
        return decision.mode

    def _lookup(self, key: str, run: Callable[[str], object], size: str) -> Decision:
        with _lock:
            found = _memory.get(key)
        if found is not None:
            return found
        path = cache_path()
        if self.use_disk:
            entry = _read(path).get(key)
            if entry is not None:
                try:
                    return Decision(**{**entry, "source": "disk cache"})
                except TypeError:
                    pass  # an entry of another layout: measure again
        import torch

        sync = (lambda: torch.cuda.synchronize(self.device)) if self.device.type == "cuda" else (lambda: None)
        times = measure(run, sync=sync)
        med = {m: (statistics.median(v) if v else None) for m, v in times.items()}
        decision = Decision(choose_mode(times), med["pruned"], med["dense"], "measured", self.device_name(), size)
        log.info(f"vsugsp: {describe(decision)}")
        if self.use_disk:
            _write(path, key, decision)
        return decision
