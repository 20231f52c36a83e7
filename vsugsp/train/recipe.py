"""Training recipes: YAML files (``presets/train/*.yaml``) validated into dataclasses."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..model.config import ModelConfig
from ..quote import clip, short
from ..yamlfile import load_file, looks_like_path, text_number_hint

STAGE_MODES = ("dense", "train")


@dataclass
class Stage:
    """One training stage.

    mode: "dense" (stage 1: unpruned network + uncertainty head) or "train" (stage 3:
    Gumbel masks, pruned + dense passes, self-contrast, sparsity; mask labels come
    from the dense pass's uncertainty, i.e. stage 2 runs on the fly).
    steps: optimizer steps in this stage.  lr / lr_min: cosine schedule bounds.
    isolate_logits: train mode only; the mask logits read detached decoder features, so
    the mask losses (labels, sparsity, the masked pass through the soft masks) train only
    the logit rows of each decoder's 1×1 fuse, not the trunk that the dense pass shares.
    real: share of the samples, [0, 1], cut from real footage (``data.real``): image
    losses only (no ground-truth flow), the rest stay synthetic with flow supervision.
    prior: share of the samples, [0, 1], that get the DIS flow prior
    (:mod:`vsugsp.model.prior`, computed on the fly from the inputs); the others run
    without one, so the network stays good both ways.
    quad: share, [0, 1], of the prior's samples whose prior is the quadratic-motion one (the
    pair's flows plus its outer neighbours' pairs, :mod:`vsugsp.model.motion`, as the filter's
    ``motion: quadratic``); the others keep the linear prior, as at a clip's ends or a cut.
    Above 0 the data renders (or cuts) frames -1 and 2 beside every triplet.
    """

    name: str
    mode: str = "dense"
    steps: int = 1000
    lr: float = 3e-4
    lr_min: float = 3e-5
    warmup: int = 200
    w_image: float = 1.0
    w_dense_image: float = 0.5
    w_flow: float = 0.01
    w_occ: float = 0.05
    w_uncertainty: float = 0.05
    w_census: float = 0.001
    census_channels: int = 0  # self-contrast on this many random channels per level (0: all)
    w_sparsity: float = 0.1
    sparsity_ramp: float = 0.2  # fraction of the stage over which the sparsity weight ramps in
    density_target: float = 0.5
    w_label: float = 0.5
    w_label_end: float = 0.1
    rho: list[float] = field(default_factory=lambda: [0.6, 0.5, 0.4])
    tau: float = 1.0
    isolate_logits: bool = False
    prior: float = 0.0
    real: float = 0.0
    quad: float = 0.0


@dataclass
class DataSpec:
    source: str = "synth"  # synth | vimeo | video
    path: str = ".cache/photos"  # photo pool, Vimeo root, or video file
    size: int = 128
    workers: int = 1
    heldout: int = 32
    heldout_size: int = 128
    synth: dict = field(default_factory=dict)  # SynthConfig overrides
    # real footage mixed into synth data by the stages' `real` share: `path` (a folder of
    # prepared clips, default the opencv-doc footage of vsugsp.data.footage, or a list of
    # video files) plus VideoTriplets options (max_gap, stride, crops_per_window, max_side)
    real: dict = field(default_factory=dict)


@dataclass
class Recipe:
    name: str
    model: dict = field(default_factory=lambda: {"width": "small"})
    data: DataSpec = field(default_factory=DataSpec)
    batch: int = 8
    seed: int = 0
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    threads: int = 0  # CPU threads (0: torch default)
    log_every: int = 20
    eval_every: int = 250
    ckpt_every: int = 250
    snapshot_every: int = 1000  # keep a weights file per this many steps (training curves)
    stages: list[Stage] = field(default_factory=list)

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)


def _build(cls, d: Any, where: str):
    if not isinstance(d, dict):
        raise ValueError(f"vsugsp: {where} must be a mapping, got {type(d).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"vsugsp: unknown key(s) {short(sorted(map(str, unknown)))} in {where}; "
                         f"allowed: {sorted(names)}")
    return cls(**d)


# ---------------------------------------------------------------- value checks
# Each check returns the value (ints as int, numbers as float) or raises naming the
# key, a short quote of the value (short(): it may be a YAML alias bomb) and what is allowed.
def _bad(where: str, key: str, v: Any, allowed: str) -> ValueError:
    return ValueError(f"vsugsp: {where} {key}={short(v)}{text_number_hint(v)}; allowed: {allowed}")


def _int(lo: int, hi: int | None = None) -> Callable[[str, str, Any], int]:
    allowed = f"an integer ≥ {lo}" if hi is None else f"an integer in {lo}..{hi}"

    def check(where: str, key: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
            raise _bad(where, key, v, allowed)
        return v
    return check


def _num(lo: float, hi: float = math.inf, lo_open: bool = False) -> Callable[[str, str, Any], float]:
    allowed = f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}]" if hi < math.inf else \
        f"a number {'>' if lo_open else '≥'} {lo:g}"

    def check(where: str, key: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or not (v > lo if lo_open else v >= lo) or v > hi:
            raise _bad(where, key, v, allowed)
        return float(v)
    return check


def _choice(*choices: str) -> Callable[[str, str, Any], str]:
    def check(where: str, key: str, v: Any) -> str:
        if not isinstance(v, str) or v not in choices:
            raise _bad(where, key, v, ", ".join(choices))
        return v
    return check


def _text(where: str, key: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip() or len(v) > 200:
        raise _bad(where, key, v, "a non-empty string of at most 200 characters")
    return v


def _flag(where: str, key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise _bad(where, key, v, "true or false")
    return v


def _mapping(where: str, key: str, v: Any) -> dict:
    if not isinstance(v, dict):
        raise _bad(where, key, v, "a mapping")
    return v


def _rho(where: str, key: str, v: Any) -> float | list[float]:
    one = _num(0.0, 1.0, lo_open=True)
    allowed = "a number in (0, 1] or a list of 3 (levels 1/8, 1/4, 1/2)"
    if isinstance(v, list):
        if len(v) != 3:
            raise _bad(where, key, v, allowed)
        try:
            return [one(where, key, x) for x in v]
        except ValueError:
            raise _bad(where, key, v, allowed) from None
    try:
        return one(where, key, v)
    except ValueError:
        raise _bad(where, key, v, allowed) from None


def _paths(where: str, key: str, v: Any) -> str | list[str]:
    if isinstance(v, str) and v:
        return v
    if isinstance(v, list) and v and all(isinstance(x, str) and x for x in v):
        return v
    raise _bad(where, key, v, "a path or a list of paths")


_W = _num(0.0)  # loss weights
STAGE_CHECKS: dict[str, Callable[[str, str, Any], Any]] = {
    "name": _text, "mode": _choice(*STAGE_MODES), "steps": _int(1), "lr": _num(0.0, lo_open=True),
    "lr_min": _num(0.0), "warmup": _int(0), "w_image": _W, "w_dense_image": _W, "w_flow": _W, "w_occ": _W,
    "w_uncertainty": _W, "w_census": _W, "census_channels": _int(0), "w_sparsity": _W,
    "sparsity_ramp": _num(0.0, 1.0), "density_target": _num(0.0, 1.0, lo_open=True), "w_label": _W,
    "w_label_end": _W, "rho": _rho, "tau": _num(0.0, lo_open=True), "isolate_logits": _flag,
    "prior": _num(0.0, 1.0), "real": _num(0.0, 1.0), "quad": _num(0.0, 1.0),
}
DATA_CHECKS: dict[str, Callable[[str, str, Any], Any]] = {
    "source": _choice("synth", "vimeo", "video"), "path": _paths, "size": _int(16, 4096),
    "workers": _int(0, 256), "heldout": _int(0, 100_000), "heldout_size": _int(16, 4096),
    "synth": _mapping, "real": _mapping,
}
RECIPE_CHECKS: dict[str, Callable[[str, str, Any], Any]] = {
    "name": _text, "model": _mapping, "batch": _int(1, 65_536), "seed": _int(0, 2**32 - 1), "weight_decay": _num(0.0),
    "grad_clip": _num(0.0, lo_open=True), "precision": _choice("auto", "fp32", "bf16", "fp16"),
    "threads": _int(0, 4096), "log_every": _int(1), "eval_every": _int(1), "ckpt_every": _int(1),
    "snapshot_every": _int(0),
}


def _check(obj: Any, checks: dict[str, Callable[[str, str, Any], Any]], where: str) -> None:
    for key, check in checks.items():
        setattr(obj, key, check(where, key, getattr(obj, key)))


def parse(d: dict, where: str = "recipe") -> Recipe:
    """A validated :class:`Recipe` from a mapping (a recipe file's merged values).

    Every value is type- and range-checked here, before any training starts; errors
    name the key, a short quote of the value and what is allowed.
    """
    if not isinstance(d, dict):
        raise ValueError(f"vsugsp: {where} must be a mapping, got {type(d).__name__}")
    d = dict(d)
    data = _build(DataSpec, d.pop("data", {}), f"{where}.data")
    raw_stages = d.pop("stages", [])
    if not isinstance(raw_stages, list):
        raise ValueError(f"vsugsp: {where}.stages must be a list of stages, got {type(raw_stages).__name__}")
    stages = [_build(Stage, s, f"{where}.stages[{i}]") for i, s in enumerate(raw_stages)]
    r = _build(Recipe, d, where)
    r.data, r.stages = data, stages
    _check(r, RECIPE_CHECKS, where)
    try:
        ModelConfig.from_dict(r.model)  # bounds of the architecture, before anything is built
    except ValueError as exc:
        raise ValueError(f"vsugsp: {where}.model: {str(exc).removeprefix('vsugsp: ')}") from None
    _check(r.data, DATA_CHECKS, f"{where}.data")
    if r.data.size % 16 or r.data.heldout_size % 16:
        raise ValueError(f"vsugsp: {where}.data size={r.data.size}, heldout_size={r.data.heldout_size}; "
                         "allowed: multiples of 16")
    if not r.stages:
        raise ValueError(f"vsugsp: {where} has no stages")
    for i, s in enumerate(r.stages):
        _check(s, {"name": _text}, f"{where}.stages[{i}]")
        _check(s, STAGE_CHECKS, f"stage {short(s.name)}")
        if s.real > 0 and r.data.source != "synth":
            raise ValueError(f"vsugsp: stage {short(s.name)} real={s.real!r} mixes footage into synthetic data; "
                             f"{where}.data.source must be synth (it is {r.data.source!r})")
        if s.quad > 0 and s.prior <= 0:
            raise ValueError(f"vsugsp: stage {short(s.name)} quad={s.quad!r} shares out the flow prior's samples; "
                             "it needs prior > 0 (it is 0)")
        if s.quad > 0 and r.data.source == "vimeo":
            raise ValueError(f"vsugsp: stage {short(s.name)} quad={s.quad!r} needs frames -1 and 2 beside each "
                             f"triplet; {where}.data.source vimeo has none (allowed: synth, video)")
    real_keys = {"path", "max_gap", "stride", "crops_per_window", "max_side"}
    if set(r.data.real) - real_keys:
        raise ValueError(f"vsugsp: unknown key(s) {short(sorted(map(str, set(r.data.real) - real_keys)))} "
                         f"in {where}.data.real; allowed: {sorted(real_keys)}")
    if "path" in r.data.real:
        _paths(f"{where}.data.real", "path", r.data.real["path"])
    synth_keys = _synth_keys()
    if set(r.data.synth) - synth_keys:
        raise ValueError(f"vsugsp: unknown key(s) {short(sorted(map(str, set(r.data.synth) - synth_keys)))} "
                         f"in {where}.data.synth; allowed: {sorted(synth_keys)}")
    return r


def _synth_keys() -> set[str]:
    """The synthetic generator's settings (``data.synth`` keys)."""
    from ..data.synth import SynthConfig

    return {f.name for f in fields(SynthConfig)}


def bundled_recipes() -> list[str]:
    """Names of the bundled recipes; ``_*.yaml`` files are shared bases, not recipes."""
    from ..presets import PRESET_DIR

    return sorted(x.stem for x in (PRESET_DIR / "train").glob("*.yaml") if not x.name.startswith("_"))


def _bundled(name: str) -> Path | None:
    from ..presets import PRESET_DIR

    cand = PRESET_DIR / "train" / f"{name}.yaml"
    return cand if cand.is_file() else None


def _read(p: Path) -> dict:
    what = f"recipe {short(str(p), 240)}"
    d = load_file(p, what)  # bounded: size cap, nesting and alias-expansion limits
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ValueError(f"vsugsp: {what} must be a mapping, got {type(d).__name__}")
    # unknown keys are reported against the file that holds them, before any merge
    allowed = {f.name for f in fields(Recipe)} | {"base"}
    if set(d) - allowed:
        raise ValueError(f"vsugsp: unknown key(s) {short(sorted(map(str, set(d) - allowed)))} in {p}; "
                         f"allowed: {sorted(allowed)}")
    data_keys = {f.name for f in fields(DataSpec)}
    if isinstance(d.get("data"), dict) and set(d["data"]) - data_keys:
        raise ValueError(f"vsugsp: unknown key(s) {short(sorted(map(str, set(d['data']) - data_keys)))} in {p}.data; "
                         f"allowed: {sorted(data_keys)}")
    return d


def _merge(base: dict, child: dict) -> dict:
    """``child`` over ``base``: mappings merge key by key (recursively), anything else
    (scalars, lists such as ``stages``) is replaced whole."""
    out = dict(base)
    for k, v in child.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


#: Longest ``base:`` chain followed (the bundled recipes use 1).
MAX_BASE_CHAIN = 16


def _resolve_base(ref: Any, p: Path) -> Path:
    """The file a ``base:`` in recipe ``p`` names: a path (it has a separator or a YAML
    suffix; relative to ``p``'s folder) or else a bundled recipe name."""
    if not isinstance(ref, str) or not ref:
        raise ValueError(f"vsugsp: recipe {short(str(p), 240)} key 'base' must be a recipe name or path, "
                         f"got {short(ref)}")
    if looks_like_path(ref):
        cand = p.parent / Path(ref).expanduser()
        if not cand.is_file():
            raise ValueError(f"vsugsp: recipe {short(str(p), 240)} key 'base': {short(ref)} not found "
                             f"(no file {short(str(cand), 240)})")
        return cand
    bundled = _bundled(ref)
    if bundled is None:
        raise ValueError(f"vsugsp: recipe {short(str(p), 240)} key 'base': {short(ref)} not found "
                         f"(no bundled recipe of that name; a file needs a / or a .yaml suffix); "
                         f"bundled: {', '.join(bundled_recipes())}")
    return bundled


def _load_dict(p: Path) -> tuple[dict, list[Path]]:
    """Recipe file ``p`` with its ``base:`` chain merged in; also the chain (``p`` first)."""
    chain: list[Path] = [p]
    seen = {p.resolve()}  # resolved: ./a.yaml and ../dir/a.yaml are one file
    layers = [_read(p)]
    while "base" in layers[-1]:
        b = _resolve_base(layers[-1]["base"], chain[-1])
        if b.resolve() in seen:
            trail = " -> ".join(clip(str(x), 120) for x in [*chain, b])
            raise ValueError(f"vsugsp: recipe {short(str(p), 240)} has a circular base chain through {trail}")
        if len(chain) >= MAX_BASE_CHAIN:
            raise ValueError(f"vsugsp: recipe {short(str(p), 240)} has a base chain longer than {MAX_BASE_CHAIN}")
        seen.add(b.resolve())
        chain.append(b)
        layers.append(_read(b))
    d: dict = {}
    for i, layer in enumerate(reversed(layers)):
        layer = {k: v for k, v in layer.items() if k != "base"}
        if i < len(layers) - 1:
            layer.pop("name", None)  # a base's name is never inherited
        d = _merge(d, layer)
    return d, chain


def load_recipe(path_or_name: str | Path) -> Recipe:
    """A recipe by bundled name (``presets/train/<name>.yaml``) or by path.

    A top-level ``base:`` names another recipe (bundled name or path; a relative path
    is resolved from the folder of the file that names it) whose keys this one
    overrides: mappings (``model``, ``data``, ``data.synth``, ``data.real``) merge key
    by key, lists (``stages``) and scalars are replaced whole; ``name`` is never
    inherited.  Bases may have bases; ``_*.yaml`` bundled files are bases only.
    A reference is a path when it looks like one (a separator or a ``.yaml`` /
    ``.yml`` suffix), else a bundled name.
    """
    ref = str(path_or_name)
    if isinstance(path_or_name, Path) or looks_like_path(ref):
        p = Path(ref).expanduser()
        if not p.is_file():
            raise ValueError(f"vsugsp: training recipe file {short(ref, 240)} does not exist")
    else:
        cand = _bundled(ref)
        if cand is None:
            raise ValueError(f"vsugsp: training recipe {short(ref)} not found; bundled: "
                             f"{', '.join(bundled_recipes())} (or give a path: it needs a / or a .yaml suffix)")
        p = cand
    d, chain = _load_dict(p)
    if "name" not in d:
        raise ValueError(f"vsugsp: recipe {short(str(p), 240)} has no 'name' (a base's name is not inherited)"
                         if len(chain) > 1 else f"vsugsp: recipe {short(str(p), 240)} has no 'name'")
    return parse(d, str(p))
