"""The `vsugsp` command: interpolate a video file, report the installation,
print the mpv script; `train` and `bench` come from their own packages.

A subcommand outside this file is a module with
`add_parser(subparsers) -> argparse.ArgumentParser` that registers itself and
sets `func=handler` (handler(args) -> exit code) on its parser. The modules in
`EXTENSIONS` are imported when the command line is parsed; one that is
missing is left out, one that fails to import stays listed and explains why
when it is run.

User errors print `vsugsp: error: ...` on stderr and exit with 2; other
failures print `vsugsp: internal error: ...` and exit with 1. Neither shows a
traceback unless VSUGSP_DEBUG=1 is set. SIGINT and SIGTERM stop any command
cleanly with 130/143 (vsugsp.signals), also while the extensions import; a
closed stdout pipe ends it quietly with 141.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

from . import calibrate

#: Modules that add a subcommand (see the module docstring).
EXTENSIONS = ("vsugsp.train.cli", "vsugsp.bench.cli", "vsugsp.render.cli", "vsugsp.adapt_cli")


class CliError(Exception):
    """A user error: printed without traceback, exit code 2."""


# ---------------------------------------------------------------- arguments

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def parse_factor(text: str) -> int | Fraction:
    """`--factor`: "2" -> 2, "2.5" or "5/2" -> Fraction(5, 2); must be > 1."""
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number like 2, 2.5 or 5/2") from None
    if value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 1")
    return int(value) if value.denominator == 1 else value


def parse_fps(text: str) -> tuple[int, int]:
    """`--fps`: "60000/1001", "60" or "59.94" -> (num, den); must be > 0.

    Decimals go through the float path, so 23.976/29.97/59.94 mean the exact
    NTSC rates (24000/1001, ...).
    """
    from .timing import parse_rate

    value: str | float = text.strip()
    if "." in value and "/" not in value:
        try:
            value = float(value)
        except ValueError:
            pass
    try:
        rate = parse_rate(value, name="--fps")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("vsugsp: ")) from None
    return rate.numerator, rate.denominator


def parse_override(text: str) -> tuple[str, Any]:
    """`--set KEY=VALUE`: VALUE is read as YAML (numbers, true/false, lists), bounded as preset files are."""
    from .quote import short
    from .yamlfile import load_text

    key, sep, raw = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"{short(text)} is not KEY=VALUE")
    try:
        value = load_text(raw, f"--set {key.strip()}") if raw.strip() else None
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("vsugsp: ")) from None
    return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    """The full parser, extension subcommands included."""
    parser = argparse.ArgumentParser(
        prog="vsugsp",
        description="Frame interpolation for VapourSynth with UGSP (uncertainty-guided spatial pruning).",
    )
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"vsugsp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_interpolate_parser(sub)
    add_info_parser(sub)
    add_mpv_script_parser(sub)
    for module in EXTENSIONS:
        _add_extension(sub, module)
    return parser


def add_interpolate_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from .vfr import VFR_MODES

    p = sub.add_parser(
        "interpolate", help="raise a video file's frame rate",
        description="Read a video, interpolate it and write a video file (H.264) or y4m to stdout.",
    )
    add_filter_arguments(p, output_help="output file (.mp4, .mkv, .mov, .avi, .nut, .m4v) or '-' for y4m on stdout")
    p.add_argument("--no-audio", action="store_true",
                   help="do not copy the source's audio and subtitle streams (copied by default)")
    p.add_argument("--vfr", choices=VFR_MODES, default="retime",
                   help="a variable-frame-rate source: 'retime' takes its frames at the constant rate FFmpeg "
                        "reports (a warning says how far they move; default), 'follow' writes every output "
                        "frame at its place between the source's timestamps (a variable-rate file; --factor only)")
    p.add_argument("--adapt", type=int, default=0, metavar="STEPS",
                   help="first fine-tune the network on this clip's own frames for STEPS steps "
                        "(scene adaptation; minutes on a CPU; default 0: off)")
    p.set_defaults(func=cmd_interpolate)
    return p


def add_filter_arguments(p: argparse.ArgumentParser, *, output_help: str) -> None:
    """IN, -o OUT and the options that decide the output frames and file.

    Shared by `interpolate` and `render` (vsugsp.render.cli), so that the same
    options give the same frames; read them back with filter_kwargs and
    open_source.
    """
    from .encode import CODECS

    p.add_argument("input", metavar="IN", help="input video file (read with bestsource)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help=output_help)
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--factor", type=parse_factor, metavar="N",
                      help="multiply the frame rate by N (2, 2.5, 5/2; default 2)")
    rate.add_argument("--fps", type=parse_fps, metavar="A/B", help="target frame rate, e.g. 60000/1001 or 60")
    p.add_argument("--preset", help="preset name or YAML path (default: balanced)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")
    p.add_argument("--model", metavar="PATH", help="weights name or .pt file (default: the preset's)")
    p.add_argument("--frames", type=_positive_int, metavar="N", help="only the first N source frames")
    p.add_argument("--crf", type=int, default=18, choices=range(0, 52), metavar="0-51",
                   help="H.264 quality, lower is better (default 18)")
    p.add_argument("--codec", default="auto", choices=CODECS,
                   help="auto (H.264, else MPEG-4), libx264, mpeg4 or ffv1 (lossless; .mkv/.nut/.avi/.mp4)")
    p.add_argument("--set", dest="overrides", type=parse_override, action="append", default=[],
                   metavar="KEY=VALUE", help="override a preset setting (repeatable)")


def filter_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for vsugsp.interpolate from the parsed options.

    --set KEY=VALUE first, so that the dedicated options win over it.
    """
    kwargs: dict[str, Any] = dict(args.overrides)
    for key in ("fps", "factor", "model", "preset", "device"):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    return kwargs


