"""Clip ↔ RGB float, reading the colour props, and back to the exact input format.

Forward: any constant format → RGBS (GRAY becomes three equal channels).
Backward: RGBS → the input's format and size, with the same matrix, range and
chroma siting as the source frame the output belongs to.

The filter runs these conversions on the network's device instead
(:mod:`vsugsp.device_frames`, the same numbers within one rounding step,
tested against this module); this module's VapourSynth path serves the
matrices the device path does not convert, and :func:`resolve_color` is the
one reading of the colour props for both.

Why point resampling for chroma: luma never changes size, so it survives the
round trip exactly; point up- then down-sampling of subsampled chroma is the
identity too (every chroma sample comes back from a luma position it was
copied to). A smoother chroma kernel would blur the chroma of every
interpolated frame a little, and the blur would show as a chroma shift on still
content. Float arithmetic keeps the whole round trip within one rounding step.

Colour props, in order: ``_Matrix``/``_Transfer``/``_Primaries``/``_Range``
(R81 convention, 1 = full), else ``_ColorRange`` (older convention, 0 = full),
else defaults by size: ≥ 1280 wide or ≥ 720 tall → BT.709, otherwise BT.601
(170M); YUV/GRAY limited range, RGB full range; chroma left-sited.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .vscache import uncached

if TYPE_CHECKING:  # pragma: no cover
    import vapoursynth as vs

__all__ = ["ColorSpec", "is_hd", "default_matrix", "resolve_color", "to_rgb", "from_rgb", "FAMILY_GRAY",
           "FAMILY_RGB", "FAMILY_YUV"]

# vs.ColorFamily values, so the pure part needs no VapourSynth import.
FAMILY_GRAY, FAMILY_RGB, FAMILY_YUV = 1, 2, 3

MATRIX_RGB, MATRIX_709, MATRIX_UNSPEC, MATRIX_170M = 0, 1, 2, 6
TRANSFER_709, TRANSFER_UNSPEC, TRANSFER_601 = 1, 2, 6
PRIMARIES_709, PRIMARIES_UNSPEC, PRIMARIES_170M = 1, 2, 6
RANGE_LIMITED, RANGE_FULL = 0, 1  # R81 `_Range` / resize `range` convention
CHROMA_LEFT = 0
#: The chroma siting the conversions resample at, whatever a frame's ``_ChromaLocation``:
#: top-left, i.e. chroma sample j on luma pixel s·j, linear up and point down, so that down
#: after up is exact (:mod:`vsugsp.device_frames` says why); frames keep their own siting prop.
CHROMA_RESAMPLED_AT = 2


@dataclass(frozen=True)
class ColorSpec:
    """How one frame's samples map to RGB (VapourSynth/ITU-T H.273 codes)."""

    matrix: int
    transfer: int
    primaries: int
    range: int  # 1 = full, 0 = limited (R81 `_Range`)
    chromaloc: int


def _int_prop(props: Mapping, key: str) -> int | None:
    if key not in props:
        return None
    try:
        return int(props[key])
    except (TypeError, ValueError):
        return None


def is_hd(width: int, height: int) -> bool:
    """Whether an untagged clip of this size (pixels) is taken as HD (BT.709): ≥ 1280 wide or ≥ 720 tall.

    The one size rule: the filter's colour conversion and the scorer
    (:mod:`vsugsp.eval.frames`) both use it, so they never disagree.
    """
    return width >= 1280 or height >= 720


def default_matrix(width: int, height: int) -> int:
    """``_Matrix`` code for an untagged YUV clip of this size: BT.709 (1) for HD, else BT.601 (170M, 6)."""
    return MATRIX_709 if is_hd(width, height) else MATRIX_170M


def resolve_color(props: Mapping, family: int, width: int, height: int) -> ColorSpec:
    """The colour description of a frame, with size-based defaults (:func:`is_hd`) for what is unset.

    ``family`` is a ``vs.ColorFamily`` value (GRAY 1, RGB 2, YUV 3).
    """
    hd = is_hd(width, height)
    matrix = _int_prop(props, "_Matrix")
    if family == FAMILY_RGB:
        matrix = MATRIX_RGB
    elif matrix is None or matrix == MATRIX_UNSPEC or (matrix == MATRIX_RGB and family == FAMILY_GRAY):
        matrix = default_matrix(width, height)
    transfer = _int_prop(props, "_Transfer")
    if transfer is None or transfer in (0, TRANSFER_UNSPEC):
        transfer = TRANSFER_709 if hd else TRANSFER_601
    primaries = _int_prop(props, "_Primaries")
    if primaries is None or primaries in (0, PRIMARIES_UNSPEC):
        primaries = PRIMARIES_709 if hd else PRIMARIES_170M
    rng = _int_prop(props, "_Range")
    if rng not in (RANGE_LIMITED, RANGE_FULL):
        old = _int_prop(props, "_ColorRange")  # 0 = full, 1 = limited
        if old in (0, 1):
            rng = RANGE_FULL if old == 0 else RANGE_LIMITED
        else:
            rng = RANGE_FULL if family == FAMILY_RGB else RANGE_LIMITED
    loc = _int_prop(props, "_ChromaLocation")
    if loc is None or not 0 <= loc <= 5:
        loc = CHROMA_LEFT
    return ColorSpec(matrix, transfer, primaries, rng, loc)


