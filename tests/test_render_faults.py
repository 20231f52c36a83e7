"""vsugsp render's faults without a Ray cluster (issue 24): a hostile manifest, a
busy work dir, a wrong --address, a full disk, weights that changed, and the
default work dir's cleanup that must never take a user's file.

Each case fails before Ray would start (or calls the driver's pieces directly),
so the file runs in seconds.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import vapoursynth as vs

from vsugsp import cli
from vsugsp.encode import write_video
from vsugsp.render.manifest import Manifest
from vsugsp.render.plan import Chunk
from vsclips import moving

COMMON = ["--preset", "fast", "--device", "cpu", "--codec", "ffv1"]
LOCK = ".vsugsp-render.lock"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "in.mkv"
    write_video(moving(vs.YUV420P8, 64, 48, length=6, fps=(24, 1)), path, codec="ffv1")
    return path


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vsugsp: error: "), err
    return lines[0]


# ---------------------------------------------------------------- item 10: a hostile manifest

@pytest.mark.parametrize("manifest, says", [
    ({"key": [1, 2], "chunks": []}, "'key' must be a mapping, got list"),
    ({"key": "abc", "chunks": []}, "'key' must be a mapping, got str"),
    ('{"key": {}, "chunks": [{"index": 1e400, "start": 0, "stop": 4, "file": "c.nut", "size": 1, "sha256": "0"}]}',
     "chunk record 0: index must be a whole number >= 0, got inf"),
    ({"key": {}, "chunks": [{"index": 0, "start": 0, "stop": 4, "file": "c.nut", "size": "1", "sha256": "0"}]},
     "chunk record 0: size must be a whole number >= 0, got '1'"),
    ({"key": {}, "chunks": "x" * 10_000}, "'chunks' must be a list, got str"),
    ("[" * 100_000, "nested too deeply"),
], ids=["key-list", "key-string", "index-1e400", "size-string", "chunks-string", "deep"])
def test_a_hostile_manifest_is_one_line_exit_2(source, tmp_path, capsys, manifest, says):
    work = tmp_path / "work"
    work.mkdir()
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (work / "manifest.json").write_text(text)
    code = cli.main(["render", str(source), "-o", str(tmp_path / "o.mkv"), *COMMON, "--work-dir", str(work)])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "unreadable manifest.json" in line and says in line, line
    assert len(line) < 400  # no echo of the file's values
    assert (work / "manifest.json").read_text() == text and not (tmp_path / "o.mkv").exists()


def test_a_manifest_record_names_only_its_own_chunk_file(tmp_path):
    m = Manifest.open(tmp_path, {"k": 1})
    c = Chunk(0, 0, 3)
    other = tmp_path / "elsewhere.nut"
    other.write_bytes(b"abc")
    m.add(c, other, __import__("vsugsp.checksum", fromlist=["x"]).sha256_bytes(b"abc"))
    # a record pointing at another file (an edited manifest) is not this chunk's
    assert not Manifest.open(tmp_path, {"k": 1}).is_done(c)


# ---------------------------------------------------------------- item 6: one render per work dir

def test_a_busy_work_dir_is_refused_at_once(source, tmp_path, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.txt").write_text("x")
    with open(work / LOCK, "w") as held:  # another render holds the work dir
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        began = time.monotonic()
        code = cli.main(["render", str(source), "-o", str(tmp_path / "o.mkv"), *COMMON,
                         "--work-dir", str(work)])
        took = time.monotonic() - began
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "is in use by another render (pid 4242)" in line and str(work) in line, line
    assert took < 10
    assert sorted(p.name for p in work.iterdir()) == [LOCK, "mine.txt"]  # nothing written, nothing taken


def test_the_work_dir_lock_is_free_again_after_a_render_and_leaves_no_folder(tmp_path):
    from vsugsp.render.workdir import locked

    work = tmp_path / "w"
    with locked(work):
        with pytest.raises(ValueError, match="in use by another render"):
            with locked(work):
                pass
    assert not work.exists()  # created by the lock, left empty: removed
    work.mkdir()
    (work / "keep.txt").write_text("x")
    with locked(work):
        pass
    assert [p.name for p in work.iterdir()] == ["keep.txt"]


# ---------------------------------------------------------------- item 2: the default work dir's cleanup

def test_cleanup_removes_only_the_files_a_render_made(tmp_path):
    from vsugsp.render.workdir import locked, remove_render_files

    work = tmp_path / "o.mkv.chunks"
    work.mkdir()
    (work / "precious.txt").write_text("x")
    names = ["chunk-000000-000000000-000000004.nut", "chunk-000001-000000004-000000008.nut"]
    with locked(work):
        for n in names:
            (work / n).write_bytes(b"c")
        (work / "manifest.json").write_text("{}")
        assert not remove_render_files(work, names)  # the folder stays: it holds a file not ours
    assert [p.name for p in work.iterdir()] == ["precious.txt"]
    (work / "precious.txt").unlink()
    with locked(work):
        assert remove_render_files(work, names)
    assert not work.exists()


# ---------------------------------------------------------------- item 4: a wrong --address

def _render_cli(source: Path, out: Path, *extra: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsugsp", "render", str(source), "-o", str(out), *COMMON, *extra],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("address, says", [
    ("127.0.0.1:1", "cannot connect (Connection refused); check that the cluster is running"),
    ("localhost:99999", "the port must be a number from 1 to 65535"),
])
def test_a_wrong_address_fails_in_seconds_with_one_line(source, tmp_path, address, says):
    began = time.monotonic()
    proc = _render_cli(source, tmp_path / "o.mkv", "--address", address)
    assert time.monotonic() - began < 30
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 2 and f"--address {address!r}" in line and says in line, proc.stderr
    assert not list(tmp_path.iterdir())  # no output, no work dir


def _server(reply: bytes | None) -> tuple[socket.socket, int]:
    """A TCP server on loopback that answers each connection with ``reply`` (None: stays silent)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    conns = []

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conns.append(conn)
            if reply is not None:
                conn.recv(64)
                conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