def open_source(path: str | Path, frames: int | None = None):
    """The source clip as `interpolate` reads it: bestsource, the first `frames` frames."""
    import vapoursynth as vs

    clip = vs.core.bs.VideoSource(source=str(path))
    if frames is not None:
        clip = clip[: min(frames, clip.num_frames)]
    return clip


def add_info_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("info", help="versions, devices, presets, kernels and weights",
                       description="Report what this installation has and can run.")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--no-compile", action="store_true",
                   help="do not try to compile the CUDA kernels with CuPy")
    p.set_defaults(func=cmd_info)
    return p


def add_mpv_script_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("mpv-script", help="print the mpv VapourSynth script",
                       description="Print the .vpy for mpv's vapoursynth filter (save it as ~~/vsugsp.vpy).")
    p.set_defaults(func=cmd_mpv_script)
    return p


def _add_extension(sub: argparse._SubParsersAction, module: str) -> None:
    try:
        if importlib.util.find_spec(module) is None:
            return
        importlib.import_module(module).add_parser(sub)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):  # the module itself (or its package) is absent
            return
        _add_unavailable(sub, module, exc)
    except ImportError as exc:  # present, but needs something that is not installed
        _add_unavailable(sub, module, exc)


def _add_unavailable(sub: argparse._SubParsersAction, module: str, exc: Exception) -> None:
    name = module.split(".")[-2]

    def handler(args: argparse.Namespace) -> int:
        raise CliError(f"'{name}' is unavailable: {exc}")

    # Whatever arguments follow are accepted (see main), so the user sees why
    # the command is missing rather than an argument error.
    handler.accepts_any_arguments = True
    p = sub.add_parser(name, help=f"(unavailable: {exc})", add_help=False)
    p.set_defaults(func=handler)


# ---------------------------------------------------------------- commands