def _apply_spec(props, spec: ColorSpec) -> None:
    """Write ``spec`` onto a writable frame's props (resize lets props beat arguments)."""
    for key in ("_ColorRange",):
        if key in props:
            del props[key]
    props["_Matrix"] = spec.matrix
    props["_Transfer"] = spec.transfer
    props["_Primaries"] = spec.primaries
    props["_Range"] = spec.range
    props["_ChromaLocation"] = spec.chromaloc


def to_rgb(clip: "vs.VideoNode") -> "vs.VideoNode":
    """Any constant-format clip → RGBS of the same size and length (props-aware)."""
    import vapoursynth as vs

    core = vs.core
    fmt = clip.format
    if fmt.id == vs.RGBS:
        return clip
    fam = int(fmt.color_family)
    w, h = clip.width, clip.height

    def _normalize(n: int, f: "vs.VideoFrame") -> "vs.VideoFrame":
        out = f.copy()
        _apply_spec(out.props, resolve_color(f.props, fam, w, h))
        return out

    # the steps hold no frames (vsugsp.vscache); the caller decides the result's cache
    tagged = uncached(core.std.ModifyFrame(clip, clip, _normalize))
    if fmt.color_family == vs.GRAY:
        gray = uncached(core.resize.Point(tagged, format=vs.GRAYS))
        return core.std.ShufflePlanes([gray, gray, gray], [0, 0, 0], vs.RGB)
    if fmt.color_family == vs.YUV:
        # Two steps (chroma to full size in float, then the matrix) give the same
        # numbers as one and run an order of magnitude faster for subsampled input.
        # Chroma linear, each sample on luma pixel s·j (vsugsp.device_frames explains why).
        # (the frame's _ChromaLocation would win over chromaloc_in: set it for this step)
        sited = uncached(core.std.SetFrameProps(tagged, _ChromaLocation=CHROMA_RESAMPLED_AT))
        tagged = uncached(core.resize.Bilinear(sited, format=vs.YUV444PS))
    return core.resize.Point(tagged, format=vs.RGBS)


def from_rgb(rgb: "vs.VideoNode", fmt: "vs.VideoFormat", spec_src: "vs.VideoNode") -> "vs.VideoNode":
    """RGBS → ``fmt`` (same size), frame n coded like frame n of ``spec_src``.

    ``spec_src`` supplies, per frame, the props of the source frame whose colour
    description the output must match (same length as ``rgb``; only its props
    are read). GRAY output takes the mean of the three channels.
    """
    import vapoursynth as vs

    core = vs.core
    if rgb.format.id != vs.RGBS:
        raise ValueError("vsugsp: from_rgb expects an RGBS clip")
    if fmt.id == vs.RGBS:
        return rgb
    fam = int(fmt.color_family)
    w, h = rgb.width, rgb.height
    if fmt.color_family == vs.GRAY:
        planes = [uncached(core.std.ShufflePlanes(rgb, p, vs.GRAY)) for p in range(3)]
        base = uncached(core.std.Expr(planes, "x y + z + 3 /"))
    else:
        base = rgb
    blank = core.std.BlankClip(rgb, format=fmt.id, keep=True)
    nodes: dict[ColorSpec, vs.VideoNode] = {}
    lock = threading.Lock()

    def _node(spec: ColorSpec) -> "vs.VideoNode":
        # One resize node per colour description; created on first use, then reused.
        with lock:
            node = nodes.get(spec)
            if node is None:
                kw = dict(format=fmt.id, dither_type="none")
                src = base
                if fmt.color_family == vs.YUV:
                    src = uncached(core.resize.Point(base, format=vs.YUV444PS, matrix=spec.matrix))
                    kw.update(chromaloc=CHROMA_RESAMPLED_AT)  # each sample takes its own pixel s·j
                if fmt.sample_type == vs.INTEGER:
                    kw.update(range=spec.range)
                node = uncached(core.resize.Point(src, **kw))
                if fmt.color_family == vs.YUV:  # the frame keeps the source's siting
                    node = uncached(core.std.SetFrameProps(node, _ChromaLocation=spec.chromaloc))
                nodes[spec] = node
            return node

    def _select(n: int, f: "vs.VideoFrame") -> "vs.VideoNode":
        return _node(resolve_color(f.props, fam, w, h))

    return uncached(core.std.FrameEval(blank, _select, prop_src=[spec_src]))
