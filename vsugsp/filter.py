"""``vsugsp.interpolate``: the VapourSynth filter.

What each output frame is (which pair, t, shown as is or interpolated, its
props) is decided by the pure :class:`vsugsp.output_plan.OutputPlan`; this
module wires it into a graph (nothing in it calls ``get_frame``; every frame a
callback reads was requested by VapourSynth before the callback runs):

- ``remap(clip, f)``: a clip of output length whose frame n is ``clip``'s frame
  ``f(n)``. It is a ``FrameEval`` returning the one-frame clip ``clip[f(n)]``;
  VapourSynth serves a request beyond a clip's end with its last frame, so
  frame n of that one-frame clip is the frame wanted. Nothing is sized by the
  clip length (mpv hands over clips of INT_MAX // 16 frames).
- ``info``: per source frame i, a thumbnail carrying the cut decision for the
  pair (i, i+1) and whether frames i and i+1 are identical (full-size
  ``PlaneStats`` differences).
- ``interp``: ``ModifyFrame`` over the source frames i(n) and i(n)+1 in their
  own format (with ``motion: quadratic`` also i(n) − 1, i(n) + 2 and the cut flags
  of the pairs beside: :func:`_outer_clips`), calling the engine: the planes go to the device and are
  converted there, and the output comes back once, already in the input's
  format (:mod:`vsugsp.device_frames`).  Frames tagged with a matrix the
  device path does not convert (constant-luminance, ICtCp) take the
  VapourSynth path instead: RGBS source frames (:func:`vsugsp.colors.to_rgb`),
  the engine, and back (:func:`~vsugsp.colors.from_rgb`).
- ``select``: ``FrameEval`` that returns the source frame itself (t == 0, a
  scene cut, identical neighbours, past the last frame) or ``interp``.
- ``final``: ``ModifyFrame`` that sets the props: the nearest source frame's,
  then duration, absolute time and scene-change flags for the new rate, and
  the frame's work (:mod:`vsugsp.work`: ``_VsugspInterpolated``,
  ``_VsugspMACs``, ``_VsugspDenseMACs``, ``_VsugspPasses``).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import vapoursynth as vs

from . import colors, device_frames, scene, work
from .vscache import bounded, uncached
from .preset import Preset, load_preset
from .output_plan import OutputPlan, PairDecision
from .timing import RateMap, resolve_ratio

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from .model import UGSPNet

__all__ = ["interpolate"]

core = vs.core

_DIFF_PROP = "_VsugspP{}"  # PlaneStats prefix per plane → "_VsugspP0Diff", ...
_INTERNAL_PREFIX = "_Vsugsp"


def _error(exc: Exception) -> vs.Error:
    msg = str(exc)
    return vs.Error(msg if msg.startswith("vsugsp:") else f"vsugsp: {msg}")


def _remap(clip: vs.VideoNode, length: int, index: Callable[[int], int | None]) -> vs.VideoNode:
    """Output-length clip whose frame n is ``clip``'s frame ``index(n)`` (lazy, O(1) memory).

    ``index(n)`` None: a blank frame with no properties, so output n requests
    nothing of ``clip`` it does not need (a broken source frame fails only the
    output frames that need it).
    """
    blank = core.std.BlankClip(clip, length=length, keep=True)
    empty = core.std.BlankClip(clip, length=1, keep=True)

    def pick(n: int) -> vs.VideoNode:
        j = index(n)
        return empty if j is None else clip[j]

    return uncached(core.std.FrameEval(blank, pick, clip_src=[clip, empty]))  # frames are clip's own


def _src_fps(clip: vs.VideoNode) -> Fraction | None:
    return Fraction(clip.fps.numerator, clip.fps.denominator) if clip.fps.numerator > 0 else None


def _check_clip(clip: Any) -> None:
    if not isinstance(clip, vs.VideoNode):
        raise vs.Error(f"vsugsp: clip must be a vapoursynth.VideoNode, got {type(clip).__name__}")
    if clip.format is None or clip.format.id == vs.NONE:
        raise vs.Error("vsugsp: clip has a variable format; convert it to one constant format first")
    if clip.width == 0 or clip.height == 0:
        raise vs.Error("vsugsp: clip has a variable frame size; resize it to one constant size first")
    if clip.num_frames < 2:
        raise vs.Error(f"vsugsp: clip needs at least 2 frames to interpolate, got {clip.num_frames}")
    if clip.format.color_family not in (vs.GRAY, vs.YUV, vs.RGB):
        raise vs.Error(f"vsugsp: unsupported colour family {clip.format.color_family.name}")


def _info_clip(src: vs.VideoNode, mode: str, threshold: float) -> vs.VideoNode:
    """Per source frame i: cut (i, i+1) and full-size differences to frame i+1."""
    nxt = uncached(src[1:] + src[-1])
    stats = src
    for p in range(src.format.num_planes):  # full-size frames: no cache (see vsugsp.vscache)
        stats = uncached(core.std.PlaneStats(stats, nxt, plane=p, prop=_DIFF_PROP.format(p)))
    if mode == "off":
        return stats
    thumbs = scene.scene_clip(src, mode, threshold)
    names = [_DIFF_PROP.format(p) + "Diff" for p in range(src.format.num_planes)]
    return core.std.CopyFrameProps(thumbs, stats, props=names)  # thumbnail-sized (bounded by the caller)


def _identical(props: Any, planes: int) -> bool:
    for p in range(planes):
        d = props.get(_DIFF_PROP.format(p) + "Diff")
        if d is None or d != 0:
            return False
    return True


def interpolate(
    clip: vs.VideoNode,
    factor: int | Fraction = 2,
    *,
    fps: Any = None,
    preset: "str | Path | Preset" = "balanced",
    model: "str | Path | UGSPNet | None" = None,
    device: str | None = None,
    scene_change: "str | bool | None" = None,
    **overrides: Any,
) -> vs.VideoNode:
    """Raise ``clip``'s frame rate with the UGSP network.

    clip: any constant format (GRAY/YUV/RGB, 8–16-bit integer or 16/32-bit
        float, any subsampling) and size, at least 2 frames. The output has the
        same format and size.
    factor: rate multiplier, an int or ``fractions.Fraction`` > 1 (2 → twice
        the frames; ``Fraction(5, 2)``). Output length is ⌈N·factor⌉.
    fps: target rate instead of ``factor`` (``(60000, 1001)``, ``Fraction``,
        int, "num/den" or an NTSC-style float); needs a clip with a known rate.
    preset: "fast", "balanced", "quality", "realtime", a YAML path or a
        ``Preset``; ``overrides`` (any preset key, e.g. ``threshold=0.6``) win.
    model: weights name, ``.pt`` path or ``UGSPNet``; None → the preset's.
    device: "auto", "cpu", "cuda", "cuda:N"; None → the preset's.
    scene_change: "auto" (``_SceneChangeNext/Prev`` when present, else
        detection), "props", "detect", "off" or True/False; None → the preset's.
        Across a cut the nearest source frame is shown.

    Frames at t == 0 are the source frames untouched; props come from the
    nearest source frame with ``_DurationNum/_DurationDen`` for the new rate,
    ``_AbsoluteTime`` (when the source has it) and ``_SceneChangeNext/Prev``
    set for the output.
    """
    _check_clip(clip)
    try:
        if isinstance(model, (str, Path)):
            overrides["model"] = model
        if device is not None:
            overrides["device"] = device
        if scene_change is not None:
            overrides["scene_change"] = scene.normalize_mode(scene_change)
        cfg = load_preset(preset, **overrides)
        src_fps = _src_fps(clip)
        ratio = resolve_ratio(factor, fps, src_fps)
        rmap = RateMap(clip.num_frames, ratio)
    except ValueError as exc:
        raise _error(exc) from None
    instance = None if model is None or isinstance(model, (str, Path)) else model
    engine = _build_engine(cfg, instance, clip)
    return _build_graph(clip, rmap, src_fps, cfg, engine)


def _build_engine(cfg: Preset, instance: Any, clip: vs.VideoNode):
    from .engine import Engine
    from .interpolator import build_interpolator, resolve_device

    try:
        model = instance if instance is not None else cfg.model
        if cfg.adapt:  # fine-tune a copy on this clip's own frames first
            from .adapt import adapt

            log.info("vsugsp: adapting the network to the clip (%d steps)", cfg.adapt)
            model = adapt(clip, cfg.adapt, model=model, device=str(resolve_device(cfg.device)))
        return Engine(build_interpolator(cfg, model), source_fps=_src_fps(clip))
    except ValueError as exc:
        raise _error(exc) from None


def _decision(props: Any, planes: int) -> PairDecision:
    """A pair's decision from its info frame's props (a blank, unrequested frame reads as undecided)."""
    return PairDecision(bool(props.get(scene.CUT_PROP, 0)), _identical(props, planes))


#: How source frames reach the network: "device" (planes converted on the device) or
#: "rgbs" (VapourSynth's resize to RGBS and back; the path before the device one).
FRAME_PATHS = ("device", "rgbs")


def _build_graph(
    src: vs.VideoNode, rmap: RateMap, src_fps: Fraction | None, cfg: Preset, engine: Any,
    frame_path: str = "device",
) -> vs.VideoNode:
    """Wire :class:`~vsugsp.output_plan.OutputPlan` into nodes (see the module docstring).

    frame_path: one of :data:`FRAME_PATHS` ("rgbs" for comparisons: ``benchmarks/bench_frame_path.py``).
    """
    if frame_path not in FRAME_PATHS:
        raise ValueError(f"vsugsp: frame_path={frame_path!r}; allowed: {', '.join(FRAME_PATHS)}")
    plan = OutputPlan(rmap, src_fps)
    length = plan.num_frames
    planes = src.format.num_planes

    def decided(n: int) -> int | None:
        return plan.left(n) if plan.needs_decision(n) else None

    # VapourSynth's own caches would grow with seeking; vsugsp's is the engine's (vsugsp.vscache)
    info = bounded(_info_clip(src, cfg.scene_change, cfg.scene_threshold), cfg.cache_frames)
    info_prev, info_a, info_b = (_remap(info, length, lambda n, o=o: plan.decision_at(n, o)) for o in (-1, 0, 1))
    info_sel = _remap(info, length, decided)
    src_a = _remap(src, length, plan.left)
    # t == 0 shows frame i alone
    src_b = _remap(src, length, lambda n: plan.right(n) if plan.needs_decision(n) else None)

    rgb = bounded(colors.to_rgb(src), cfg.cache_frames)
    rgb_a = _remap(rgb, length, plan.left)
    rgb_b = _remap(rgb, length, plan.right)
    # without a prior there is no flow to bend: no frames beyond the pair are requested
    quadratic = getattr(engine, "motion", "linear") == "quadratic" and getattr(engine, "flow_prior", "none") != "none"
    outer_rgb = _outer_clips(rgb, info, plan, length) if quadratic else []
    via_rgbs = colors.from_rgb(_interp_clip(rgb, rgb_a, rgb_b, rmap, engine, outer_rgb), src.format, src_a)
    yuv = src.format.color_family == vs.YUV
    if frame_path == "device":
        # the source frames i(n) and i(n) + 1 in their own format
        outer = _outer_clips(src, info, plan, length) if quadratic else []
        on_device = _device_interp_clip(src, src_a, _remap(src, length, plan.right), rmap, engine, outer)
    fam, w, h = int(src.format.color_family), src.width, src.height

    def _interp_for(fa: vs.VideoFrame | None) -> vs.VideoNode:
        if frame_path == "rgbs":
            return via_rgbs
        if fa is None or device_frames.matrix_supported(colors.resolve_color(fa.props, fam, w, h).matrix):
            return on_device
        return via_rgbs

    def _select(n: int, f: "vs.VideoFrame | list[vs.VideoFrame]") -> vs.VideoNode:
        finfo, fa = (f[0], f[1]) if isinstance(f, list) else (f, None)
        k = plan.shown(n, _decision(finfo.props, planes))
        return _interp_for(fa) if k is None else src[k]

    blank_out = core.std.BlankClip(src, length=length, keep=True)
    # YUV frames name their matrix: the left source frame's props pick the path
    props_from = [info_sel, src_a] if yuv and frame_path == "device" else [info_sel]
    nodes = [src, via_rgbs] + ([on_device] if frame_path == "device" else [])
    selected = uncached(core.std.FrameEval(blank_out, _select, prop_src=props_from, clip_src=nodes))

    def _finish(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        frame, fa, fb, fprev, finfo, fnext = f
        i = plan.left(n)
        # only the pairs this frame depends on were requested (decisions_needed); the others are blank
        fp = plan.frame(n, {j: _decision(fr.props, planes) for j, fr in ((i - 1, fprev), (i, finfo), (i + 1, fnext))})
        near = fb if fp.near != i else fa
        out = frame.copy()
        props = out.props
        measured = {key: frame.props.get(key, 0) for key in (work.MACS, work.DENSE_MACS, work.PASSES)}
        props.clear()
        props.update({key: v for key, v in near.props.items() if not key.startswith(_INTERNAL_PREFIX)})
        for key, value in plan.props(fp, fa.props, fb.props if plan.needs_decision(n) else None).items():
            if value is None:
                props.pop(key, None)
            else:
                props[key] = value
        props.update(work.frame_props(fp.interpolated, measured[work.MACS], measured[work.DENSE_MACS],
                                      measured[work.PASSES]))
        return out

    final = uncached(core.std.ModifyFrame(selected, [selected, src_a, src_b, info_prev, info_a, info_b], _finish))
    if src_fps is not None:
        out_fps = src_fps * rmap.ratio
        final = uncached(core.std.AssumeFPS(final, fpsnum=out_fps.numerator, fpsden=out_fps.denominator))
    return final


def _outer_clips(frames: vs.VideoNode, info: vs.VideoNode, plan: OutputPlan, length: int) -> list[vs.VideoNode]:
    """For ``motion: quadratic``: output-length clips of source frames i − 1 and i + 2 of output n's
    pair (i, i + 1), and of the info frames i − 1 and i + 1 (their cut decisions); blank where
    the index is outside the clip.  Requested with the pair's frames, so the engine never waits
    on a worker for them (one VapourSynth thread: see :meth:`vsugsp.engine.Engine._prefetch_prior`)."""
    last = plan.src_frames - 1

    def at(offset: int) -> Callable[[int], int | None]:
        def index(n: int) -> int | None:
            j = plan.left(n) + offset
            return j if 0 <= j <= last else None

        return index

    return [_remap(frames, length, at(-1)), _remap(frames, length, at(2)),
            _remap(info, length, at(-1)), _remap(info, length, at(1))]


def _neighbours(i: int, src_frames: int, outer: list[vs.VideoFrame],
                as_frame: Callable[[vs.VideoFrame], Any]) -> "tuple[Any, Any] | None":
    """Source frames i − 1 and i + 2 for pair i's quadratic motion (None for a side across a cut or
    past a clip's end: :func:`vsugsp.model.motion.quad_neighbours`); None without ``outer`` frames."""
    if not outer:
        return None
    from .model.motion import quad_neighbours

    fprev, fnext, info_prev, info_next = outer
    cuts = {i - 1: info_prev, i + 1: info_next}

    def cut_after(k: int) -> bool:  # pair i itself is interpolated, so it is no cut
        return k in cuts and _decision(cuts[k].props, 0).cut

    prev, nxt = quad_neighbours(i, src_frames, cut_after)
    return (None if prev is None else as_frame(fprev)), (None if nxt is None else as_frame(fnext))


