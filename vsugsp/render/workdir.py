"""The work dir of a render: one render at a time (an advisory lock), and removing only the files a render made.

A render holds ``.vsugsp-render.lock`` in its work dir (``flock``, released by
the kernel when the process dies, even by SIGKILL), so a second render into
the same folder is refused at once instead of racing the first one for the
manifest and chunk files. When the default work dir is removed after
success, only the files a render writes there go (manifest, chunk files,
their temporaries, the lock); the folder itself goes only when nothing else
is left in it, so a user's file in a folder of that name is never lost.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .manifest import MANIFEST_NAME

__all__ = ["LOCK_NAME", "TMP_SUFFIX", "locked", "remove_stale_temporaries", "remove_render_files"]

LOCK_NAME = ".vsugsp-render.lock"
#: Suffix of the files written before their rename into place (chunks, manifest).
TMP_SUFFIX = ".tmp"


def _holder(path: Path) -> str:
    """The pid recorded in a lock file, for the message ('' when unreadable)."""
    try:
        pid = path.read_text()[:20].strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def _acquire(work_dir: Path) -> int:
    """Open and lock ``work_dir``'s lock file; the locked descriptor.

    Raises ``ValueError`` naming the folder when another process holds it.
    """
    if work_dir.exists() and not work_dir.is_dir():
        raise ValueError(f"vsugsp: work dir {str(work_dir)!r} is a file, not a folder; name another --work-dir")
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"vsugsp: cannot create the work dir {str(work_dir)!r}: {exc.strerror or exc}") from None
    path = work_dir / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise OSError(f"vsugsp: cannot write in the work dir {str(work_dir)!r}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ValueError(
                f"vsugsp: work dir {str(work_dir)!r} is in use by another render{_holder(path)}; "
                "wait for it to finish, or name another --work-dir"
            ) from None
        # The holder before us unlinks the file as it lets go: a lock on an unlinked
        # file locks nothing, so lock again until the file at the path is ours.
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:  # who holds it, for the message another render shows
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError:
        pass  # a full disk: the lock holds all the same
    return fd


@contextlib.contextmanager
def locked(work_dir: Path) -> Iterator[Path]:
    """Hold ``work_dir``'s lock (creating the folder) for the ``with`` body; yields the folder.

    A folder created here and left empty is removed on the way out.

    Raises ``ValueError("vsugsp: work dir ... is in use by another render")``
    at once when another render holds it.
    """
    work_dir = Path(work_dir)
    created = not work_dir.exists()
    fd = _acquire(work_dir)
    try:
        yield work_dir
    finally:
        with contextlib.suppress(OSError):
            os.unlink(work_dir / LOCK_NAME)  # unlinked while still held: see _acquire
        if created:  # a render that wrote nothing there leaves no empty folder behind
            with contextlib.suppress(OSError):
                work_dir.rmdir()
        os.close(fd)


def remove_stale_temporaries(work_dir: Path, names: Iterable[str]) -> None:
    """Delete the temporaries of ``names`` (files a render writes in ``work_dir``) that an
    earlier render killed mid-write left behind."""
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (Path(work_dir) / f"{name}{TMP_SUFFIX}").unlink()


def remove_render_files(work_dir: Path, names: Iterable[str]) -> bool:
    """Delete ``names`` (the chunk files of the render), their temporaries, the
    manifest and the lock file from ``work_dir``; then the folder when it is left empty.

    Called inside :func:`locked` (the lock file is unlinked while still held).
    Never touches another file. Returns whether the folder is gone.
    """
    work_dir = Path(work_dir)
    for name in [*names, MANIFEST_NAME]:
        for candidate in (name, f"{name}{TMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                (work_dir / candidate).unlink()
    with contextlib.suppress(FileNotFoundError):
        (work_dir / LOCK_NAME).unlink()
    try:
        work_dir.rmdir()  # only an empty folder: anything else in it is someone else's
    except OSError:
        return False
    return True
