"""vsugsp.render without Ray: chunk planning, manifest, progress board, stitching,
and what one chunk task reads and renders."""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import vapoursynth as vs

from vsugsp.render.board import Board
from vsugsp.render.manifest import Manifest, sha256_bytes
from vsugsp.render.plan import Chunk, local_workers, plan_chunks, worker_threads
from vsugsp.timing import RateMap
from vsclips import moving
from test_encode import decoded_planes


# ---------------------------------------------------------------- plan

def test_chunks_cover_the_output_once_in_order():
    chunks = plan_chunks(25, 10)
    assert chunks == (Chunk(0, 0, 10), Chunk(1, 10, 20), Chunk(2, 20, 25))
    assert [c.frames for c in chunks] == [10, 10, 5]
    assert plan_chunks(3, 10) == (Chunk(0, 0, 3),)
    assert sorted(c.name for c in plan_chunks(2000, 7)) == [c.name for c in plan_chunks(2000, 7)]


@pytest.mark.parametrize("ratio", [Fraction(2), Fraction(5, 2), Fraction(60000, 1001) / Fraction(24000, 1001),
                                   Fraction(7)])
@pytest.mark.parametrize("size", [1, 4, 11, 64])
def test_aligned_boundaries_start_a_source_pair(ratio, size):
    rmap = RateMap(40, ratio)

    def align(n: int) -> int:
        return rmap.outputs_of(rmap.position(n)[0]).start

    chunks = plan_chunks(rmap.num_frames, size, align)
    assert chunks[0].start == 0 and chunks[-1].stop == rmap.num_frames
    assert all(a.stop == b.start for a, b in zip(chunks, chunks[1:]))
    assert all(c.frames > 0 for c in chunks)
    for c in chunks[1:]:
        if size >= ratio:  # a chunk can hold a whole pair: no pair is split
            assert align(c.start) == c.start
        assert c.start <= c.index * size  # a boundary only ever moves back


def test_plan_arguments_are_checked():
    with pytest.raises(ValueError, match="--chunk must be at least 1 frame, got 0"):
        plan_chunks(10, 0)
    with pytest.raises(ValueError, match="at least 1 output frame"):
        plan_chunks(0, 10)
    with pytest.raises(ValueError, match="--workers must be at least 1, got 0"):
        worker_threads(2, 0)


def test_workers_never_oversubscribe_cores():
    assert worker_threads(2, 1) == 2
    assert worker_threads(2, 2) == 1
    assert worker_threads(16, 3) == 5
    assert worker_threads(2, 4) == 1  # more workers than cores: one thread each


def test_local_workers_fill_the_machine_within_memory_and_gpus():
    gib = 1 << 30
    assert local_workers(2, 24 * gib, 0) == (2, 1, 0)  # one one-thread worker per core
    assert local_workers(16, 8 * gib, 0) == (4, 4, 0)  # memory allows 4 workers: 4 threads each
    assert local_workers(16, None, 0, threads=4) == (4, 4, 0)  # threads given: cores // threads workers
    assert local_workers(16, 64 * gib, 2) == (2, 8, 1)  # one worker per GPU
    assert local_workers(2, 24 * gib, 0, workers=1) == (1, 2, 0)
    assert local_workers(16, 64 * gib, 2, workers=4) == (4, 4, 0)  # more workers than GPUs: CPU only


# ---------------------------------------------------------------- manifest

def test_manifest_records_survive_a_reopen_and_checksums_are_verified(tmp_path):
    key = {"source": "in.mkv", "chunk_frames": 4}
    m = Manifest.open(tmp_path, key)
    chunks = plan_chunks(10, 4)
    for c in chunks[:2]:
        path = m.chunk_path(c, ".nut")
        path.write_bytes(b"chunk %d" % c.index)
        m.add(c, path, sha256_bytes(path.read_bytes()), work={"frames_interpolated": 2}, seconds=1.5)
    again = Manifest.open(tmp_path, dict(key))
    assert [again.is_done(c) for c in chunks] == [True, True, False]
    assert again.records[1].work == {"frames_interpolated": 2} and again.records[1].seconds == 1.5
    # a damaged chunk (same size, other bytes) and a missing one count as not done
    m.chunk_path(chunks[0], ".nut").write_bytes(b"chunk X")
    m.chunk_path(chunks[1], ".nut").unlink()
    assert [again.is_done(c) for c in chunks] == [False, False, False]


def test_manifest_refuses_another_render_and_a_bad_transfer(tmp_path):
    m = Manifest.open(tmp_path, {"crf": 18, "codec": "ffv1"})
    c = Chunk(0, 0, 3)
    path = m.chunk_path(c, ".nut")
    path.write_bytes(b"abc")
    with pytest.raises(OSError, match="does not match the worker's checksum"):
        m.add(c, path, sha256_bytes(b"abd"))
    m.add(c, path, sha256_bytes(b"abc"))
    with pytest.raises(ValueError, match=r"--work-dir .* different render \(changed: crf\)"):
        Manifest.open(tmp_path, {"crf": 20, "codec": "ffv1"})
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable manifest.json"):
        Manifest.open(tmp_path, {"crf": 18, "codec": "ffv1"})
    assert not list(tmp_path.glob("*.tmp"))  # saved by rename, nothing left behind


