"""The render driver: plan the chunks, resume from the manifest, run the missing
chunks as Ray tasks, stitch.

Without an address Ray starts an embedded cluster on this machine (loopback
only) with ``workers`` × ``threads`` CPUs, or one worker per GPU; with one it
joins the running cluster at that address. Each chunk task asks Ray for
``threads`` CPUs (and one GPU on GPU nodes), so Ray never runs more workers
on a machine than it has cores. Ray schedules the tasks and reruns a task
whose worker died (``retries`` times); the driver only keeps at most
``workers`` chunks in flight, writes each finished chunk to the work dir and
records it in the manifest.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from .manifest import MANIFEST_NAME, Manifest
from .plan import DEFAULT_CHUNK_FRAMES, Chunk, local_workers, plan_chunks
from .tasks import CHUNK_SUFFIX, ChunkJob, ChunkResult, chunk_task
from .workdir import TMP_SUFFIX, locked, remove_render_files, remove_stale_temporaries

__all__ = ["RenderSettings", "RenderReport", "render", "default_work_dir", "local_cores"]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class RenderSettings:
    """What to render and where.

    source: input file (absolute path; on a cluster it must exist at that path on every node).
    output: the final file; the container follows its extension.
    kwargs: ``vsugsp.interpolate`` keyword arguments (the CLI's filter_kwargs).
    frames: only the first N source frames (``--frames``), or None.
    codec, crf: as for ``vsugsp.encode.write_video``; every chunk is encoded with them.
    chunk_frames: output frames per chunk.
    work_dir: chunk files and manifest; None → ``default_work_dir(output)``.
    workers: chunks rendered at once; None → one per GPU, else per core (memory allowing)
        on this machine, or all the cluster can run with ``address``.
    threads: CPU threads per worker; None → cores // workers on this machine, 1 on a cluster.
    address: a running Ray cluster ("HOST:PORT" or "auto"), or None for an embedded one.
    retries: times Ray reruns a chunk whose worker process died.
    streams: indices of the source's audio/subtitle streams copied into OUT
        (``vsugsp.remux.copyable_streams``); empty: video only.
    """

    source: Path
    output: Path
    kwargs: dict[str, Any]
    frames: int | None = None
    codec: str = "auto"
    crf: int = 18
    chunk_frames: int = DEFAULT_CHUNK_FRAMES
    work_dir: Path | None = None
    workers: int | None = None
    threads: int | None = None
    address: str | None = None
    retries: int = 3
    streams: tuple[int, ...] = ()


@dataclass
class RenderReport:
    """What a render did.

    src, out: the source and output clips (as ``vsugsp interpolate`` builds them).
    rendered, reused: chunks rendered by this run / found finished in the work dir;
    retried: chunks that had to be rerun after their worker died.
    work: the engine's tally over every chunk (reused ones included).
    seconds: wall time of the whole render; stitch_seconds: of the remux alone;
    render_seconds: wall time from the first chunk submitted to the last one written;
    chunk_runs: per chunk rendered by this run: index, frames, seconds (task wall
        time), setup_seconds (of it, before the first frame), bytes, node, pid.
    nodes: Ray node id -> chunks it rendered in this run.
    streams: audio/subtitle streams copied from the source.
    """

    src: Any
    out: Any
    chunks: int
    rendered: int
    reused: int
    retried: int
    workers: int
    threads: int
    gpus_per_worker: int
    encoder: str
    work_dir: Path
    work: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    stitch_seconds: float = 0.0
    render_seconds: float = 0.0
    chunk_runs: list[dict[str, Any]] = field(default_factory=list)
    nodes: dict[str, int] = field(default_factory=dict)
    streams: int = 0


def default_work_dir(output: Path) -> Path:
    """``OUT.chunks`` next to the output file."""
    return output.with_name(output.name + ".chunks")


def local_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _total_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return None


def _jsonable(value: Any) -> Any:
    """``value`` as the manifest stores it (Fractions and tuples as strings/lists)."""
    return json.loads(json.dumps(value, default=str, sort_keys=True))


#: ``vsugsp.interpolate`` keyword arguments that are not preset keys: the output rate.
_RATE_KEYS = ("factor", "fps")


def _resolved_preset(kwargs: dict[str, Any]) -> Any:
    """The ``Preset`` the render's frames are made with: the preset (YAML files
    read once, here) with the keyword overrides, as ``vsugsp.interpolate`` builds it."""
    from .. import scene
    from ..preset import load_preset

    overrides = {k: v for k, v in kwargs.items() if k not in ("preset", *_RATE_KEYS)}
    if "scene_change" in overrides:
        if overrides["scene_change"] is None:
            del overrides["scene_change"]
        else:
            overrides["scene_change"] = scene.normalize_mode(overrides["scene_change"])
    return load_preset(kwargs.get("preset", "balanced"), **overrides)


@dataclass(frozen=True)
class _Weights:
    """The network's weights file: ``sha256`` of its bytes, and ``model``, how a
    worker names it (a packaged name as given, a file as an absolute path)."""

    model: str
    sha256: str


def _weights(model: str) -> _Weights:
    from ..checksum import sha256_file
    from ..model.io import resolve, weights_dir

    path = resolve(model)
    packaged = path.parent == weights_dir() and path.stem == model
    return _Weights(model if packaged else str(path.resolve()), sha256_file(path))


def _render_key(settings: RenderSettings, cfg: Any, weights: _Weights, out: Any, encoder: str) -> dict[str, Any]:
    """Everything that decides the render's frames: what the source, the preset files
    and the weights file hold (sizes, times, resolved values, checksum), not only their names."""
    from .._version import __version__

    st = settings.source.stat()
    return {
        "source": str(settings.source),
        "source_size": st.st_size,
        "source_mtime_ns": st.st_mtime_ns,
        "frames": settings.frames,
        "settings": _jsonable({**cfg.to_dict(), "model": None}),  # the weights by checksum, below
        "rate": _jsonable({k: settings.kwargs.get(k) for k in _RATE_KEYS}),
        "weights_sha256": weights.sha256,
        "codec": encoder,
        "crf": settings.crf,
        "chunk_frames": settings.chunk_frames,
        "output_frames": out.num_frames,
        "output_fps": f"{out.fps_num}/{out.fps_den}",
        "vsugsp": __version__,
    }


@dataclass(frozen=True)
class _Cluster:
    workers: int
    threads: int
    gpus: int  # per worker, 0 or 1


@contextlib.contextmanager
def _cluster(settings: RenderSettings, gpu: bool) -> Iterator[_Cluster]:
    """Connect to (or start) Ray and decide workers × threads; disconnects after.

    ``settings.address``: HOST:PORT, already checked (:mod:`vsugsp.render.address`).
    """
    import ray

    quiet = dict(log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
    # Ray's token authentication stays on (its default); only its notice about that on every render goes
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    # ray.init puts its own crash reporter on SIGTERM; the caller's handlers (the
    # CLI's: stop, keep the finished chunks, exit 143/130) are put back after it.
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    if settings.address is None:
        cores = local_cores()
        gpus = 0
        if gpu:
            import torch

            gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        workers, threads, per_worker_gpu = local_workers(cores, _total_memory(), gpus, settings.workers,
                                                         settings.threads)
        # address="local": always a new cluster of our own, never one that RAY_ADDRESS or
        # a `ray start` on this machine points at.
        ray.init(address="local", num_cpus=workers * threads, num_gpus=gpus, include_dashboard=False,
                 _node_ip_address="127.0.0.1", **quiet)
    else:
        ray.init(address=settings.address, **quiet)
        resources = ray.cluster_resources()
        threads = settings.threads or 1
        cluster_gpus = int(resources.get("GPU", 0))
        per_worker_gpu = 1 if gpu and cluster_gpus else 0
        fits = cluster_gpus if per_worker_gpu else int(resources.get("CPU", 1)) // threads
        workers = settings.workers or max(1, fits)
    if threading.current_thread() is threading.main_thread():
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
    try:
        yield _Cluster(workers, threads, per_worker_gpu)
    finally:
        ray.shutdown()


def _pair_start(src: Any, out: Any) -> Callable[[int], int] | None:
    """Output n -> the first output frame of its source pair (for plan_chunks), from
    the rates of the source and of the graph; None when they do not give the
    graph's length (then chunks are not aligned to pairs)."""
    from ..timing import RateMap

    if src.fps_num <= 0:
        return None
    rmap = RateMap(src.num_frames, Fraction(out.fps_num, out.fps_den) / Fraction(src.fps_num, src.fps_den))
    if rmap.num_frames != out.num_frames:
        return None
    return lambda n: rmap.outputs_of(rmap.position(n)[0]).start