def cmd_interpolate(args: argparse.Namespace) -> int:
    src = Path(args.input)
    if not src.is_file():
        raise CliError(f"input {str(src)!r} does not exist or is not a file")
    to_stdout = args.output == "-"
    if not to_stdout and Path(args.output).resolve() == src.resolve():
        raise CliError("output would overwrite the input")

    if to_stdout and sys.stdout.isatty():
        raise CliError("refusing to write y4m video to a terminal; pipe it (-o - | mpv -) or name a file")
    follow = getattr(args, "vfr", "retime") == "follow"
    if follow and to_stdout:
        raise CliError("--vfr follow writes timestamps, which y4m cannot hold; name an output file")
    if follow and args.fps is not None:
        raise CliError(f"--vfr follow places output frames between the source's timestamps, so there is no "
                       f"constant rate for --fps {args.fps[0]}/{args.fps[1]} to give; use --factor")

    import vapoursynth as vs

    from .probe import check_video

    check_video(src)  # a text file is not a video, whatever FFmpeg makes of it
    if not to_stdout:  # the path and the container, before any frame is rendered
        from .encode import pick_codec
        from .output import check_output

        check_output(args.output, pick_codec(args.codec))
    copied = [] if args.no_audio else _streams_to_copy(src, None if to_stdout else args.output)

    from .filter import interpolate
    from .progress import Progress
    from .work import Tally

    report = sys.stderr if to_stdout else sys.stdout

    clip = open_source(src, args.frames)
    timing = source_timing(src, clip, args.frames, follow=follow,
                           hint="--vfr follow keeps the source's timing" if not to_stdout else
                           "y4m holds a constant rate only")
    kwargs = filter_kwargs(args)
    if args.adapt:
        from .adapt import adapt_for

        kwargs["model"] = adapt_for(clip, args.adapt, kwargs)
    out = interpolate(clip, **kwargs)

    bar = _Counted(Progress())
    spent = Tally()  # the work props of the frames written (vsugsp.work)
    try:
        if to_stdout:
            spent.counting(out).output(sys.stdout.buffer, y4m=True, progress_update=bar)
            codec = "y4m"
        else:
            whole = args.frames is None or clip.num_frames >= open_source(src).num_frames
            times = end = None
            if timing is not None:
                times, end = _follow(timing, clip, out), timing.end - timing.times[0]
            codec = _write_file(spent.counting(out), src, args, copied, bar, trim=not whole, times=times, end=end)
    except vs.Error as exc:
        raise _frame_error(exc, clip, out, bar.done) from None
    seconds = bar.elapsed
    out_rate = None
    if timing is not None:
        average = out.num_frames / (timing.end - timing.times[0])
        out_rate = f"variable (the source's timestamps, average {float(average):.3f})"
    print(format_summary(clip, out, seconds, spent.totals(), output=args.output, codec=codec,
                         prior=flow_prior_report(kwargs), out_rate=out_rate,
                         modes=[calibrate.describe(d) for d in calibrate.decisions()]), file=report)
    return 0


class _Counted:
    """A progress callback that remembers how many frames are done (the next one is the one that failed)."""

    def __init__(self, bar: Callable[[int, int], None]) -> None:
        self.bar, self.done = bar, 0

    def __call__(self, done: int, total: int) -> None:
        self.done = done
        self.bar(done, total)

    @property
    def elapsed(self) -> float:
        return self.bar.elapsed


def source_timing(src: Path, clip, frames: int | None, *, follow: bool, hint: str,
                  warn: Callable[[str], None] | None = None):
    """The source's frame times (:class:`vsugsp.probe.FrameTimes`) when ``follow``, else None.

    Warns (on stderr, or through ``warn``) when ``clip``'s constant rate moves
    the source's frames against their timestamps (a variable-frame-rate
    source), naming ``hint`` as the way out. With ``follow`` the times must be
    those of ``clip``'s frames (CliError otherwise).
    """
    try:
        import av  # noqa: F401
    except ImportError:
        return None
    from .probe import frame_times
    from .vfr import retiming, warning

    found = frame_times(src, frames)
    if found is None or not found.times:
        if follow:
            raise CliError(f"--vfr follow: input {str(src)!r} has no video timestamps to follow")
        return None
    if follow:
        if len(found.times) != clip.num_frames:
            raise CliError(f"--vfr follow: input {str(src)!r} has {len(found.times)} timestamped video packets "
                           f"for {clip.num_frames} frames; they cannot be matched")
        return found
    if clip.fps_num > 0 and clip.fps_den > 0:
        r = retiming(found.times[: clip.num_frames], Fraction(clip.fps_num, clip.fps_den), found.tick)
        if r.variable:
            (warn or (lambda m: print(m, file=sys.stderr)))(warning(repr(str(src)), r, hint))
    return None