@pytest.mark.parametrize("reply, says", [
    (None, "no answer within 1 s"),
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", "the port is open but is not a Ray cluster's head"),
], ids=["silent", "http1"])
def test_an_open_port_that_is_not_ray_is_refused(source, tmp_path, capsys, monkeypatch, reply, says):
    import vsugsp.render.address as address

    monkeypatch.setattr(address, "CONNECT_TIMEOUT", 1.0)  # 15 s for users; the test need not wait that long
    srv, port = _server(reply)
    try:
        began = time.monotonic()
        code = cli.main(["render", str(source), "-o", str(tmp_path / "o.mkv"), *COMMON,
                         "--address", f"127.0.0.1:{port}"])
        assert time.monotonic() - began < 10
    finally:
        srv.close()
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and f"127.0.0.1:{port}" in line and says in line, line


def test_auto_means_the_cluster_ray_start_recorded_never_any_running_one(source, tmp_path, capsys, monkeypatch):
    import vsugsp.render.address as address

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert address.resolve_address("auto", {"RAY_ADDRESS": "10.0.0.1:6379"}, "") == "10.0.0.1:6379"
    assert address.resolve_address("auto", {}, "10.0.0.2:6379") == "10.0.0.2:6379"
    assert address.resolve_address(" 10.0.0.3:6379 ", {}, "") == "10.0.0.3:6379"
    # another process's embedded cluster runs here; nothing was started with `ray start`
    monkeypatch.setattr(address, "recorded_address", lambda: "")
    code = cli.main(["render", str(source), "-o", str(tmp_path / "o.mkv"), *COMMON, "--address", "auto"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "no cluster started with 'ray start'" in line, line


# ---------------------------------------------------------------- item 11: a full disk in the work dir

def test_a_chunk_that_cannot_be_written_names_the_path_and_leaves_no_temporary(tmp_path):
    from vsugsp.render.run import _write_chunk
    from vsugsp.render.tasks import ChunkResult

    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    m = Manifest.open(tmp_path, {"k": 1})
    c = Chunk(0, 0, 4)
    final = m.chunk_path(c, ".nut")
    tmp = final.with_name(final.name + ".tmp")
    tmp.symlink_to("/dev/full")  # every write there fails with ENOSPC, as on a full disk
    data = b"x" * 100_000
    result = ChunkResult(c, data, "0", "ffv1", 1.0, "node", 1)
    with pytest.raises(OSError) as exc:
        _write_chunk(m, result)
    assert str(final) in str(exc.value) and "No space left on device" in str(exc.value)
    assert "[Errno" not in str(exc.value)
    assert not tmp.exists() and not tmp.is_symlink() and not final.exists()
    assert m.records == {}


def test_a_manifest_that_cannot_be_written_names_the_path_and_leaves_no_temporary(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    m = Manifest.open(tmp_path, {"k": 1})
    (tmp_path / "manifest.json.tmp").symlink_to("/dev/full")
    with pytest.raises(OSError, match=r"cannot write .*manifest.json.*No space left on device"):
        m.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ---------------------------------------------------------------- item 1: weights that changed under a render

def test_a_worker_refuses_weights_other_than_the_renders(tmp_path, monkeypatch):
    import vsugsp.cli
    from vsugsp.checksum import sha256_file
    from vsugsp.model.io import resolve
    from vsugsp.preset import load_preset
    from vsugsp.render.tasks import ChunkJob, render_chunk

    src = moving(vs.YUV420P8, 64, 48, length=4, fps=(24, 1))
    monkeypatch.setattr(vsugsp.cli, "open_source", lambda path, frames: src)
    cfg = load_preset("fast", device="cpu")
    job = ChunkJob("in.mkv", None, {"factor": 2, "preset": cfg}, Chunk(0, 0, 2), "ffv1", 18, 1, "0" * 64)
    with pytest.raises(ValueError, match="is not the one this render was started with"):
        render_chunk(job)
    ok = ChunkJob("in.mkv", None, {"factor": 2, "preset": cfg}, Chunk(0, 0, 2), "ffv1", 18, 1,
                  sha256_file(resolve(cfg.model)))
    assert render_chunk(ok).chunk == Chunk(0, 0, 2)


# ---------------------------------------------------------------- item 7: the hang behind the flaky kill test

_LATE_PRIOR = """
import sys, time
import vapoursynth as vs
from vsclips import moving
import vsugsp.cli
from vsugsp.once import OnceCache
from vsugsp.render.plan import Chunk
from vsugsp.render.tasks import ChunkJob, render_chunk

original = OnceCache.prefetch

def late(self, key, compute, uses=1):
    def slow():
        time.sleep(0.3)  # a busy machine: the prior worker runs late, after claiming the pair
        return compute()
    return original(self, key, slow, uses)

OnceCache.prefetch = late
src = moving(vs.YUV420P8, 64, 48, length=4, fps=(24, 1))
vsugsp.cli.open_source = lambda path, frames=None: src
job = ChunkJob("in.mkv", None, {"factor": 2, "preset": "fast", "device": "cpu"}, Chunk(0, 0, 6), "ffv1", 18, 1)
print("frames", sum(render_chunk(job).work[k] for k in ("frames_interpolated", "frames_passed")))
"""


def test_a_one_thread_worker_does_not_hang_when_the_prior_worker_runs_late():
    """A one-thread chunk task (2 workers on 2 cores) whose prior worker is slow to ask
    VapourSynth for frame i + 2: with one VapourSynth thread, blocked in pair i + 1's
    callback waiting for that prior, the request was never served (issue 24 item 7)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                                         os.environ.get("PYTHONPATH", "")])}
    try:
        proc = subprocess.run([sys.executable, "-c", _LATE_PRIOR], capture_output=True, text=True,
                              timeout=90, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("the chunk task hung (VapourSynth's only thread waiting on the prior worker)")
    assert proc.returncode == 0 and "frames 6" in proc.stdout, proc.stderr
