"""`vsugsp render` on Ray gives the frames `vsugsp interpolate` gives: embedded
cluster, two-node cluster, a worker killed mid-chunk, interrupted and rerun.

Tiny lossless (FFV1) clips and the `fast` preset; every render is compared
frame by frame, bit for bit, with `vsugsp interpolate --codec ffv1`.
"""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

import torch

from vsugsp import cli
from vsugsp.encode import write_video
from vsugsp.model.io import resolve as resolve_weights
from vsclips import moving
from test_encode import decoded_planes

pytest.importorskip("ray", reason="the distributed extra (ray) is not installed")

COMMON = ["--preset", "fast", "--device", "cpu", "--codec", "ffv1"]
FRAC = ["--fps", "60000/1001"]  # 24000/1001 -> 60000/1001
CUTS = ["--factor", "2"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Sources (FFV1) and their `vsugsp interpolate --codec ffv1` outputs."""
    d = tmp_path_factory.mktemp("render")
    # 24 frames at 24000/1001 -> 60 frames at 60000/1001
    frac = moving(vs.YUV420P8, 64, 48, length=24, fps=(24000, 1001), speed=2.0)
    # three shots: cuts between source frames 5|6 and 12|13; with factor 2 and
    # --chunk 12 the first cut's pair ends chunk 0 and the second's begins chunk 2
    shots = [moving(vs.YUV420P8, 64, 48, length=18, fps=(24, 1), speed=s, seed=k)
             for k, s in enumerate((1.5, -2.0, 1.0))]
    cuts = shots[0][:6] + shots[1][6:13] + shots[2][13:]
    # a longer clip for the kill and interrupt tests: 16 chunks of 12 frames
    long = moving(vs.YUV420P8, 64, 48, length=96, fps=(24, 1), speed=1.0)
    out = {}
    for name, clip, rate in (("frac", frac, FRAC), ("cuts", cuts, CUTS), ("long", long, CUTS)):
        src = d / f"{name}.mkv"
        write_video(clip, src, codec="ffv1")
        if name == "frac":  # with an audio stream, which both commands copy
            src = with_audio(src, d / "frac-audio.mkv", clip.num_frames * 1001 / 24000)
        ref = d / f"{name}-interpolate.mkv"
        assert cli.main(["interpolate", str(src), "-o", str(ref), *rate, *COMMON]) == 0
        out[name], out[f"{name}-ref"] = src, ref
    return out


def with_audio(video: Path, path: Path, seconds: float) -> Path:
    """``video``'s stream copied into ``path`` next to ``seconds`` of a 440 Hz tone (AAC)."""
    import av

    with av.open(str(video)) as vin, av.open(str(path), "w") as out:
        ov = out.add_stream_from_template(vin.streams.video[0])
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "mono"
        for packet in vin.demux(vin.streams.video[0]):
            if packet.size:
                packet.stream = ov
                out.mux(packet)
        t = np.arange(int(48000 * seconds)) / 48000
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        for k in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(samples[:, k:k + 1024].copy(), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, k
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    return path


def audio_packets(path: Path) -> list[tuple[int, bytes]]:
    import av

    with av.open(str(path)) as c:
        return [(p.pts, bytes(p)) for p in c.demux(audio=0) if p.size]


def assert_same_frames(a: Path, b: Path) -> int:
    fa, fb = decoded_planes(a), decoded_planes(b)
    assert len(fa) == len(fb) > 0
    for n, (x, y) in enumerate(zip(fa, fb)):
        assert all(np.array_equal(p, q) for p, q in zip(x, y)), f"frame {n} differs"
    return len(fa)


def chunk_counts(summary: str) -> tuple[int, int, int]:
    """(chunks, rendered, reused) from the render summary."""
    m = re.search(r"chunks:\s+(\d+): (\d+) rendered, (\d+) reused", summary)
    assert m, summary
    return int(m[1]), int(m[2]), int(m[3])


def test_render_matches_interpolate_at_a_fractional_rate(clips, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out.mkv"
    # a folder of the default work dir's name holding a user's file (issue 24 item 2)
    (tmp_path / "out.mkv.chunks").mkdir()
    (tmp_path / "out.mkv.chunks" / "precious.txt").write_text("mine")
    # the embedded cluster is our own: neither RAY_ADDRESS nor a `ray start` here is joined (item 6)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    code = cli.main(["render", str(clips["frac"]), "-o", str(out), *FRAC, *COMMON,
                     "--workers", "2", "--chunk", "16"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert assert_same_frames(out, clips["frac-ref"]) == 60
    assert len(audio_packets(out)) > 20 and audio_packets(out) == audio_packets(clips["frac-ref"])
    assert chunk_counts(captured.out) == (4, 4, 0)
    assert "1 audio/subtitle stream copied" in captured.out
    assert "workers: 2 x 1 thread" in captured.out and "output:  60 frames" in captured.out
    assert "60/60 frames" in captured.err  # one bar over the whole render
    assert captured.out.startswith("input:")  # nothing but the summary on stdout (Ray's notices go to stderr)
    # the default work dir loses the render's files after success, and only those
    assert [p.name for p in (tmp_path / "out.mkv.chunks").iterdir()] == ["precious.txt"]
    assert (tmp_path / "out.mkv.chunks" / "precious.txt").read_text() == "mine"


def test_render_matches_interpolate_across_scene_cuts_at_chunk_boundaries(clips, tmp_path, capsys):
    ref = decoded_planes(clips["cuts-ref"])
    src = decoded_planes(clips["cuts"])
    # the cuts were seen: across them a source frame is repeated, not blended
    assert all(np.array_equal(p, q) for p, q in zip(ref[11], src[5]))
    assert all(np.array_equal(p, q) for p, q in zip(ref[25], src[12]))
    assert not all(np.array_equal(p, q) for p, q in zip(ref[9], src[4]))  # inside a shot: interpolated
    out, work = tmp_path / "out.mp4", tmp_path / "work"
    # the preset and the weights by path: the same values and bytes as `fast` and `small`
    preset, weights = tmp_path / "mine.yaml", tmp_path / "w.pt"
    preset.write_text("base: fast\n")
    weights.write_bytes(resolve_weights("small").read_bytes())
    command = ["render", str(clips["cuts"]), "-o", str(out), *CUTS, *COMMON, "--preset", str(preset),
               "--model", str(weights), "--workers", "2", "--chunk", "12", "--work-dir", str(work)]
    code = cli.main(command)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert assert_same_frames(out, clips["cuts-ref"]) == 36
    manifest = json.loads((work / "manifest.json").read_text())
    assert [(c["start"], c["stop"]) for c in manifest["chunks"]] == [(0, 12), (12, 24), (24, 36)]
    # a named work dir is kept: the same command again renders nothing and stitches the same file
    first = out.read_bytes()
    assert cli.main(command) == 0
    assert chunk_counts(capsys.readouterr().out) == (3, 0, 3)
    assert out.read_bytes() == first
    # what is behind the same paths changed: the chunks are stale, refused, nothing touched (issue 24 item 1)
    before = {p.name: p.read_bytes() for p in work.iterdir()}
    preset.write_text("base: fast\nthreshold: 0.6\n")  # fast has 0.7
    assert cli.main(command) == 2
    assert "holds chunks of a different render (changed: settings.threshold)" in capsys.readouterr().err
    preset.write_text("base: fast\n")
    torch.save(_other_weights(weights), weights)
    assert cli.main(command) == 2
    assert "holds chunks of a different render (changed: weights_sha256)" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in work.iterdir()} == before and out.read_bytes() == first


def _other_weights(path: Path) -> dict:
    """The payload of the weights file at ``path`` with one tensor nudged: a valid file of other bytes."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    name = next(iter(payload["state_dict"]))
    payload["state_dict"][name] = payload["state_dict"][name] + 1e-3
    return payload


def test_a_two_node_cluster_renders_the_same_frames(clips, tmp_path, capsys, monkeypatch):
    import ray._private.ray_constants as ray_constants
    from ray.cluster_utils import Cluster

    # Both nodes and the driver stay on loopback: Ray would otherwise rewrite the
    # 127.0.0.1 of the address to this machine's network address (and find no node there).
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    node = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        cluster.add_node(**node)
        cluster.wait_for_nodes()
        out = tmp_path / "out.mkv"
        code = cli.main(["render", str(clips["frac"]), "-o", str(out), *FRAC, *COMMON,
                         "--address", cluster.address, "--chunk", "12"])
        captured = capsys.readouterr()
    finally:
        cluster.shutdown()
    assert code == 0, captured.err
    assert assert_same_frames(out, clips["frac-ref"]) == 60
    assert "workers: 2 x 1 thread on 2 node(s)" in captured.out
    assert not (tmp_path / "out.mkv.chunks").exists()  # the default work dir, emptied, goes after success


def _render_proc(clips: dict[str, Path], out: Path, work: Path, chunk: int = 12) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vsugsp", "render", str(clips["long"]), "-o", str(out), *CUTS, *COMMON,
         "--workers", "2", "--chunk", str(chunk), "--work-dir", str(work)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _parent(pid: int) -> int:
    """The parent of ``pid`` (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat[stat.rindex(")") + 2:].split()[1])


def _chunk_workers(root: int) -> dict[int, str]:
    """pid -> title of the processes running a vsugsp chunk task ('ray::vsugsp-chunk-K') of the
    render ``root`` (its embedded cluster's workers descend from it); never another render's,
    such as a test run beside this one."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                title = Path(entry.path, "cmdline").read_bytes().split(b"\0")[0].decode()
            except OSError:
                continue
            if title.startswith("ray::vsugsp-chunk-"):
                pid = ancestor = int(entry.name)
                while ancestor > 1 and ancestor != root:
                    ancestor = _parent(ancestor)
                if ancestor == root:
                    found[pid] = title
    return found


def _encoding(pid: int) -> Path | None:
    """The chunk file ``pid`` has open: it is inside the chunk, rendering and encoding frames."""
    try:
        for fd in os.scandir(f"/proc/{pid}/fd"):
            target = Path(os.readlink(fd.path))
            if target.suffix == ".nut" and target.parent.name.startswith("vsugsp-chunk-"):
                return target
    except OSError:
        pass
    return None


def test_a_worker_killed_mid_chunk_is_retried(clips, tmp_path):
    out, work = tmp_path / "out.mkv", tmp_path / "work"
    proc = _render_proc(clips, out, work, chunk=64)  # long chunks: seconds of encoding to catch
    killed = None
    try:
        deadline = time.monotonic() + 240
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            for pid in _chunk_workers(proc.pid):
                chunk_file = _encoding(pid)
                if chunk_file is not None:
                    os.kill(pid, signal.SIGKILL)
                    killed = chunk_file
                    break
            time.sleep(0.01)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "no chunk task was caught encoding"
    assert proc.returncode == 0, stderr
    assert "retried after a worker was lost" in stdout, stdout
    assert chunk_counts(stdout) == (3, 3, 0)
    assert assert_same_frames(out, clips["long-ref"]) == 192
    import shutil

    shutil.rmtree(killed.parent, ignore_errors=True)  # the killed worker could not clean up


def _stop_after(proc: subprocess.Popen, work: Path, chunks: int, sig: int,
                meanwhile: Callable[[], None] = lambda: None) -> tuple[int, str]:
    """Send ``sig`` once the manifest records ``chunks`` chunks, after calling
    ``meanwhile()`` (the render still running); returns (exit code, stderr)."""
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if len(json.loads((work / "manifest.json").read_text())["chunks"]) >= chunks:
                meanwhile()
                proc.send_signal(sig)
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    _, stderr = proc.communicate(timeout=120)
    return proc.returncode, stderr


def _recorded(work: Path) -> int:
    return len(json.loads((work / "manifest.json").read_text())["chunks"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_interrupted_render_resumes_with_only_the_missing_chunks(clips, tmp_path, capsys, sig):
    out, work = tmp_path / "out.mkv", tmp_path / "work"
    second: list[tuple[int, float, str]] = []

    def render_again() -> None:  # the same render into the same work dir, while the first one runs
        began = time.monotonic()
        code = cli.main(["render", str(clips["long"]), "-o", str(out), *CUTS, *COMMON,
                         "--workers", "2", "--chunk", "12", "--work-dir", str(work)])
        second.append((code, time.monotonic() - began, capsys.readouterr().err))

    code, err = _stop_after(_render_proc(clips, out, work), work, 1, sig, render_again)
    assert code == 128 + sig and f"stopped by {sig.name}; the finished chunks are kept" in err, err
    # refused at once, one line (issue 24 item 6); the first render went on undisturbed
    assert second and second[0][0] == 2 and second[0][1] < 15, second
    assert "is in use by another render (pid" in second[0][2] and len(second[0][2].strip().splitlines()) == 1
    done = _recorded(work)
    assert 0 < done < 16 and not out.exists() and not list(tmp_path.glob(".out.*"))
    assert cli.main(["render", str(clips["long"]), "-o", str(out), *CUTS, *COMMON,
                     "--workers", "2", "--chunk", "12", "--work-dir", str(work)]) == 0
    assert chunk_counts(capsys.readouterr().out) == (16, 16 - done, done)
    assert assert_same_frames(out, clips["long-ref"]) == 192


def test_render_arguments_are_checked(clips, tmp_path, capsys):
    assert cli.main(["render", str(clips["frac"]), "-o", "-", *COMMON]) == 2
    assert "render writes a file" in capsys.readouterr().err
    assert cli.main(["render", str(clips["frac"]), "-o", str(tmp_path / "x.mov"), *COMMON]) == 2
    assert "mov container cannot hold ffv1" in capsys.readouterr().err
    assert cli.main(["render", str(clips["frac"]), "-o", str(tmp_path / "x.avi2"), *COMMON]) == 2
    assert "extension '.avi2'" in capsys.readouterr().err
    assert cli.main(["render", str(tmp_path / "none.mkv"), "-o", str(tmp_path / "x.mkv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        cli.main(["render", str(clips["frac"]), "-o", str(tmp_path / "x.mkv"), "--chunk", "0"])
    assert exit_.value.code == 2 and "--chunk: '0' must be at least 1" in capsys.readouterr().err


class _FullDisk:
    """``os`` as the render driver sees it on a full disk: every fsync fails with ENOSPC."""

    def __getattr__(self, name: str):
        return getattr(os, name)

    @staticmethod
    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_in_the_work_dir_names_the_path_and_loses_nothing(clips, tmp_path, capfd, monkeypatch):
    import vsugsp.render.run as run

    out, work = tmp_path / "out.mkv", tmp_path / "work"
    out.write_bytes(b"the previous output")
    monkeypatch.setattr(run, "os", _FullDisk())
    code = cli.main(["render", str(clips["frac"]), "-o", str(out), *FRAC, *COMMON, "--workers", "2",
                     "--chunk", "16", "--work-dir", str(work)])
    err = capfd.readouterr().err
    assert code == 2, err
    assert re.search(r"vsugsp: error: cannot write chunk '.*work/chunk-0000\d\d-.*\.nut': No space left on "
                     r"device; free some space there or name another --work-dir", err), err
    assert "died" not in err and "Traceback" not in err, err  # no Ray "worker died" noise
    assert out.read_bytes() == b"the previous output"
    assert not list(work.glob("*.tmp")) and not list(work.glob("*.nut"))
    assert not list(tmp_path.glob(".out.*"))
