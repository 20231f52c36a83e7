"""Training recipes: YAML files (``presets/train/*.yaml``) validated into dataclasses."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

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
        raise ValueError(f"vsugsp: unknown key(s) {sorted(unknown)} in {where}; allowed: {sorted(names)}")
    return cls(**d)


def parse(d: dict, where: str = "recipe") -> Recipe:
    d = dict(d)
    data = _build(DataSpec, d.pop("data", {}), f"{where}.data")
    stages = [_build(Stage, s, f"{where}.stages[{i}]") for i, s in enumerate(d.pop("stages", []))]
    r = _build(Recipe, d, where)
    r.data, r.stages = data, stages
    if not r.stages:
        raise ValueError(f"vsugsp: {where} has no stages")
    for s in r.stages:
        if s.mode not in STAGE_MODES:
            raise ValueError(f"vsugsp: stage {s.name!r} mode={s.mode!r}; allowed: {', '.join(STAGE_MODES)}")
        if s.steps < 1:
            raise ValueError(f"vsugsp: stage {s.name!r} steps={s.steps}; must be ≥ 1")
        if not isinstance(s.isolate_logits, bool):
            raise ValueError(f"vsugsp: stage {s.name!r} isolate_logits={s.isolate_logits!r}; must be true or false")
        if isinstance(s.census_channels, bool) or not isinstance(s.census_channels, int) or s.census_channels < 0:
            raise ValueError(f"vsugsp: stage {s.name!r} census_channels={s.census_channels!r}; must be an int ≥ 0")
        for key in ("prior", "real"):
            v = getattr(s, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ValueError(f"vsugsp: stage {s.name!r} {key}={v!r}; allowed: a number in [0, 1]")
        if s.real > 0 and r.data.source != "synth":
            raise ValueError(f"vsugsp: stage {s.name!r} real={s.real!r} mixes footage into synthetic data; "
                             f"{where}.data.source must be synth (it is {r.data.source!r})")
        if not 0 < s.density_target <= 1:
            raise ValueError(f"vsugsp: stage {s.name!r} density_target={s.density_target}; allowed (0, 1]")
    if r.data.source not in ("synth", "vimeo", "video"):
        raise ValueError(f"vsugsp: {where}.data.source={r.data.source!r}; allowed: synth, vimeo, video")
    real_keys = {"path", "max_gap", "stride", "crops_per_window", "max_side"}
    if set(r.data.real) - real_keys:
        raise ValueError(f"vsugsp: unknown key(s) {sorted(set(r.data.real) - real_keys)} in {where}.data.real; "
                         f"allowed: {sorted(real_keys)}")
    if r.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ValueError(f"vsugsp: {where}.precision={r.precision!r}; allowed: auto, fp32, bf16, fp16")
    return r


def bundled_recipes() -> list[str]:
    """Names of the bundled recipes; ``_*.yaml`` files are shared bases, not recipes."""
    from ..presets import PRESET_DIR

    return sorted(x.stem for x in (PRESET_DIR / "train").glob("*.yaml") if not x.name.startswith("_"))


def _bundled(name: str) -> Path | None:
    from ..presets import PRESET_DIR

    cand = PRESET_DIR / "train" / f"{name}.yaml"
    return cand if cand.is_file() else None


def _read(p: Path) -> dict:
    try:
        d = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"vsugsp: recipe {str(p)!r} is not valid YAML: {exc}") from None
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ValueError(f"vsugsp: recipe {str(p)!r} must be a mapping, got {type(d).__name__}")
    # unknown keys are reported against the file that holds them, before any merge
    allowed = {f.name for f in fields(Recipe)} | {"base"}
    if set(d) - allowed:
        raise ValueError(f"vsugsp: unknown key(s) {sorted(set(d) - allowed)} in {p}; allowed: {sorted(allowed)}")
    data_keys = {f.name for f in fields(DataSpec)}
    if isinstance(d.get("data"), dict) and set(d["data"]) - data_keys:
        raise ValueError(f"vsugsp: unknown key(s) {sorted(set(d['data']) - data_keys)} in {p}.data; "
                         f"allowed: {sorted(data_keys)}")
    return d


def _merge(base: dict, child: dict) -> dict:
    """``child`` over ``base``: mappings merge key by key (recursively), anything else
    (scalars, lists such as ``stages``) is replaced whole."""
    out = dict(base)
    for k, v in child.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _resolve_base(ref: Any, p: Path) -> Path:
    """The file a ``base:`` in recipe ``p`` names: a path (relative to ``p``'s folder)
    or a bundled recipe name."""
    if not isinstance(ref, str) or not ref:
        raise ValueError(f"vsugsp: recipe {str(p)!r} key 'base' must be a recipe name or path, got {ref!r}")
    cand = p.parent / Path(ref).expanduser()
    if cand.is_file():
        return cand
    bundled = _bundled(ref)
    if bundled is None:
        raise ValueError(f"vsugsp: recipe {str(p)!r} key 'base': {ref!r} not found (no file {str(cand)!r}, "
                         f"no bundled recipe of that name); bundled: {', '.join(bundled_recipes())}")
    return bundled


def _load_dict(p: Path) -> tuple[dict, list[Path]]:
    """Recipe file ``p`` with its ``base:`` chain merged in; also the chain (``p`` first)."""
    chain: list[Path] = [p]
    seen = {p.resolve()}
    layers = [_read(p)]
    while "base" in layers[-1]:
        b = _resolve_base(layers[-1]["base"], chain[-1])
        if b.resolve() in seen:
            trail = " -> ".join(str(x) for x in [*chain, b])
            raise ValueError(f"vsugsp: recipe {str(p)!r} has a circular base chain through {trail}")
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
    """
    p = Path(path_or_name)
    if not p.is_file():
        cand = _bundled(str(path_or_name))
        if cand is None:
            raise ValueError(f"vsugsp: training recipe {str(path_or_name)!r} not found; "
                             f"bundled: {', '.join(bundled_recipes())}")
        p = cand
    d, chain = _load_dict(p)
    if "name" not in d:
        raise ValueError(f"vsugsp: recipe {str(p)!r} has no 'name' (a base's name is not inherited)"
                         if len(chain) > 1 else f"vsugsp: recipe {str(p)!r} has no 'name'")
    return parse(d, str(p))
