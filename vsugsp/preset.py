"""Inference presets: YAML files of named settings, validated into a frozen ``Preset``.

(The module is ``preset`` because ``vsugsp.presets`` is the installed data
package holding the YAML files.)

Bundled presets live in the top-level ``presets/`` folder (installed as
``vsugsp.presets``): ``fast``, ``balanced``, ``quality``, ``realtime``. A user
YAML file works the same way (a path instead of a name); keys it leaves out take
the values of its ``base`` preset (default ``balanced``). Keyword overrides win
over both. Every value is checked; errors name the key, the value and what is
allowed.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .quote import clip, short
from .yamlfile import load_file, looks_like_path, text_number_hint

__all__ = ["Preset", "PRESET_KEYS", "Limits", "MPV_LIMITS", "preset_dir", "available_presets", "load_preset"]

MODES = ("dense", "pruned", "auto")
PRECISIONS = ("fp16", "fp32")
#: "auto" and :data:`vsugsp.sparse.backends.BACKEND_NAMES` (written out: this module stays torch-free)
BACKENDS = ("auto", "reference", "tiles", "cpu", "cuda")
SCENE_MODES = ("auto", "props", "detect", "off")
FLOW_PRIORS = ("none", "dis", "dis-fast", "dis-light", "auto", "auto-fast", "auto-realtime")
MOTIONS = ("linear", "quadratic")


@dataclass(frozen=True)
class Preset:
    """Validated inference settings (see ``presets/*.yaml`` for the bundled values).

    model: packaged weights name or path to a ``.pt`` file.
    mode: "pruned" (skip easy pixels), "dense", or "auto" (the default): on CUDA the
        faster of the two per frame size, measured on first use and cached
        (:mod:`vsugsp.calibrate`); on a CPU "pruned" (faster there, same frames).
    threshold: pruned mode's P(compute) a pixel needs, [0, 1); higher prunes more.
    max_density: pruned mode's cap on the fraction of pixels computed per decoder
        level, (0, 1]: one number, or three (levels at 1/8, 1/4, 1/2 size); the
        pixels most likely to need computing are kept (the CPU backend counts and
        keeps whole tiles, its unit of work).  None: no cap.  Bounds the
        work on hard footage, where the threshold alone lets most pixels through.
    ensemble: views of each pair the network's frame is averaged over: 1, 2 (+ the
        time-swapped pair) or 4 (+ both mirrored); costs that many network passes.
    readings: the prior alone's ensemble (``refine`` empty, with a prior): its frame is
        the mean of this many readings of the prior's flows, 1, 2 or 4
        (:data:`vsugsp.model.net.PRIOR_ALONE_VIEWS`): that many warps and blends, no
        network (the network's views would give the prior alone one frame again).
    scale: the network runs at this fraction of the frame size, (0, 1].
    flow_prior: "none", or "dis": the network refines OpenCV's DIS optical flow
        between the two source frames (computed on the CPU, once per source pair)
        instead of searching for the motion from nothing; needs
        ``opencv-python-headless``.  Best on large motion.  "dis-fast": DIS on
        half-size frames (about a quarter of the cost, nearly the same flow).  "dis-light":
        OpenCV's lighter DIS preset at full size (a fifth of the cost, a little less
        accurate).  "auto" / "auto-fast": "dis" / "dis-fast" where
        OpenCV is installed, else "none" (with a warning in the log).  "auto-realtime":
        "dis-fast" on CUDA where the prior pool keeps up with the clip's rate (measured on
        the first pair, said in the log), else "none"; "dis-light" on a CPU ("none"
        without OpenCV).
    motion: "quadratic" (default) or "linear": the prior's flows at t follow a quadratic
        path estimated from the outer neighbours' priors (source frames i − 1 and i + 2;
        linear at a clip's ends, across a scene cut and where the acceleration is not
        trusted: :mod:`vsugsp.model.motion`), or the straight line between the pair.  No
        extra DIS runs (the neighbours' priors are the engine's own).  Without a prior
        (``flow_prior`` none, or a prior that resolves to none: no OpenCV, tiny frames)
        there is nothing to bend and the frames are the linear ones.
    refine: which corrections the network makes to the flow it starts from (the DIS
        prior, or zero): any of "flow" (flow residuals), "fusion" (learned occlusion
        blend, else an equal blend) and "rgb" (RGB residual); without a prior the network
        needs "flow" too.  Default: none, i.e. the prior alone where a pair has one (its
        flows on the motion path, both frames warped and blended: the network does not run;
        better than the network's corrections on bigbuckbunny and the training clips, 0.08 dB
        below them on carphone, about 3× faster: docs/evaluation.md)
        and the whole network where it has none (no OpenCV, frames too small for DIS).
    adapt: scene adaptation, optimizer steps (0: off): before the first frame, a copy
        of the network is fine-tuned on triplets cut from the clip being interpolated
        (:func:`vsugsp.adapt.adapt`, its default settings); costs minutes on a CPU.
    large_scale / large_height: frames taller than ``large_height`` lines run at
        ``large_scale`` instead (None: no special case).
    precision: "fp16" or "fp32".  "fp16" means native half precision: fp16 on
        CUDA, bfloat16 autocast on a CPU with native bf16 (AVX512-BF16 or AMX),
        fp32 on other CPUs.
    device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
    backend: masked-conv backend: "auto" (the tile path on a CPU; on CUDA the CuPy
        kernels once they pass their self-check, else the tile path), "tiles" (the
        torch tile path on any device; "cpu" is its older name), "cuda" or "reference".
    scene_change: "auto" (``_SceneChangeNext/Prev`` when present, else our
        detector), "props", "detect" or "off".
    scene_threshold: detector cut score above which a pair is a cut, (0, 1].
    batch: most interpolated frames of one source pair computed in one pass, ≥ 1.
    cache_frames: encoder features of this many source frames are kept, ≥ 2.
    mpv: limits for real-time playback (read by ``vsugsp.mpv``): a mapping with
        any of ``max_pixels`` (source width×height above which frames pass
        through), ``max_source_fps`` (a source this fast passes through),
        ``max_output_fps`` (cap on the display-following output rate), given
        directly and/or per device kind under ``cpu:`` / ``cuda:``.
    """

    # The defaults are the one default setting, which is ``balanced``: the bundled
    # YAML files hold only their differences from it (tests/test_presets.py checks).
    description: str = ""
    model: str = "small"
    mode: str = "auto"
    threshold: float = 0.5
    max_density: float | tuple[float, ...] | None = 0.4
    ensemble: int = 1
    readings: int = 2
    flow_prior: str = "auto"
    motion: str = "quadratic"
    refine: tuple[str, ...] = ()
    adapt: int = 0
    scale: float = 1.0
    large_scale: float = 1.0
    large_height: int | None = None
    precision: str = "fp16"
    device: str = "auto"
    backend: str = "auto"
    scene_change: str = "auto"
    scene_threshold: float = 0.1
    batch: int = 8
    cache_frames: int = 8
    mpv: dict = dataclasses.field(default_factory=dict)

    def scale_for(self, height: int) -> float:
        """Network scale for frames ``height`` lines tall."""
        if self.large_height is not None and height > self.large_height:
            return self.large_scale
        return self.scale

    def to_dict(self) -> dict[str, Any]:
        """Plain values (what a YAML file holding this preset would say)."""
        return dataclasses.asdict(self)

    def get(self, key: str, default: Any = None) -> Any:
        """Mapping-style read of a key (``default`` for names that are not keys)."""
        return getattr(self, key, default) if key in PRESET_KEYS else default


PRESET_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Preset))


def preset_dir() -> Path:
    """Folder of the bundled preset YAML files (installed package or source checkout)."""
    try:
        from vsugsp.presets import PRESET_DIR  # installed: presets/ → vsugsp.presets

        return Path(PRESET_DIR)
    except ImportError:
        return Path(__file__).resolve().parent.parent / "presets"


def available_presets() -> list[str]:
    """Names of the bundled presets."""
    d = preset_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def _err(key: str, value: object, allowed: str) -> ValueError:
    # short(): a value may be a YAML alias bomb, whose full repr runs to gigabytes
    hint = text_number_hint(value) if allowed.startswith("a number") else ""
    return ValueError(f"vsugsp: preset key {key!r} = {short(value)} is invalid{hint}; allowed: {allowed}")


def _number(key: str, v: object, lo: float, hi: float, lo_open: bool, hi_open: bool) -> float:
    lo_s = ("(" if lo_open else "[") + f"{lo:g}"
    hi_s = f"{hi:g}" + (")" if hi_open else "]")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _err(key, v, f"a number in {lo_s}, {hi_s}")
    x = float(v)
    if not (x > lo if lo_open else x >= lo) or not (x < hi if hi_open else x <= hi):
        raise _err(key, v, f"a number in {lo_s}, {hi_s}")
    return x


def _int(key: str, v: object, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise _err(key, v, f"an integer ≥ {lo}")
    return int(v)


def _choice(key: str, v: object, choices: tuple[str, ...]) -> str:
    if not isinstance(v, str) or v.lower() not in choices:
        raise _err(key, v, " | ".join(choices))
    return v.lower()


def _validate(key: str, v: object) -> object:
    if key == "description":
        if not isinstance(v, str):
            raise _err(key, v, "a string")
        return v
    if key == "model":
        if not isinstance(v, (str, Path)) or not str(v):
            raise _err(key, v, "a packaged weights name or a path to a .pt file")
        return str(v)
    if key == "mode":
        return _choice(key, v, MODES)
    if key == "threshold":
        return _number(key, v, 0.0, 1.0, False, True)
    if key == "max_density":
        if v is None:
            return None
        if isinstance(v, (list, tuple)):
            if len(v) != 3:
                raise _err(key, v, "null, a number in (0, 1], or a list of 3 such numbers (levels 1/8, 1/4, 1/2)")
            return tuple(_number(key, x, 0.0, 1.0, True, False) for x in v)
        return _number(key, v, 0.0, 1.0, True, False)
    if key in ("ensemble", "readings"):
        if isinstance(v, bool) or v not in (1, 2, 4):
            raise _err(key, v, "1 | 2 | 4")
        return int(v)
    if key == "flow_prior":
        if v is None or v is False:
            return "none"
        return _choice(key, v, FLOW_PRIORS)
    if key == "motion":
        return _choice(key, v, MOTIONS)
    if key == "refine":
        from .model.net import REFINE, check_refine

        allowed = f"a list of any of {', '.join(REFINE)} (or an empty list)"
        v = [] if v is None else v
        # names only: a nested list (an alias bomb, say) would reach set() as unhashable
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
            raise _err(key, v, allowed)
        try:
            chosen = check_refine(v)
        except ValueError:
            raise _err(key, v, allowed) from None
        return tuple(r for r in REFINE if r in chosen)
    if key in ("scale", "large_scale"):
        return _number(key, v, 0.0, 1.0, True, False)
    if key == "large_height":
        return None if v is None else _int(key, v, 1)
    if key == "precision":
        return _choice(key, v, PRECISIONS)
    if key == "device":
        if not isinstance(v, str) or not (
            v.lower() in ("auto", "cpu", "cuda") or (v.lower().startswith("cuda:") and v[5:].isdigit())
        ):
            raise _err(key, v, "auto | cpu | cuda | cuda:N")
        return v.lower()
    if key == "backend":
        return _choice(key, v, BACKENDS)
    if key == "scene_change":
        if v is False:
            return "off"
        if v is True:
            return "auto"
        return _choice(key, v, SCENE_MODES)
    if key == "scene_threshold":
        return _number(key, v, 0.0, 1.0, True, False)
    if key == "batch":
        return _int(key, v, 1)
    if key == "adapt":
        return _int(key, v, 0)
    if key == "cache_frames":
        return _int(key, v, 2)
    if key == "mpv":
        return _mpv_section(v)
    raise ValueError(f"vsugsp: unknown preset key {short(key)}; allowed: {', '.join(PRESET_KEYS)}")


@dataclass(frozen=True)
class Limits:
    """Real-time playback limits (a preset's ``mpv:`` keys; read by ``vsugsp.mpv``):
    where interpolation is skipped because it would not keep up.

    max_pixels: source width*height above which frames pass through, an integer ≥ 1;
    max_source_fps: a source faster than this passes through (smooth already), > 0;
    max_output_fps: cap on the automatic (display-following) output rate, > 0.

    The field names are the keys (:data:`MPV_LIMITS`); the numbers live in
    ``presets/realtime.yaml`` only (the fallback for presets without them).
    """

    max_pixels: int
    max_source_fps: float
    max_output_fps: float


#: The keys of a preset's ``mpv:`` section (given directly or per device kind).
MPV_LIMITS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Limits))
MPV_DEVICES = ("cpu", "cuda")
_MPV_INT_LIMITS = frozenset(f.name for f in dataclasses.fields(Limits) if f.type in (int, "int"))


def _mpv_limits(where: str, v: Mapping) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, x in v.items():
        if k in _MPV_INT_LIMITS:
            out[k] = _int(f"{where}.{k}", x, 1)
        elif k in MPV_LIMITS:
            out[k] = _number(f"{where}.{k}", x, 0.0, float("inf"), True, True)
        else:
            raise ValueError(
                f"vsugsp: unknown preset key {where}.{clip(k) if isinstance(k, str) else short(k)}; allowed: {', '.join(MPV_LIMITS)}"
                + (f" or per device {', '.join(MPV_DEVICES)}" if where == "mpv" else "")
            )
    return out


def _mpv_section(v: object) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise _err("mpv", v, f"a mapping of {', '.join(MPV_LIMITS)} (optionally per device: {', '.join(MPV_DEVICES)})")
    flat = {k: x for k, x in v.items() if k not in MPV_DEVICES}
    out = _mpv_limits("mpv", flat)
    for dev in MPV_DEVICES:
        if dev in v:
            if not isinstance(v[dev], Mapping):
                raise _err(f"mpv.{dev}", v[dev], f"a mapping of {', '.join(MPV_LIMITS)}")
            out[dev] = _mpv_limits(f"mpv.{dev}", v[dev])
    return out


def _read_yaml(path: Path) -> dict[str, Any]:

    what = f"preset file {short(str(path))}"
    data = load_file(path, what)  # bounded: size cap, nesting and alias-expansion limits
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"vsugsp: {what} must hold a mapping of keys, got {type(data).__name__}")
    return data


#: Longest ``base`` chain followed (the bundled presets use 1).
MAX_BASE_CHAIN = 16


def _resolve(preset: str | Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Raw (unvalidated) values of a preset, following ``base`` chains.

    seen: the presets that led here, as bundled names or resolved file paths (so that
    ``./a.yaml`` and ``../dir/a.yaml`` are the same file and close a cycle).
    """
    name = str(preset)
    if isinstance(preset, Path) or looks_like_path(name):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ValueError(f"vsugsp: preset file {short(name)} does not exist")
        key = str(path.resolve())
        data = _read_yaml(path)
        base = data.pop("base", "balanced")
        if isinstance(base, str) and looks_like_path(base) and not Path(base).expanduser().is_absolute():
            base = str(path.parent / base)  # a relative base is relative to this YAML's folder
    else:
        names = available_presets()
        if name not in names:
            raise ValueError(
                f"vsugsp: unknown preset {short(name)}; available: {', '.join(names) or 'none found'} "
                "(or give a path to a YAML file: it needs a / or a .yaml suffix)"
            )
        key = name
        data = _read_yaml(preset_dir() / f"{name}.yaml")
        base = data.pop("base", None)
    if key in seen:
        raise ValueError(f"vsugsp: preset {short(seen[0])} has a circular base chain through {short(name)}")
    if len(seen) >= MAX_BASE_CHAIN:
        raise ValueError(f"vsugsp: preset {short(seen[0])} has a base chain longer than {MAX_BASE_CHAIN}")
    if base is None:
        return data
    if not isinstance(base, str):
        raise _err("base", base, "the name of a bundled preset or a YAML path")
    merged = _resolve(base, seen + (key,))
    merged.update(data)
    return merged


def split_preset(spec: str) -> tuple[str, dict]:
    """``"quality:ensemble=1+scale=0.5"`` → ``("quality", {"ensemble": 1, "scale": 0.5})``.

    A preset (name or YAML path) may carry preset-key overrides after its last
    ``:``, joined by ``+``; values are read as YAML scalars.
    """
    from .yamlfile import load_text

    head, sep, tail = spec.rpartition(":")
    if not sep or "=" not in tail:
        return spec, {}
    overrides = {}
    for item in tail.split("+"):
        key, eq, raw = item.partition("=")
        if not eq or not key.strip().isidentifier():
            raise ValueError(f"vsugsp: preset override {item!r} in {spec!r} is not KEY=VALUE")
        overrides[key.strip()] = load_text(raw, f"preset override {key.strip()!r}") if raw.strip() else None
    return head, overrides


def load_preset(preset: "str | Path | Mapping[str, Any] | Preset" = "balanced", **overrides: Any) -> Preset:
    """A validated ``Preset`` from a bundled name, a YAML path, a mapping or a ``Preset``.

    ``overrides`` (any ``Preset`` key) win over the preset's values.
    Raises ``ValueError("vsugsp: ...")`` for unknown names/keys and bad values.
    """
    if isinstance(preset, Preset):
        raw = preset.to_dict()
    elif isinstance(preset, Mapping):
        raw = dict(preset)
        base = raw.pop("base", None)
        if base is not None:
            merged = _resolve(base)
            merged.update(raw)
            raw = merged
    elif isinstance(preset, (str, Path)):
        raw = _resolve(preset)
    else:
        raise ValueError(
            f"vsugsp: preset must be a name ({', '.join(available_presets())}), a YAML path, "
            f"a mapping or a Preset, got {type(preset).__name__}"
        )
    raw.update(overrides)
    values = {key: _validate(key, v) for key, v in raw.items()}
    chosen = Preset(**values)
    # "auto-realtime" may run without a prior (CUDA, the pool not keeping up; no OpenCV): adapting may serve
    if chosen.adapt and not chosen.refine and chosen.flow_prior not in ("none", "auto-realtime"):
        raise ValueError(f"vsugsp: adapt={chosen.adapt} fine-tunes the network, but refine=[] with "
                         f"flow_prior={chosen.flow_prior} makes every frame from the flow prior alone (the "
                         f"network does not run); allowed: adapt=0, or a refine list such as "
                         f"refine=[fusion, rgb], or flow_prior=none")
    return chosen
