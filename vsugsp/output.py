"""Where an encoded video goes: the output path checked up front, written to a
temporary file next to it and renamed into place only when complete.

A command that stops half way (an error, Ctrl-C, SIGTERM) leaves OUT as it was
(absent, or the previous file), never a truncated video. One that dies without
cleaning up (SIGKILL, a crash in native code) leaves its temporary file, which
the next run for the same OUT removes (:func:`remove_stale`): a running
command holds an flock on its temporary files, so only dead runs' are removed.
"""
from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CONTAINERS", "check_output", "atomic_output", "scratch_file", "remove_stale", "TEMP_TAGS"]

#: Output file extensions and the FFmpeg muxer each one means.
CONTAINERS: dict[str, str] = {
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".nut": "nut",
}


#: The tags of the temporary files made next to OUT: ``.STEM.XXXXXXXX.TAG.EXT``.
TEMP_TAGS = ("partial", "video", "scratch", "check")


def _allowed() -> str:
    return ", ".join(CONTAINERS)


def container_of(path: str | Path) -> str:
    """The FFmpeg muxer for ``path``'s extension; ValueError naming the path and the allowed extensions."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in CONTAINERS:
        what = f"extension {ext!r}" if ext else "no extension"
        raise ValueError(f"vsugsp: output {str(p)!r} has {what}; the container is named by one of: {_allowed()} "
                         "(or -o - for y4m on stdout)")
    return CONTAINERS[ext]


def check_output(path: str | Path, codec: str | None = None) -> Path:
    """Check before any work that a video can be written to ``path``; returns it as a Path.

    The extension must be one of :data:`CONTAINERS`; with ``codec`` (an FFmpeg
    encoder name) the container must be able to hold it; ``path`` must not be a
    folder, and its folder must exist (or be creatable) and be writable.
    Raises ``ValueError("vsugsp: ...")`` naming the path. The temporary files
    that a crashed earlier run for ``path`` left next to it are removed
    (:func:`remove_stale`).
    """
    p = Path(path)
    muxer = container_of(p)
    if p.is_dir():
        raise ValueError(f"vsugsp: output {str(p)!r} is a folder; name a file in it")
    remove_stale(p)
    folder = _existing_parent(p)
    if not folder.is_dir():
        raise ValueError(f"vsugsp: output {str(p)!r}: {str(folder)!r} is not a folder")
    if folder == p.absolute().parent:  # creating a file there is the only sure test (root, /proc, read-only mounts)
        _create_temp(p, "check")[0].unlink(missing_ok=True)  # a concurrent run's remove_stale may be first
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"vsugsp: cannot write output {str(p)!r}: the folder {str(folder)!r} is not writable")
    if codec is not None:
        _check_codec(p, muxer, codec)
    return p


def _existing_parent(p: Path) -> Path:
    folder = p.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _check_codec(p: Path, muxer: str, codec: str) -> None:
    """Write a header with a ``codec`` video stream to memory: refused when the container cannot hold it."""
    import av

    try:
        with av.open(io.BytesIO(), "w", format=muxer) as trial:
            stream = trial.add_stream(codec, rate=25)
            stream.width, stream.height = 64, 64
            if codec == "mpeg4" or codec == "libx264":
                stream.pix_fmt = "yuv420p"
            trial.start_encoding()
    except (av.FFmpegError, ValueError) as exc:
        raise ValueError(f"vsugsp: output {str(p)!r}: the {muxer} container cannot hold {codec} video ({exc})") from None


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary file next to ``path`` (same extension) to write; renamed to ``path`` when the block succeeds.

    The file is created on entry, so an unwritable place fails before any work
    (``ValueError`` naming the path). On any exception, KeyboardInterrupt and
    :class:`vsugsp.signals.Interrupted` included, it is removed and ``path`` is
    left untouched. The finished file gets the usual permissions (0666 less the umask).
    """
    p = Path(path)
    tmp, fd = _create_temp(p, "partial", hold=True)
    try:
        yield tmp
        _set_default_mode(tmp)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


@contextmanager
def scratch_file(path: str | Path, tag: str = "scratch") -> Iterator[Path]:
    """A temporary file next to ``path`` (same extension) that is always removed when the block ends.

    ``tag`` is one of :data:`TEMP_TAGS`, so that a crashed run's file is found by :func:`remove_stale`.
    """
    if tag not in TEMP_TAGS:
        raise ValueError(f"vsugsp: scratch file tag {tag!r} is not one of {', '.join(TEMP_TAGS)}")
    tmp, fd = _create_temp(Path(path), tag, hold=True)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)
        os.close(fd)


def stale_pattern(path: str | Path) -> re.Pattern[str]:
    """The names of the temporary files made next to ``path``: ``.STEM.XXXXXXXX.TAG.EXT``, TAG in :data:`TEMP_TAGS`.

    XXXXXXXX is :func:`tempfile.mkstemp`'s 8 characters (a-z, 0-9, _), which
    hold no dot, so the files of OUT ``a.mkv`` never match those of ``a.b.mkv``.
    """
    p = Path(path)
    tags = "|".join(TEMP_TAGS)
    return re.compile(rf"\.{re.escape(p.stem)}\.[a-z0-9_]{{8}}\.(?:{tags}){re.escape(p.suffix)}")


def remove_stale(path: str | Path) -> list[Path]:
    """Remove the temporary files next to ``path`` that a run which died (SIGKILL, a crash) left; returns them.

    Only names matching :func:`stale_pattern` are considered, and of those only
    the ones no process holds an flock on: a run in progress locks its
    temporary files until it ends (the kernel drops the lock when a process
    dies), so a concurrent run for the same OUT keeps its files. Nothing is
    removed where flock is not available (not POSIX).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return []
    p = Path(path)
    pattern = stale_pattern(p)
    try:
        names = [n for n in os.listdir(p.parent if str(p.parent) else ".") if pattern.fullmatch(n)]
    except OSError:  # no folder yet, or an unreadable one: nothing of ours is in it
        return []
    removed = []
    for name in names:
        candidate = p.parent / name
        try:
            fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue  # gone meanwhile, a link, or not ours to read
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a running command's
        try:
            candidate.unlink()
            removed.append(candidate)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def _create_temp(p: Path, tag: str, *, hold: bool = False) -> tuple[Path, int]:
    """Create ``.STEM.XXXXXXXX.TAG.EXT`` next to ``p``; returns (path, fd or -1).

    hold: keep the file open and flock-ed (the fd is returned; the caller
    closes it), so that :func:`remove_stale` of a concurrent run leaves it.
    """
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f".{tag}{p.suffix}", dir=p.parent)
    except OSError as exc:
        raise ValueError(f"vsugsp: cannot write output {str(p)!r}: {exc.strerror or exc}") from None
    if not hold:
        os.close(fd)
        return Path(name), -1
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # pragma: no cover - Windows: no locks, and remove_stale removes nothing
        pass
    except OSError:  # a filesystem without flock: the file is still ours to write
        pass
    return Path(name), fd


def _set_default_mode(tmp: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