def test_manifest_is_plain_json(tmp_path):
    m = Manifest.open(tmp_path, {"k": 1})
    m.save()
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["key"] == {"k": 1} and data["chunks"] == []


# ---------------------------------------------------------------- board

def test_board_counts_the_latest_attempt_of_each_chunk():
    b = Board()
    b.report(0, 100, 0)
    b.report(0, 100, 5)
    b.report(1, 101, 3)
    assert b.done() == 8
    b.report(0, 102, 0)  # chunk 0's worker died; Ray restarted it in process 102
    b.report(0, 102, 2)
    b.report(0, 100, 6)  # a late report of the dead attempt does not count
    assert b.done() == 5
    assert b.attempts() == {0: 2, 1: 1}


# ---------------------------------------------------------------- stitch

@pytest.mark.parametrize("codec", ["libx264", "ffv1", "mpeg4"])
@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_stitch_joins_chunks_without_reencoding(tmp_path, codec, ext):
    import av

    from vsugsp.encode import write_video
    from vsugsp.render.stitch import stitch

    clip = moving(vs.YUV420P8, 64, 48, length=30, fps=(60000, 1001))
    parts = []
    for a, b in [(0, 11), (11, 23), (23, 30)]:
        path = tmp_path / f"c{a}.nut"
        write_video(clip[a:b], path, codec=codec)
        parts.append((path, a))
    out = tmp_path / f"out{ext}"
    assert stitch(parts, out, Fraction(60000, 1001)) == 30
    got = decoded_planes(out)
    want = [f for path, _ in parts for f in decoded_planes(path)]
    assert len(got) == 30
    assert all(np.array_equal(x, y) for fa, fb in zip(got, want) for x, y in zip(fa, fb))
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == {"libx264": "h264"}.get(codec, codec)
        if ext == ".mp4":  # Matroska keeps milliseconds, so its rate is only guessed from them
            assert s.guessed_rate == Fraction(60000, 1001)
        assert abs(c.duration / 1e6 - 30 * 1001 / 60000) < 0.002
        pkts = [p for p in c.demux(s) if p.size]
        assert sum(p.is_keyframe for p in pkts) >= 3  # each chunk begins with its own key frame
        dts = [p.dts for p in pkts if p.dts is not None]  # Matroska stores none for B-frames
        assert dts == sorted(dts) and len(set(dts)) == len(dts)


def test_stitch_refuses_chunks_encoded_differently(tmp_path):
    from vsugsp.encode import write_video
    from vsugsp.render.stitch import stitch

    clip = moving(vs.YUV420P8, 64, 48, length=6)
    write_video(clip[:3], tmp_path / "a.nut", codec="ffv1")
    write_video(clip[3:], tmp_path / "b.nut", codec="mpeg4")
    with pytest.raises(ValueError, match="b.nut was encoded differently"):
        stitch([(tmp_path / "a.nut", 0), (tmp_path / "b.nut", 3)], tmp_path / "o.mkv", Fraction(24))
    with pytest.raises(ValueError, match="starts at frame 4, expected 3"):
        stitch([(tmp_path / "a.nut", 0), (tmp_path / "a.nut", 4)], tmp_path / "o.mkv", Fraction(24))


# ---------------------------------------------------------------- one chunk task

def test_a_chunk_reads_only_the_source_frames_it_needs(tmp_path, monkeypatch):
    """Output frames 20..29 of 12 source frames × 5/2 lie in pairs 8..11; the
    scene-change flags look one pair either side, nothing further."""
    import vsugsp.cli
    from vsugsp.render.tasks import ChunkJob, render_chunk

    src = moving(vs.YUV420P8, 64, 48, length=16, fps=(24, 1))
    read: set[int] = set()

    def record(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        read.add(n)
        return f

    monkeypatch.setattr(vsugsp.cli, "open_source",
                        lambda path, frames: vs.core.std.ModifyFrame(src, src, record)[:frames])
    chunk = Chunk(2, 20, 30)
    job = ChunkJob("in.mkv", 12, {"factor": Fraction(5, 2), "preset": "fast", "device": "cpu"}, chunk,
                   "ffv1", 18, 1)
    done: list[int] = []
    result = render_chunk(job, report=done.append)
    rmap = RateMap(12, Fraction(5, 2))
    pairs = {rmap.position(n)[0] for n in range(chunk.start, chunk.stop)}
    assert pairs == {8, 9, 10, 11}
    assert read and read <= set(range(min(pairs) - 1, 12))
    assert done[-1] == 10 and result.sha256 == sha256_bytes(result.data)
    assert result.work["frames_interpolated"] + result.work["frames_passed"] == 10
    path = tmp_path / "c.nut"
    path.write_bytes(result.data)
    assert len(decoded_planes(path)) == 10
