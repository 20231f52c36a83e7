"""Where an encoded video goes: the output path checked up front, written to a
temporary file next to it and renamed into place only when complete.

A command that stops half way (an error, Ctrl-C, SIGTERM) leaves OUT as it was
(absent, or the previous file), never a truncated video.
"""
from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CONTAINERS", "check_output", "atomic_output", "scratch_file"]

#: Output file extensions and the FFmpeg muxer each one means.
CONTAINERS: dict[str, str] = {
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".nut": "nut",
}


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
    Raises ``ValueError("vsugsp: ...")`` naming the path.
    """
    p = Path(path)
    muxer = container_of(p)
    if p.is_dir():
        raise ValueError(f"vsugsp: output {str(p)!r} is a folder; name a file in it")
    folder = _existing_parent(p)
    if not folder.is_dir():
        raise ValueError(f"vsugsp: output {str(p)!r}: {str(folder)!r} is not a folder")
    if folder == p.absolute().parent:  # creating a file there is the only sure test (root, /proc, read-only mounts)
        _create_temp(p, "check").unlink()
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
    tmp = _create_temp(p, "partial")
    try:
        yield tmp
        _set_default_mode(tmp)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def scratch_file(path: str | Path, tag: str = "scratch") -> Iterator[Path]:
    """A temporary file next to ``path`` (same extension) that is always removed when the block ends."""
    tmp = _create_temp(Path(path), tag)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _create_temp(p: Path, tag: str) -> Path:
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f".{tag}{p.suffix}", dir=p.parent)
    except OSError as exc:
        raise ValueError(f"vsugsp: cannot write output {str(p)!r}: {exc.strerror or exc}") from None
    os.close(fd)
    return Path(name)


def _set_default_mode(tmp: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
