"""A run that dies without cleaning up (SIGKILL, a crash in native code) leaves its
``.OUT.XXXXXXXX.partial.EXT``; the next run for the same OUT removes it, and
nothing else (issue 24 item 5)."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from test_cli import tiny_model, write_clip  # noqa: F401  (tiny_model is a fixture)
from vsugsp import cli
from vsugsp.output import atomic_output, check_output, remove_stale, scratch_file

pytest.importorskip("av")


def _crash_inside(out: Path, tag: str = "partial") -> Path:
    """Run a process that dies by SIGKILL inside atomic_output (and scratch_file) for ``out``; its leftover."""
    code = textwrap.dedent(f"""
        import os, signal
        from vsugsp.output import atomic_output, scratch_file
        with atomic_output({str(out)!r}) as final, scratch_file({str(out)!r}, "video") as video:
            final.write_bytes(b"half a video"); video.write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    left = sorted(p for p in out.parent.iterdir() if p.name.startswith(f".{out.stem}."))
    assert sorted(p.name.split(".")[-2] for p in left) == ["partial", "video"], left
    return next(p for p in left if p.name.endswith(f".{tag}{out.suffix}"))


def test_a_killed_runs_partial_file_is_removed_by_the_next_run(tmp_path, tiny_model, capsys):
    out = tmp_path / "out.mkv"
    partial = _crash_inside(out)
    assert partial.read_bytes() == b"half a video"
    src = write_clip(tmp_path / "in.mp4", frames=3)
    assert cli.main(["interpolate", str(src), "-o", str(out), "--device", "cpu", "--model", str(tiny_model),
                     "--set", "flow_prior=none"]) == 0, capsys.readouterr().err
    assert out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mkv"]


def test_only_that_outputs_temporary_files_are_removed(tmp_path):
    out = tmp_path / "out.mkv"
    stale = [tmp_path / n for n in (".out.k3_x9a0b.partial.mkv", ".out.abcdefgh.video.mkv")]
    others = [tmp_path / n for n in (
        ".out.abcdefgh.partial.mp4",    # another OUT (out.mp4)
        ".out.b.abcdefgh.partial.mkv",  # another OUT (out.b.mkv)
        ".other.abcdefgh.partial.mkv",  # another OUT
        "out.abcdefgh.partial.mkv",     # not hidden: not ours
        ".out.abc.partial.mkv",         # not mkstemp's 8 characters
        ".out.ABCDEFGH.partial.mkv",    # nor its alphabet
        ".out.abcdefgh.partial.mkv.bak",
        ".out.abcdefgh.notes.mkv",
        "precious.txt",
    )]
    for p in stale + others:
        p.write_bytes(b"x")
    (tmp_path / ".out.abcdefgh.check.mkv").mkdir()  # a folder by that name is left alone
    check_output(out)
    assert not any(p.exists() for p in stale)
    assert all(p.read_bytes() == b"x" for p in others)
    assert (tmp_path / ".out.abcdefgh.check.mkv").is_dir()


def test_a_running_commands_temporary_files_are_kept(tmp_path):
    """Two runs for one OUT: the second's start does not delete the first's files (it holds an flock on them)."""
    out = tmp_path / "out.mkv"
    with atomic_output(out) as final, scratch_file(out, "video") as video:
        final.write_bytes(b"in progress")
        assert remove_stale(out) == []
        check_output(out)
        assert final.read_bytes() == b"in progress" and video.exists()
    assert out.read_bytes() == b"in progress"


def test_a_file_locked_by_another_process_is_kept(tmp_path):
    out = tmp_path / "out.mkv"
    busy = tmp_path / ".out.abcdefgh.partial.mkv"
    busy.write_bytes(b"x")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys\n"
         f"fd = os.open({str(busy)!r}, os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX)\n"
         "print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert remove_stale(out) == [] and busy.exists()
    finally:
        holder.communicate("")
    assert remove_stale(out) == [busy] and not busy.exists()


def test_a_scratch_tag_the_cleaner_would_not_find_is_refused(tmp_path):
    with pytest.raises(ValueError, match="tag 'tmp' is not one of"):
        with scratch_file(tmp_path / "o.mkv", "tmp"):
            pass


def test_held_locks_are_released_when_the_block_ends(tmp_path):
    out = tmp_path / "o.mkv"
    with scratch_file(out, "video") as video:
        fd = os.open(video, os.O_RDONLY)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
    assert not video.exists()
