"""The resumable record of a render: which chunks are finished, in which file,
with which checksum.

``manifest.json`` in the work dir holds the render's ``key`` (everything that
decides its frames: source file, settings, codec, chunking) and one record
per finished chunk. A chunk counts as done only when its file is there with
the recorded size and SHA-256, so a rerun after Ctrl-C, SIGTERM or a crash
renders exactly the chunks that are missing or damaged. The manifest is
rewritten atomically (temporary file + rename) after every chunk.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..checksum import sha256_bytes, sha256_file
from .plan import Chunk

__all__ = ["MANIFEST_NAME", "ChunkRecord", "Manifest", "sha256_file", "sha256_bytes"]

MANIFEST_NAME = "manifest.json"
_VERSION = 1


@dataclass(frozen=True)
class ChunkRecord:
    """A finished chunk: output frames ``start .. stop - 1`` in ``file`` (a name in
    the work dir) of ``size`` bytes with hex SHA-256 ``sha256``; ``work`` is the
    engine's tally over it, ``seconds`` the task's wall time."""

    index: int
    start: int
    stop: int
    file: str
    size: int
    sha256: str
    work: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class Manifest:
    """The work dir's record of finished chunks for one render ``key``."""

    def __init__(self, work_dir: Path, key: dict[str, Any], records: dict[int, ChunkRecord] | None = None):
        self.work_dir = Path(work_dir)
        self.key = key
        self.records: dict[int, ChunkRecord] = dict(records or {})

    @property
    def path(self) -> Path:
        """The manifest file."""
        return self.work_dir / MANIFEST_NAME

    @classmethod
    def open(cls, work_dir: Path, key: dict[str, Any]) -> "Manifest":
        """The manifest in ``work_dir`` for ``key``; a new one when there is none.

        Raises ``ValueError`` naming --work-dir when the folder holds another
        render's chunks (a different key) or an unreadable manifest.
        """
        work_dir = Path(work_dir)
        path = work_dir / MANIFEST_NAME
        if not path.exists():
            return cls(work_dir, key)
        try:
            data = json.loads(path.read_text())
            records = {int(r["index"]): ChunkRecord(**r) for r in data["chunks"]}
            old_key = data["key"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"vsugsp: --work-dir {str(work_dir)!r} has an unreadable {MANIFEST_NAME} ({exc}); "
                "delete the folder or name another one"
            ) from None
        if old_key != key:
            changed = sorted(k for k in set(old_key) | set(key) if old_key.get(k) != key.get(k))
            raise ValueError(
                f"vsugsp: --work-dir {str(work_dir)!r} holds chunks of a different render "
                f"(changed: {', '.join(changed)}); delete the folder or name another one"
            )
        return cls(work_dir, key, records)

    def chunk_path(self, chunk: Chunk, suffix: str) -> Path:
        """Where ``chunk``'s file lives in the work dir."""
        return self.work_dir / f"{chunk.name}{suffix}"

    def is_done(self, chunk: Chunk) -> bool:
        """Whether ``chunk`` is recorded and its file is intact (size and SHA-256)."""
        rec = self.records.get(chunk.index)
        if rec is None or (rec.start, rec.stop) != (chunk.start, chunk.stop):
            return False
        path = self.work_dir / rec.file
        try:
            if path.stat().st_size != rec.size:
                return False
            return sha256_file(path) == rec.sha256
        except OSError:
            return False

    def add(
        self, chunk: Chunk, path: Path, sha256: str, *, work: dict[str, int] | None = None, seconds: float = 0.0
    ) -> ChunkRecord:
        """Record ``chunk`` as finished in ``path`` (inside the work dir) and save.

        ``sha256`` is the checksum the worker computed; a file that does not
        match it (damaged on the way) raises ``OSError`` and is not recorded.
        ``work``/``seconds``: the chunk's tally and task time (for the summary).
        """
        actual = sha256_file(path)
        if actual != sha256:
            raise OSError(f"vsugsp: chunk file {str(path)!r} does not match the worker's checksum")
        rec = ChunkRecord(chunk.index, chunk.start, chunk.stop, path.name, path.stat().st_size, sha256,
                          dict(work or {}), float(seconds))
        self.records[chunk.index] = rec
        self.save()
        return rec

    def save(self) -> None:
        """Write the manifest atomically (temporary file, fsync, rename)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        data = {
            "version": _VERSION,
            "key": self.key,
            "chunks": [asdict(r) for _, r in sorted(self.records.items())],
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