def _follow(timing, clip, out) -> list[Fraction]:
    """Each output frame's time (seconds) between the source's timestamps (``--vfr follow``)."""
    from .vfr import follow_times

    ratio = Fraction(out.fps_num, out.fps_den) / Fraction(clip.fps_num, clip.fps_den)
    times = follow_times(timing.times, timing.end, ratio)
    if len(times) != out.num_frames:  # the filter's RateMap and ours disagree: never write wrong times
        raise RuntimeError(f"vsugsp: {len(times)} output times for {out.num_frames} frames")
    return times


def _streams_to_copy(src: Path, output: str | None) -> list[int]:
    """The source's audio/subtitle streams OUT's container takes (output None: y4m, none); warns of the rest."""
    try:
        import av  # noqa: F401
    except ImportError:
        return []
    from .output import container_of
    from .remux import copyable_streams

    return copyable_streams(src, None if output is None else container_of(output),
                            warn=lambda msg: print(msg, file=sys.stderr))


def _write_file(out, src: Path, args: argparse.Namespace, copied: list[int], bar: Callable[[int, int], None],
                *, trim: bool, times: list[Fraction] | None = None, end: Fraction | None = None) -> str:
    """Encode `out` into a temporary file next to OUT, add the copied source streams, rename it to OUT.

    trim: only a part of the source was interpolated (--frames), so the copied
    streams stop where the video does; otherwise they are copied whole.
    times: each frame's time in seconds (--vfr follow), None for `out`'s constant rate;
    end: then when the video ends (seconds).
    """
    from .encode import write_video
    from .output import atomic_output, scratch_file
    from .remux import mux_with_source_streams

    with atomic_output(args.output) as final:
        if not copied:
            return write_video(out, final, crf=args.crf, codec=args.codec, progress=bar, times=times)
        with scratch_file(args.output, "video") as video:
            codec = write_video(out, video, crf=args.crf, codec=args.codec, progress=bar, times=times)
            duration = None
            if trim:
                duration = Fraction(out.num_frames * out.fps_den, out.fps_num) if end is None else end
            mux_with_source_streams(video, src, final, copied, duration=duration)
    n = len(copied)
    return f"{codec}; {n} audio/subtitle stream{'s' if n > 1 else ''} copied"


def _frame_error(exc: Exception, src, out, n: int) -> Exception:
    """The error of output frame `n`, naming the source frame that failed when one did."""
    import vapoursynth as vs

    from .diagnose import failing_source, last_line

    found = failing_source(src, out, n)
    if found is not None:
        return vs.Error(f"vsugsp: output frame {n} failed: source frame {found[0]} could not be read: {found[1]}")
    return vs.Error(f"vsugsp: output frame {n} failed: {last_line(exc).removeprefix('vapoursynth.Error: ')}")


def cmd_info(args: argparse.Namespace) -> int:
    from .info import format_report, gather

    report = gather(compile_check=not args.no_compile)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def cmd_mpv_script(args: argparse.Namespace) -> int:
    from .mpv import SCRIPT

    sys.stdout.write(SCRIPT)
    return 0


# ---------------------------------------------------------------- summary

def flow_prior_report(kwargs: dict[str, Any]) -> str:
    """What the flow prior of ``interpolate(**kwargs)``'s settings runs, e.g. "dis (auto on cpu)"."""
    from .engine import resolve_device
    from .model import prior
    from .preset import PRESET_KEYS, load_preset

    # "model" may be a network (--adapt): it has no say in the prior
    keys = {k: v for k, v in kwargs.items() if k in PRESET_KEYS and k != "model"}
    cfg = load_preset(kwargs.get("preset", "balanced"), **keys)
    return prior.describe(cfg.flow_prior, resolve_device(cfg.device))


