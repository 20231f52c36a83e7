"""How a render is cut into chunks and how many threads each worker gets: pure
arithmetic, no Ray, no VapourSynth.

A chunk is a range of *output* frames ``[start, stop)``. The chunks of a
render cover ``0 .. num_frames`` once, in order, each ``chunk_frames`` long
except the last. Which source frames a chunk reads follows from the output
indices alone (``vsugsp.timing.RateMap``), so any chunk can be rendered on any
machine in any order.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DEFAULT_CHUNK_FRAMES", "MEMORY_PER_WORKER", "Chunk", "plan_chunks", "worker_threads", "local_workers"]

#: The least memory (bytes) a CPU worker gets when the number of local workers is chosen.
MEMORY_PER_WORKER = 2 << 30

#: Output frames per chunk when --chunk is not given: about 5 s of 60 fps video,
#: small enough to spread over many workers and to lose little on a crash.
DEFAULT_CHUNK_FRAMES = 300


@dataclass(frozen=True, order=True)
class Chunk:
    """Output frames ``start .. stop - 1`` of the render, the ``index``-th chunk."""

    index: int
    start: int
    stop: int

    @property
    def frames(self) -> int:
        """Number of output frames in the chunk."""
        return self.stop - self.start

    @property
    def name(self) -> str:
        """File stem of the chunk in the work dir (sorts in render order)."""
        return f"chunk-{self.index:06d}-{self.start:09d}-{self.stop:09d}"


def plan_chunks(
    num_frames: int, chunk_frames: int, align: Callable[[int], int] | None = None
) -> tuple[Chunk, ...]:
    """Cut ``num_frames`` output frames into consecutive chunks of about ``chunk_frames``.

    ``align(n)``: the first output frame of the source pair that output ``n``
    lies in (``RateMap.outputs_of(RateMap.position(n)[0]).start``). With it,
    each boundary moves back to the start of its pair, so that no pair's
    frames, which the engine computes in one batch, are split over two
    chunks (a boundary stays put when moving it would empty a chunk). The
    last chunk takes the remainder. Raises ``ValueError`` naming the argument
    when a count is below 1.
    """
    if num_frames < 1:
        raise ValueError(f"vsugsp: a render needs at least 1 output frame, got {num_frames}")
    if chunk_frames < 1:
        raise ValueError(f"vsugsp: --chunk must be at least 1 frame, got {chunk_frames}")
    starts = [0]
    for target in range(chunk_frames, num_frames, chunk_frames):
        start = align(target) if align is not None else target
        if not starts[-1] < start <= target:
            start = target
        if start > starts[-1]:
            starts.append(start)
    stops = starts[1:] + [num_frames]
    return tuple(Chunk(k, a, b) for k, (a, b) in enumerate(zip(starts, stops)))


def worker_threads(cores: int, workers: int) -> int:
    """Threads per worker so that ``workers`` workers fill ``cores`` cores without
    oversubscribing them: ``cores // workers``, at least 1."""
    if workers < 1:
        raise ValueError(f"vsugsp: --workers must be at least 1, got {workers}")
    return max(1, cores // workers)


def local_workers(
    cores: int, memory: int | None, gpus: int, workers: int | None = None, threads: int | None = None
) -> tuple[int, int, int]:
    """(workers, threads per worker, GPUs per worker) for an embedded cluster on one machine.

    ``cores``: CPU cores; ``memory``: bytes of RAM (None: unknown); ``gpus``:
    GPUs the network may use; ``workers``/``threads``: what the user asked
    for (None: choose). With GPUs, one worker per GPU, each with one GPU;
    otherwise as many one-thread workers as there are cores (``cores //
    threads`` when ``threads`` is given), at most one per ``MEMORY_PER_WORKER``
    of RAM. Threads default to ``worker_threads(cores, workers)``.
    """
    if workers is None:
        if gpus:
            workers = gpus
        else:
            workers = max(1, cores // (threads or 1))
            if memory:
                workers = max(1, min(workers, memory // MEMORY_PER_WORKER))
    threads = threads or worker_threads(cores, workers)
    return workers, threads, 1 if gpus and workers <= gpus else 0
