"""``vsugsp render``: the command line of the chunked Ray render.

Same input, presets, ``--set``, factor/fps and codec options as ``vsugsp
interpolate`` (``vsugsp.cli.add_filter_arguments``), plus where and how to
run: ``--workers``, ``--threads``, ``--address``, ``--chunk``, ``--work-dir``.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..cli import (CliError, _positive_int, _streams_to_copy, add_filter_arguments, filter_kwargs, format_summary,
                   open_source, source_timing)
from .plan import DEFAULT_CHUNK_FRAMES

__all__ = ["add_parser", "cmd_render", "format_render_summary"]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``render`` on the ``vsugsp`` subcommands."""
    p = sub.add_parser(
        "render", help="interpolate a long video in chunks on Ray (this machine or a cluster), resumable",
        description="Render the same frames as 'vsugsp interpolate' in chunks of output frames, as Ray "
                    "tasks on an embedded local cluster or on a running one (--address); finished chunks "
                    "are kept in the work dir, so a rerun renders only what is missing; the chunks are "
                    "joined by remux.",
    )
    add_filter_arguments(p, output_help="output file (.mkv, .mp4, .mov, .nut, .avi)")
    p.add_argument("--no-audio", action="store_true",
                   help="do not copy the source's audio and subtitle streams (copied by default, "
                        "as by interpolate)")
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="chunks rendered at once (default: one per GPU, else one per core memory "
                        "allowing; with --address all the cluster fits)")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="CPU threads per worker (default: cores / workers here, 1 on a cluster)")
    p.add_argument("--address", metavar="ADDR",
                   help="join a running Ray cluster: HOST:PORT from 'ray start --head', or 'auto' (RAY_ADDRESS, "
                        "else the cluster 'ray start' started on this machine; never another render's); "
                        "one that does not answer within 15 s is an error")
    p.add_argument("--chunk", type=_positive_int, default=DEFAULT_CHUNK_FRAMES, metavar="FRAMES",
                   help=f"output frames per chunk (default {DEFAULT_CHUNK_FRAMES})")
    p.add_argument("--work-dir", type=Path, metavar="DIR",
                   help="chunks and manifest, one render at a time (default: OUT.chunks, whose chunks and "
                        "manifest are removed after success, the folder too when nothing else is in it; "
                        "a named one is kept)")
    p.set_defaults(func=cmd_render)
    return p


def cmd_render(args: argparse.Namespace) -> int:
    """Run ``vsugsp render``; prints the summary on stdout, the bar on stderr."""
    if importlib.util.find_spec("ray") is None:
        raise CliError("render needs Ray: pip install 'vsugsp[distributed]' (make bootstrap installs it)")
    src = Path(args.input)
    if not src.is_file():
        raise CliError(f"input {str(src)!r} does not exist or is not a file")
    if args.output == "-":
        raise CliError("render writes a file; use 'vsugsp interpolate -o -' for y4m on stdout")
    output = Path(args.output)
    if output.resolve() == src.resolve():
        raise CliError("output would overwrite the input")

    from ..encode import pick_codec
    from ..output import check_output
    from ..probe import check_video
    from ..progress import Progress
    from ..signals import Interrupted
    from .run import RenderSettings, render

    check_video(src)  # a text file is not a video, whatever FFmpeg makes of it
    check_output(output, pick_codec(args.codec))
    streams = () if args.no_audio else tuple(_streams_to_copy(src, str(output)))
    source_timing(src, open_source(src, args.frames), args.frames, follow=False,  # warns of a VFR source
                  hint="'vsugsp interpolate --vfr follow' keeps the source's timing")
    settings = RenderSettings(
        source=src, output=output, kwargs=filter_kwargs(args), frames=args.frames, codec=args.codec,
        crf=args.crf, chunk_frames=args.chunk, work_dir=args.work_dir, workers=args.workers,
        threads=args.threads, address=args.address, streams=streams,
    )
    # Ray prints its notices (a lost worker, ...) on stdout; stdout holds the summary only.
    with _stop_signals() as received, contextlib.redirect_stdout(sys.stderr):
        try:
            report = render(settings, progress=Progress())
        except KeyboardInterrupt as exc:
            stop = exc if isinstance(exc, Interrupted) else Interrupted(received[-1] if received else signal.SIGINT)
            print(f"vsugsp: stopped by {stop.name}; the finished chunks are kept in the work dir: run the "
                  "same command again to render only the missing ones", file=sys.stderr)
            return stop.exit_code
    print(format_render_summary(report, str(output)))
    return 0


@contextlib.contextmanager
def _stop_signals() -> Iterator[list[int]]:
    """``vsugsp.signals.stop_on_signals`` that also lists the signals received.

    Ray turns an exception raised by a signal handler while the driver waits
    in its C++ code into a plain KeyboardInterrupt, which loses which signal
    it was; the list keeps it (SIGTERM must still exit 143).
    """
    from ..signals import STOP_SIGNALS, Interrupted

    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield received
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def format_render_summary(report: Any, output: str) -> str:
    """``vsugsp interpolate``'s summary plus chunks, workers and stitch time.

    ``report``: a ``vsugsp.render.run.RenderReport``.
    """
    codec = report.encoder
    if report.streams:
        codec += f"; {report.streams} audio/subtitle stream{'s' if report.streams > 1 else ''} copied"
    lines = [format_summary(report.src, report.out, report.seconds, report.work, output=output, codec=codec)]
    retried = f", {report.retried} retried after a worker was lost" if report.retried else ""
    lines.append(f"chunks:  {report.chunks}: {report.rendered} rendered, {report.reused} reused "
                 f"from {report.work_dir}{retried}")
    if report.rendered:
        unit = f"{report.threads} thread{'s' if report.threads != 1 else ''}"
        if report.gpus_per_worker:
            unit += " + 1 GPU"
        lines.append(f"workers: {report.workers} x {unit} on {len(report.nodes)} node(s)")
    lines.append(f"stitch:  {report.stitch_seconds:.2f} s (remux, no re-encode)")
    return "\n".join(lines)