def format_summary(src, out, seconds: float, work: dict[str, int], *, output: str, codec: str,
                   prior: str | None = None, out_rate: str | None = None, modes: Sequence[str] = ()) -> str:
    """The closing report: frames, time, speed and how much work pruning skipped.

    `work`: the sums of the rendered frames' work props (:class:`vsugsp.work.Tally`:
    frames_interpolated, frames_passed, executed_macs, dense_macs).  `prior`: the
    flow prior that ran (:func:`flow_prior_report`), None to leave the line out.
    `out_rate`: the output's rate as written when it is not `out`'s (``--vfr follow``).
    `modes`: what ``mode: auto`` chose in this run, one line each (:func:`vsugsp.calibrate.describe`).
    """
    lines = [
        f"input:   {src.num_frames} frames, {src.width}x{src.height}, {_rate(src)} fps",
        f"output:  {out.num_frames} frames, {out_rate or _rate(out)} fps -> {output} ({codec})",
        f"time:    {seconds:.1f} s, {out.num_frames / seconds if seconds > 0 else 0:.2f} output fps",
        f"frames:  {work.get('frames_interpolated', 0)} interpolated, "
        f"{work.get('frames_passed', 0)} passed through",
    ]
    dense = work.get("dense_macs", 0)
    if dense > 0:  # zero when every frame was passed through
        executed = work.get("executed_macs", 0)
        lines.append(f"work:    {executed / 1e9:.1f} of {dense / 1e9:.1f} GMAC executed, "
                     f"{100 * (1 - executed / dense):.1f}% pruned")
    elif work.get("frames_interpolated", 0) > 0:  # frames made without any network pass
        lines.append("work:    the network did not run: every frame from the flow prior alone (refine: [])")
    if prior is not None:
        lines.append(f"prior:   {prior}")
    lines.extend(f"mode:    {m}" for m in modes)
    return "\n".join(lines)


def _rate(clip) -> str:
    if clip.fps_den == 0 or clip.fps_num == 0:
        return "variable"
    return f"{clip.fps_num}/{clip.fps_den} ({clip.fps_num / clip.fps_den:.3f})"


# ---------------------------------------------------------------- entry point

def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    0 ok, 1 internal error, 2 user error, 130/143 stopped by SIGINT/SIGTERM
    (no partial output is left), 141 the reader of stdout went away (SIGPIPE's
    code, nothing printed).
    """
    from .signals import Interrupted, stop_on_signals

    with stop_on_signals():
        try:
            return _run(argv)
        except Interrupted as exc:
            print(f"vsugsp: stopped by {exc.name}; no partial output is left", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("vsugsp: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:
            # The reader of stdout (e.g. `head`, a player fed y4m) went away: quiet, as if
            # killed by SIGPIPE, and with stdout pointed at /dev/null so that the
            # interpreter's last flush does not complain either.
            _silence_stdout()
            return 141


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if extra and not getattr(func, "accepts_any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
    except (KeyboardInterrupt, BrokenPipeError):
        raise  # main's
    except Exception as exc:
        if os.environ.get("VSUGSP_DEBUG"):
            raise
        msg = (str(exc).strip() or type(exc).__name__).removeprefix("vsugsp: ")
        if _is_user_error(exc):
            print(f"vsugsp: error: {msg}", file=sys.stderr)
            return 2
        print(f"vsugsp: internal error: {type(exc).__name__}: {msg}\n"
              "(run again with VSUGSP_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return 1


def _is_user_error(exc: Exception) -> bool:
    """Errors a user can act on: bad arguments, files, formats, settings."""
    if isinstance(exc, (CliError, ValueError, OSError)):
        return True
    try:
        import vapoursynth as vs
    except ImportError:
        return False
    return isinstance(exc, vs.Error)


if __name__ == "__main__":
    sys.exit(main())
