"""``vsugsp render``: the command line of the chunked Ray render.

Same input, presets, ``--set``, factor/fps and codec options as ``vsugsp
interpolate`` (``vsugsp.cli.add_filter_arguments``), plus where and how to
run: ``--workers``, ``--threads``, ``--address``, ``--chunk``, ``--work-dir``.
"""
from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
from pathlib import Path
from typing import Any

from ..cli import CliError, _positive_int, add_filter_arguments, filter_kwargs, format_summary
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
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="chunks rendered at once (default: one per GPU, else one per core memory "
                        "allowing; with --address all the cluster fits)")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="CPU threads per worker (default: cores / workers here, 1 on a cluster)")
    p.add_argument("--address", metavar="ADDR",
                   help="join a running Ray cluster (HOST:PORT from 'ray start --head', or 'auto')")
    p.add_argument("--chunk", type=_positive_int, default=DEFAULT_CHUNK_FRAMES, metavar="FRAMES",
                   help=f"output frames per chunk (default {DEFAULT_CHUNK_FRAMES})")
    p.add_argument("--work-dir", type=Path, metavar="DIR",
                   help="chunks and manifest (default: OUT.chunks, removed after success; "
                        "a named one is kept)")
    p.set_defaults(func=cmd_render)
    return p


class _Terminated(Exception):
    """SIGTERM arrived during a render."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


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

    from ..progress import Progress
    from .run import RenderSettings, render

    settings = RenderSettings(
        source=src, output=output, kwargs=filter_kwargs(args), frames=args.frames, codec=args.codec,
        crf=args.crf, chunk_frames=args.chunk, work_dir=args.work_dir, workers=args.workers,
        threads=args.threads, address=args.address,
    )
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        report = render(settings, progress=Progress())
    except _Terminated:
        print("vsugsp: terminated; finished chunks are kept, run the same command again to resume",
              file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("vsugsp: interrupted; finished chunks are kept, run the same command again to resume",
              file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(format_render_summary(report, str(output)))
    return 0


def format_render_summary(report: Any, output: str) -> str:
    """``vsugsp interpolate``'s summary plus chunks, workers and stitch time.

    ``report``: a ``vsugsp.render.run.RenderReport``.
    """
    lines = [format_summary(report.src, report.out, report.seconds, report.work, output=output,
                            codec=report.encoder)]
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
