"""Real-time interpolation inside mpv's `vapoursynth` video filter.

mpv evaluates a .vpy with the globals `video_in` (fps 0, num_frames
INT_MAX // 16), `video_in_dw`, `video_in_dh`, `container_fps` and
`display_fps` (either may be 0 or NaN), `display_res` and, with newer mpv,
`user_data`. It re-runs the script on every seek, takes output timestamps from
each frame's `_DurationNum/_DurationDen`, and needs planar YUV out.

`SCRIPT` is the whole .vpy (what `vsugsp mpv-script` prints and
examples/mpv/vsugsp.vpy holds); `run` is everything it does. The network and
compiled kernels are cached process-wide by the filter's model loader, so a
seek does not reload them.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from fractions import Fraction
from typing import Any

import vapoursynth as vs

from .preset import MPV_DEVICES, MPV_LIMITS, Limits, load_preset
from .timing import snap_rate

__all__ = [
    "SCRIPT", "DEFAULT_SOURCE_RATE", "Limits", "default_limits", "limits_for", "skip_reason",
    "rate_from_float", "plan_output_rate", "parse_user_data", "run",
]

log = logging.getLogger(__name__)

SCRIPT = '''\
# vsugsp real-time frame interpolation for mpv. Written by `vsugsp mpv-script`.
# mpv.conf:   vf=vapoursynth=~~/vsugsp.vpy:4:4
# Settings below (None = automatic); mpv's user-data, e.g. "factor=2,device=cpu",
# overrides them.
SETTINGS = dict(
    factor=None,        # rate multiplier (2, 2.5, ...); None: follow the display rate
    max_fps=None,       # cap on the automatic output rate; None: the preset's
    preset="realtime",  # vsugsp preset
    device=None,        # "cuda", "cpu"; None: CUDA when available
    model=None,         # weights name or .pt path; None: the packaged default
)

import vsugsp.mpv

vsugsp.mpv.run(globals(), **SETTINGS)
'''

#: Assumed source rate when mpv reports none (0 or NaN): NTSC film.
DEFAULT_SOURCE_RATE = Fraction(24000, 1001)


def _kind(device: str) -> str:
    return "cuda" if device.lower().startswith("cuda") else "cpu"


def _section_values(section: Any, kind: str) -> dict[str, Any]:
    """A preset's `mpv` values for a device kind: the shared keys, then the kind's."""
    section = section or {}
    shared = {k: v for k, v in section.items() if k not in MPV_DEVICES}
    return {**shared, **(section.get(kind) or {})}


def default_limits(device: str) -> Limits:
    """Limits for `device` where a preset has no `mpv:` section (or leaves a key
    out): the `mpv:` section of the bundled realtime preset, presets/realtime.yaml,
    the one place where their numbers are written."""
    kind = _kind(device)
    values = _section_values(load_preset("realtime").mpv, kind)
    missing = [k for k in MPV_LIMITS if k not in values]
    if missing:
        raise ValueError(f"vsugsp: the realtime preset's mpv section gives no {', '.join(missing)} for {kind}")
    return Limits(**values)


def limits_for(preset: Any, device: str) -> Limits:
    """Limits for `device` from a preset's `mpv` mapping: keys of `Limits`,
    given directly and/or per device kind (`cpu:`, `cuda:`; those win).
    Keys it leaves out take the realtime preset's (`default_limits`)."""
    return dataclasses.replace(default_limits(device), **_section_values(getattr(preset, "mpv", None), _kind(device)))


def skip_reason(width: int, height: int, source: Fraction, target: Fraction | None, limits: Limits) -> str | None:
    """Why frames of this source should pass through untouched, or None to interpolate."""
    if target is None:
        return "the output rate would not be above the source rate"
    if width * height > limits.max_pixels:
        return f"{width}x{height} is more than {limits.max_pixels} pixels"
    if float(source) > limits.max_source_fps:
        return f"the source at {float(source):.3f} fps is faster than {limits.max_source_fps:g} fps"
    return None


def rate_from_float(fps: Any) -> Fraction | None:
    """A frame rate given as a float (mpv's container_fps/display_fps) as an
    exact fraction, or None when absent, zero, negative, NaN or infinite.

    The rule is :func:`vsugsp.timing.snap_rate` (the one ``parse_rate`` uses):
    within 0.1 % of n or n*1000/1001 snaps to it (23.976 -> 24000/1001,
    59.951 -> 60000/1001, 60.0 -> 60); others become the nearest fraction
    with a denominator of at most 1001.
    """
    try:
        x = float(fps)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(x) or x <= 0:
        return None
    rate = snap_rate(x)
    return rate if rate > 0 else None