def _ahead_frames(engine: Any, rmap: RateMap, i: int, frame: Callable[[int], Any], always: bool = False) -> list:
    """The source frames after pair i's, each with the times of the pair it ends, for the engine's
    prior pool (:meth:`vsugsp.engine.Engine.render`'s ``ahead``): for the priors ahead, and
    (``always``) to bring the next frames onto the device even without a prior."""
    if engine.flow_prior == "none" and not always:
        return []
    last = min(rmap.src_frames - 1, i + 1 + engine.prior_ahead)
    return [(frame(j), rmap.times_of(j - 1)) for j in range(i + 2, last + 1)]


def _device_interp_clip(src: vs.VideoNode, src_a: vs.VideoNode, src_b: vs.VideoNode, rmap: RateMap,
                        engine: Any, outer: "list[vs.VideoNode] | None" = None) -> vs.VideoNode:
    """Output-length clip in ``src``'s format of the network's frames, converted on the device.

    src_a/src_b: output-length clips of the source frames i(n) and i(n) + 1; outer:
    :func:`_outer_clips` (quadratic motion) or empty.
    Each frame carries its share of the engine's work (:mod:`vsugsp.work`) for the final props.
    """
    fmt = device_frames.PlaneFormat.of(src.format)
    vfmt, w, h = src.format, src.width, src.height
    transfer = engine.transfer

    def upload(frame: vs.VideoFrame) -> "Callable[[], Any]":
        # Called by the engine only when the frame is not already on the device.
        def up() -> Any:
            spec = colors.resolve_color(frame.props, fmt.family, w, h)
            planes = [np.asarray(frame[p]) for p in range(fmt.planes)]
            return transfer.upload(planes, lambda ps: device_frames.to_rgb(ps, fmt, spec))

        return up

    def _ahead(j: int) -> "Callable[[], Any]":
        # Run by the engine's prior worker, not in this callback: an asynchronous request,
        # so a broken frame j fails only the worker's prefetch, never this pair's frames.
        return lambda: upload(src.get_frame_async(j).result())()

    def _interp(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        i, t = rmap.position(n)
        fa, fb = f[:2]
        # the next pairs' priors are computed during this pass (VapourSynth asks for them too late)
        ahead = _ahead_frames(engine, rmap, i, _ahead, always=True)
        extra = {"neighbours": nb} if (nb := _neighbours(i, rmap.src_frames, f[2:], upload)) else {}
        image, spent = engine.render(i, t, upload(fa), upload(fb), rmap.times_of(i), ahead, host=False, **extra)
        spec = colors.resolve_color(fa.props, fmt.family, w, h)  # coded like source frame i
        planes = transfer.download(image, lambda x: device_frames.from_rgb(x, fmt, spec), after=engine.stream)
        out = core.create_video_frame(vfmt, w, h)
        for p, plane in enumerate(planes):
            np.copyto(np.asarray(out[p]), plane, casting="unsafe")  # int32 codes into uint16 planes
        _put_work(out.props, spent)
        return out

    blank = core.std.BlankClip(src, length=rmap.num_frames, keep=True)
    return uncached(core.std.ModifyFrame(blank, [src_a, src_b, *(outer or [])], _interp))


def _put_work(props: Any, spent: dict[str, int]) -> None:
    """An interpolated frame's share of its chunk's work (:meth:`vsugsp.engine.Engine.render`) as props."""
    props[work.MACS] = spent["executed_macs"]
    props[work.DENSE_MACS] = spent["dense_macs"]
    props[work.PASSES] = spent["forward_passes"]


def _array(frame: vs.VideoFrame) -> np.ndarray:
    """An RGBS frame as 3×H×W float32."""
    return np.stack([np.asarray(frame[p]) for p in range(3)])


def _interp_clip(rgb: vs.VideoNode, rgb_a: vs.VideoNode, rgb_b: vs.VideoNode, rmap: RateMap,
                 engine: Any, outer: "list[vs.VideoNode] | None" = None) -> vs.VideoNode:
    """Output-length RGBS clip of the network's frames (only requested where the plan interpolates).

    outer: :func:`_outer_clips` of the RGBS frames (quadratic motion) or empty.

    Each frame carries its share of the engine's work (:mod:`vsugsp.work`) for the final props.
    """
    def _ahead(j: int) -> Callable[[], np.ndarray]:
        # Run by the engine's prior worker, not in this callback: an asynchronous request,
        # so a broken frame j fails only the worker's prefetch, never this pair's frames.
        return lambda: _array(rgb.get_frame_async(j).result())

    def _interp(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        i, t = rmap.position(n)
        fa, fb = f[:2]

        def as_array(frame: vs.VideoFrame) -> Callable[[], np.ndarray]:
            # Called by the engine only when the frame is not already on the device.
            return lambda: _array(frame)

        # the next pairs' priors are computed during this pass (VapourSynth asks for them too late)
        ahead = _ahead_frames(engine, rmap, i, _ahead)
        extra = {"neighbours": nb} if (nb := _neighbours(i, rmap.src_frames, f[2:], as_array)) else {}
        image, spent = engine.render(i, t, as_array(fa), as_array(fb), rmap.times_of(i), ahead, **extra)
        out = f[0].copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), image[p])
        _put_work(out.props, spent)
        return out

    blank = core.std.BlankClip(rgb, length=rmap.num_frames, keep=True)
    return uncached(core.std.ModifyFrame(blank, [rgb_a, rgb_b, *(outer or [])], _interp))
