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

import contextlib
import json
import math
import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..checksum import sha256_bytes, sha256_file
from ..quote import clip, short
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
            old_key, records = _parse(json.loads(path.read_text()))
        except (OSError, ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else clip(str(exc), _QUOTE)
            raise ValueError(
                f"vsugsp: --work-dir {str(work_dir)!r} has an unreadable {MANIFEST_NAME} ({reason}); "
                "delete the folder or name another one"
            ) from None
        if old_key != key:
            raise ValueError(
                f"vsugsp: --work-dir {str(work_dir)!r} holds chunks of a different render "
                f"(changed: {', '.join(_changed(old_key, key))}); delete the folder or name another one"
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
        if rec.file != self.chunk_path(chunk, Path(rec.file).suffix).name:
            return False  # only this chunk's own file in the work dir, never another path
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
        try:
            with open(tmp, "w") as f:
                json.dump(data, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise OSError(f"vsugsp: cannot write {str(self.path)!r}: {exc.strerror or exc}") from None


#: Most characters of a manifest's value quoted in an error message.
_QUOTE = 60


def _changed(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Names of the key entries that differ (``settings.mode`` inside a mapping)."""
    out = []
    for k in sorted(set(old) | set(new), key=str):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{k}.{sub}" for sub in _changed(a, b)]
        else:
            out.append(str(k))
    return out


def _whole(where: str, value: Any) -> int:
    """``value`` as a count ≥ 0 (a JSON integer, not a float or a bool), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where} must be a whole number >= 0, got {short(value, _QUOTE)}")
    return value


def _record(n: int, raw: Any) -> ChunkRecord:
    """Chunk record ``n`` of a manifest, checked field by field."""
    where = f"chunk record {n}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a mapping, got {type(raw).__name__}")
    missing = [f.name for f in fields(ChunkRecord) if f.default is MISSING and f.default_factory is MISSING
               and f.name not in raw]
    unknown = [str(k) for k in raw if k not in {f.name for f in fields(ChunkRecord)}]
    if missing or unknown:
        raise ValueError(f"{where}: " + "; ".join(
            ([f"missing {', '.join(missing)}"] if missing else []) + ([clip(f"unknown {', '.join(unknown)}")] if unknown else [])))
    ints = {k: _whole(f"{where}: {k}", raw[k]) for k in ("index", "start", "stop", "size")}
    for k in ("file", "sha256"):
        if not isinstance(raw[k], str):
            raise ValueError(f"{where}: {k} must be a string, got {type(raw[k]).__name__}")
    work = raw.get("work", {})
    if not isinstance(work, dict):
        raise ValueError(f"{where}: work must be a mapping, got {type(work).__name__}")
    work = {str(k): _whole(f"{where}: work.{clip(str(k), _QUOTE)}", v) for k, v in work.items()}
    seconds = raw.get("seconds", 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise ValueError(f"{where}: seconds must be a number, got {short(seconds, _QUOTE)}")
    return ChunkRecord(ints["index"], ints["start"], ints["stop"], raw["file"], ints["size"], raw["sha256"],
                       work, float(seconds))


def _parse(data: Any) -> tuple[dict[str, Any], dict[int, ChunkRecord]]:
    """(key, records by chunk index) of a manifest's JSON; ValueError saying what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"must hold a mapping, got {type(data).__name__}")
    if not isinstance(data.get("key"), dict):
        raise ValueError(f"'key' must be a mapping, got {type(data.get('key')).__name__}")
    if not isinstance(data.get("chunks"), list):
        raise ValueError(f"'chunks' must be a list, got {type(data.get('chunks')).__name__}")
    records = [_record(n, raw) for n, raw in enumerate(data["chunks"])]
    return data["key"], {r.index: r for r in records}