def plan_output_rate(
    source: Fraction,
    display: Fraction | None,
    factor: Fraction | None,
    max_output_fps: float,
) -> Fraction | None:
    """The output rate to interpolate to, or None to pass frames through.

    An explicit `factor` gives source*factor. Otherwise the display rate
    (2x the source when unknown); a display faster than `max_output_fps` is
    divided by the smallest integer that brings it under (144 Hz -> 72 fps),
    which keeps an even cadence on that display. A target not above the
    source rate means there is nothing to add.
    """
    if factor is not None:
        target = source * factor
    else:
        target = display if display is not None else source * 2
        k = max(1, math.ceil(target / Fraction(max_output_fps)))
        target = target / k
    return target if target > source * Fraction(1001, 1000) else None


def parse_user_data(text: Any) -> dict[str, str]:
    """mpv's user-data as settings: "factor=2,device=cpu" -> {"factor": "2", ...}.

    Separators: comma or semicolon. Raises vs.Error on an item without '='
    or an unknown key.
    """
    if text is None:
        return {}
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8", "replace")
    out: dict[str, str] = {}
    for item in str(text).replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in _SETTING_KEYS:
            raise vs.Error(
                f"vsugsp: user-data item {item!r} is not one of "
                f"{', '.join(k + '=...' for k in sorted(_SETTING_KEYS))}"
            )
        out[key] = value.strip()
    return out


_SETTING_KEYS = {"factor", "max_fps", "preset", "device", "model"}


def _fraction(name: str, value: Any) -> Fraction | None:
    if value is None or value == "" or str(value).lower() == "none":
        return None
    try:
        f = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise vs.Error(f"vsugsp: {name}={value!r} is not a number") from None
    if f <= 0:
        raise vs.Error(f"vsugsp: {name}={value!r} must be positive")
    return f


def _none_or_str(value: Any) -> str | None:
    return None if value is None or str(value).lower() in ("", "none") else str(value)


def run(
    g: dict,
    *,
    factor: Any = None,
    max_fps: Any = None,
    preset: str = "realtime",
    device: str | None = None,
    model: Any = None,
) -> vs.VideoNode:
    """Build mpv's output from the script globals `g` and set it as output 0.

    Returns the output clip. Interpolation is skipped (frames pass through
    untouched) when the source is larger or faster than the preset's limits
    for the device (`limits_for`), or when the target rate is not above the
    source rate. Settings in mpv's `user_data` win over the keyword arguments.
    """
    from .engine import resolve_device

    if "video_in" not in g:
        raise vs.Error("vsugsp: no video_in: this script is meant for mpv's vapoursynth filter")
    clip: vs.VideoNode = g["video_in"]
    settings = parse_user_data(g.get("user_data"))
    factor_f = _fraction("factor", settings.get("factor", factor))
    max_fps_f = _fraction("max_fps", settings.get("max_fps", max_fps))
    preset = settings.get("preset", preset)
    model = _none_or_str(settings.get("model", model))
    try:
        loaded = load_preset(preset)
    except ValueError as exc:
        raise vs.Error(str(exc)) from None
    device = _none_or_str(settings.get("device", device))
    if device is None:
        device = loaded.device
    if device.lower() == "auto":
        device = str(resolve_device(device))
    limits = limits_for(loaded, device)
    cap = float(max_fps_f) if max_fps_f is not None else limits.max_output_fps
    known = rate_from_float(g.get("container_fps"))
    source = known or DEFAULT_SOURCE_RATE
    display = rate_from_float(g.get("display_fps"))
    target = plan_output_rate(source, display, factor_f, cap)

    why = skip_reason(clip.width, clip.height, source, target, limits)
    if why is not None:
        log.info("vsugsp: passing frames through: %s", why)
        out = clip
    else:
        from .filter import interpolate

        if known is not None:
            # video_in has fps 0; the fps= path needs the source rate.
            timed = clip.std.AssumeFPS(fpsnum=source.numerator, fpsden=source.denominator)
            out = interpolate(timed, fps=(target.numerator, target.denominator), preset=preset,
                              device=device, model=model)
        else:
            # The rate is only assumed: keep mpv's own frame durations, divided
            # by the factor, so that audio stays in sync if the guess is wrong.
            out = interpolate(clip, factor=target / source, preset=preset, device=device, model=model)
        log.info("vsugsp: %s -> %s fps at %dx%d, preset %s on %s",
                 source, target, clip.width, clip.height, preset, device)
    out.set_output()
    return out