def _job_kwargs(kwargs: dict[str, Any], cfg: Any, weights: _Weights, gpu: bool) -> dict[str, Any]:
    """The workers' ``vsugsp.interpolate`` keyword arguments: the rate and the resolved
    preset (no YAML read again on the workers), its model as ``weights.model``.

    A GPU task sees only its own GPU (Ray sets CUDA_VISIBLE_DEVICES): "cuda:N" → "cuda".
    """
    device = "cuda" if gpu and str(cfg.device).startswith("cuda:") else cfg.device
    rate = {k: kwargs[k] for k in _RATE_KEYS if k in kwargs}
    return {**rate, "preset": replace(cfg, model=weights.model, device=device)}


def _result(ref: Any, chunk: Chunk, retries: int) -> ChunkResult:
    """The task's result; a user error inside the task is raised as itself."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception) and not isinstance(cause, ray.exceptions.RayError):
            raise cause from None
        raise RuntimeError(f"vsugsp: chunk {chunk.index} failed: {exc}") from None
    except ray.exceptions.RayError as exc:
        raise RuntimeError(
            f"vsugsp: chunk {chunk.index} (output frames {chunk.start}-{chunk.stop - 1}) failed after "
            f"{retries} retries: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        ) from None


def _write_chunk(manifest: Manifest, result: ChunkResult) -> None:
    """Write a finished chunk into the work dir (temporary file, fsync, rename) and record it.

    A failed write (disk full, ...) leaves no temporary behind and is an
    ``OSError`` naming the file.
    """
    path = manifest.chunk_path(result.chunk, CHUNK_SUFFIX)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as f:
            f.write(result.data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OSError(f"vsugsp: cannot write chunk {str(path)!r}: {exc.strerror or exc}; "
                      "free some space there or name another --work-dir") from None
    manifest.add(result.chunk, path, result.sha256, work=result.work, seconds=result.seconds)


def _run_chunks(
    settings: RenderSettings,
    todo: list[Chunk],
    manifest: Manifest,
    cluster: _Cluster,
    kwargs: dict[str, Any],
    weights_sha256: str,
    progress: Callable[[int, int], None] | None,
    report: RenderReport,
) -> None:
    import ray

    from .board import Board

    board = ray.remote(Board).options(num_cpus=0).remote()
    task = ray.remote(chunk_task)
    total = sum(c.frames for c in todo)
    queue = list(todo)
    pending: dict[Any, Chunk] = {}

    def submit(chunk: Chunk) -> None:
        job = ChunkJob(str(settings.source), settings.frames, kwargs, chunk, settings.codec,
                       settings.crf, cluster.threads, weights_sha256)
        ref = task.options(
            num_cpus=cluster.threads, num_gpus=cluster.gpus, max_retries=settings.retries,
            retry_exceptions=False, name=f"vsugsp-chunk-{chunk.index}",
        ).remote(job, board)
        pending[ref] = chunk

    began = time.perf_counter()
    try:
        while queue or pending:
            while queue and len(pending) < cluster.workers:
                submit(queue.pop(0))
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.25)
            for ref in ready:
                chunk = pending.pop(ref)
                result = _result(ref, chunk, settings.retries)
                _write_chunk(manifest, result)
                report.rendered += 1
                report.chunk_runs.append({
                    "index": chunk.index, "frames": chunk.frames, "seconds": result.seconds,
                    "setup_seconds": result.setup_seconds, "bytes": len(result.data), "node": result.node,
                    "pid": result.pid,
                })
                report.nodes[result.node] = report.nodes.get(result.node, 0) + 1
                report.encoder = result.encoder
            if progress is not None:
                progress(min(ray.get(board.done.remote()), total), total)
        report.render_seconds = time.perf_counter() - began
        report.retried = sum(1 for n in ray.get(board.attempts.remote()).values() if n > 1)
    except BaseException:
        # An embedded cluster's workers die with ray.shutdown(), so nothing is
        # cancelled there. Force-cancelling tasks whose replies are in flight trips
        # a check in Ray's core worker (seen with Ray 2.60: "Tried to complete task
        # that was not pending"), which kills the driver before it can report the
        # stop (exit 130/143) or the error, and fills stderr with "worker died".
        if settings.address is not None:
            _cancel(pending)
        raise


def _cancel(pending: dict[Any, Chunk]) -> None:
    """Stop the chunk tasks still running on a cluster that outlives this render."""
    import ray

    for ref in pending:
        ray.cancel(ref, force=True)


def _finish(settings: RenderSettings, chunks: list[tuple[Path, int]], out: Any, trimmed: bool) -> None:
    """Stitch ``chunks`` into a temporary file next to OUT, add the copied source
    streams as ``vsugsp interpolate`` does, and rename it to OUT.

    trimmed: only a part of the source was rendered (--frames), so the copied
    streams stop where the video does.
    """
    from ..output import atomic_output, scratch_file
    from ..remux import mux_with_source_streams
    from .stitch import stitch

    rate = Fraction(out.fps_num, out.fps_den)
    with atomic_output(settings.output) as final:
        if not settings.streams:
            stitch(chunks, final, rate)
            return
        with scratch_file(settings.output, "video") as video:
            stitch(chunks, video, rate)
            duration = Fraction(out.num_frames) / rate if trimmed else None
            mux_with_source_streams(video, settings.source, final, list(settings.streams), duration=duration)


def render(settings: RenderSettings, progress: Callable[[int, int], None] | None = None) -> RenderReport:
    """Render ``settings.source`` to ``settings.output`` in chunks on Ray.

    ``progress(done, total)``: output frames rendered by this run so far, of
    those this run has to render. Chunks already finished in the work dir
    are reused. Raises what ``vsugsp interpolate`` raises for bad settings.

    The work dir is locked for the whole render (a second render into it is a
    ValueError at once); the default one loses only the files the render
    wrote there after success.
    """
    import ray  # noqa: F401  (fail early, before anything is built, when Ray is missing)

    began = time.perf_counter()
    source = settings.source.resolve()
    settings = replace(settings, source=source)
    if settings.address is not None:  # a wrong address fails here, in seconds, before anything is built
        from .address import check_reachable, resolve_address

        settings = replace(settings, address=resolve_address(settings.address))
        check_reachable(settings.address)
    work_dir = settings.work_dir or default_work_dir(settings.output)
    with locked(work_dir):  # one render per work dir: a second one is refused here, at once
        report = _render_locked(settings, work_dir, progress)
    report.seconds = time.perf_counter() - began
    return report


def _render_locked(settings: RenderSettings, work_dir: Path,
                   progress: Callable[[int, int], None] | None) -> RenderReport:
    """``render`` while holding the work dir's lock."""
    from ..cli import open_source
    from ..encode import pick_codec
    from ..filter import interpolate
    from ..output import check_output

    source = settings.source
    cfg = _resolved_preset(settings.kwargs)
    weights = _weights(cfg.model)
    src = open_source(source, settings.frames)
    # The graph as `interpolate` builds it, on the CPU here: only its length,
    # rate and checks are used; the frames are made by the workers.
    rate = {k: settings.kwargs[k] for k in _RATE_KEYS if k in settings.kwargs}
    out = interpolate(src, **rate, preset=replace(cfg, model=weights.model), device="cpu")
    if out.fps_num <= 0 or out.fps_den <= 0:
        raise ValueError("vsugsp: the output clip has no constant frame rate; cannot encode it")
    encoder = pick_codec(settings.codec)
    check_output(settings.output, encoder)  # the path and the container, before any frame is rendered
    chunks = plan_chunks(out.num_frames, settings.chunk_frames, _pair_start(src, out))
    names = [f"{c.name}{CHUNK_SUFFIX}" for c in chunks]  # the files this render writes
    manifest = Manifest.open(work_dir, _render_key(settings, cfg, weights, out, encoder))
    remove_stale_temporaries(work_dir, [*names, MANIFEST_NAME])  # of a render killed mid-write
    todo = [c for c in chunks if not manifest.is_done(c)]
    report = RenderReport(src, out, len(chunks), 0, len(chunks) - len(todo), 0, 0, 0, 0, encoder, work_dir,
                          streams=len(settings.streams))
    if todo:
        manifest.save()
        with _cluster(settings, str(cfg.device).lower() != "cpu") as cluster:
            # what runs: never more workers at once than chunks to render (the summary says this)
            report.workers, report.threads, report.gpus_per_worker = min(cluster.workers, len(todo)), \
                cluster.threads, cluster.gpus
            job_kwargs = _job_kwargs(settings.kwargs, cfg, weights, bool(cluster.gpus))
            _run_chunks(settings, todo, manifest, cluster, job_kwargs, weights.sha256, progress, report)
    stitch_began = time.perf_counter()
    trimmed = settings.frames is not None and open_source(source).num_frames > src.num_frames
    _finish(settings, [(manifest.chunk_path(c, CHUNK_SUFFIX), c.start) for c in chunks], out, trimmed)
    report.stitch_seconds = time.perf_counter() - stitch_began
    for rec in manifest.records.values():
        for k, v in rec.work.items():
            report.work[k] = report.work.get(k, 0) + v
    if settings.work_dir is None:
        # Only what the render wrote there: a user's file in a folder of that name stays (and the folder with it).
        remove_render_files(work_dir, names)
    return report
