"""Rendering one chunk: the work a Ray task does on whichever machine runs it.

A chunk task opens the source itself (the same path on every machine), builds
the very graph ``vsugsp interpolate`` builds (``vsugsp.interpolate`` with the
same keyword arguments) and encodes output frames ``start .. stop - 1`` of it.
The graph is lazy, so only the source frames those outputs depend on are read
(the pairs they lie in, plus one frame either side for the scene-change
flags); timing, scene-change decisions and props are the filter's own, and
the frames are bit-identical to a single-process render.

The encoded chunk travels back to the driver as bytes in Ray's object store,
so the work dir needs to exist on the driver's machine only.
"""
from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .manifest import sha256_bytes
from .plan import Chunk

__all__ = ["CHUNK_SUFFIX", "ChunkJob", "ChunkResult", "render_chunk", "chunk_task"]

#: Container of the chunk files: NUT keeps the exact 1/rate time base, so
#: timestamps are whole frame numbers and stitching is exact.
CHUNK_SUFFIX = ".nut"

#: Least seconds between two progress reports of one chunk.
_REPORT_INTERVAL = 0.2


@dataclass(frozen=True)
class ChunkJob:
    """Everything a worker needs to render ``chunk``.

    source: absolute path of the input, readable at that path on every node.
    frames: ``--frames`` (only the first N source frames) or None.
    kwargs: ``vsugsp.interpolate`` keyword arguments (the CLI's filter_kwargs).
    codec, crf: as for ``vsugsp.encode.write_video``.
    threads: CPU threads this worker may use (PyTorch and VapourSynth).
    weights_sha256: SHA-256 of the weights file the render was started with (its
        manifest key); a worker whose file differs refuses the chunk. None: unchecked.
    """

    source: str
    frames: int | None
    kwargs: dict[str, Any]
    chunk: Chunk
    codec: str
    crf: int
    threads: int
    weights_sha256: str | None = None


@dataclass(frozen=True)
class ChunkResult:
    """A rendered chunk: the encoded file's bytes and what it cost.

    work: the sums of the chunk's frames' work props (:data:`vsugsp.work.KEYS`:
        frames_interpolated, ...);
    seconds: wall time of the task, opening the source included;
    setup_seconds: the part of it before the first frame (imports, on a fresh
        worker the model load too, opening the source, building the graph);
    node, pid: where it ran.
    """

    chunk: Chunk
    data: bytes
    sha256: str
    encoder: str
    seconds: float
    node: str
    pid: int
    work: dict[str, int] = field(default_factory=dict)
    setup_seconds: float = 0.0


#: Fewest VapourSynth threads a worker runs, whatever its share of the cores.
MIN_VS_THREADS = 2


def _use_threads(threads: int) -> None:
    """``threads`` for PyTorch (the network's work); at least :data:`MIN_VS_THREADS` for VapourSynth.

    With one VapourSynth thread a chunk can hang for good: the engine's prior
    worker claims pair i + 1's prior and then asks VapourSynth for source frame
    i + 2, while the one VapourSynth thread, already in pair i + 1's callback,
    waits for that very prior (issue 24 item 7: a worker stuck at 171/192
    frames on a busy machine). A second thread serves the request; it mostly
    waits, so the cores are not oversubscribed.
    """
    import torch
    import vapoursynth as vs

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    vs.core.num_threads = max(threads, MIN_VS_THREADS)


def _check_weights(job: ChunkJob) -> None:
    """Refuse to render with weights other than the ones the render is keyed by (a file
    replaced during the render, or another file at that path on this machine)."""
    if job.weights_sha256 is None:
        return
    from ..checksum import sha256_file
    from ..model.io import resolve
    from ..preset import load_preset

    preset = job.kwargs.get("preset", "balanced")
    model = job.kwargs.get("model") or load_preset(preset).model
    path = resolve(model)
    if sha256_file(path) != job.weights_sha256:
        raise ValueError(
            f"vsugsp: weights file {str(path)!r} on {socket.gethostname()} is not the one this render "
            "was started with (it changed since); rerun with another --work-dir, or put the file back"
        )


def render_chunk(job: ChunkJob, report: Callable[[int], None] | None = None) -> ChunkResult:
    """Render and encode ``job.chunk``; ``report(done)`` gets the chunk's frames done so far.

    Raises what ``vsugsp interpolate`` would raise for the same settings
    (``vs.Error``/``ValueError`` for user errors).
    """
    began = time.perf_counter()
    from ..cli import open_source
    from ..encode import write_video
    from ..filter import interpolate
    from ..work import Tally

    _use_threads(job.threads)
    _check_weights(job)
    chunk = job.chunk
    clip = open_source(job.source, job.frames)
    out = interpolate(clip, **job.kwargs)
    if out.num_frames < chunk.stop:
        raise RuntimeError(
            f"vsugsp: chunk {chunk.index} needs output frames up to {chunk.stop - 1}, but the "
            f"source at {job.source!r} gives {out.num_frames} on this machine (is it the same file?)"
        )
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if report is not None and (done == total or now - last[0] >= _REPORT_INTERVAL):
            last[0] = now
            report(done)

    spent = Tally()
    setup = time.perf_counter() - began
    with tempfile.TemporaryDirectory(prefix="vsugsp-chunk-") as tmp:
        path = Path(tmp) / f"{chunk.name}{CHUNK_SUFFIX}"
        encoder = write_video(spent.counting(out[chunk.start : chunk.stop]), path, crf=job.crf,
                              codec=job.codec, progress=progress)
        data = path.read_bytes()
    return ChunkResult(
        chunk=chunk,
        data=data,
        sha256=sha256_bytes(data),
        encoder=encoder,
        seconds=time.perf_counter() - began,
        setup_seconds=setup,
        node=socket.gethostname(),
        pid=os.getpid(),
        work=spent.totals(),
    )


def chunk_task(job: ChunkJob, board: Any) -> ChunkResult:
    """The body of the Ray task: ``render_chunk`` reporting progress to the
    ``board`` actor (a ``vsugsp.render.board.Board``), tagged with Ray's node id."""
    import ray

    pid = os.getpid()
    index = job.chunk.index
    board.report.remote(index, pid, 0)
    result = render_chunk(job, report=lambda done: board.report.remote(index, pid, done))
    return replace(result, node=ray.get_runtime_context().get_node_id())
