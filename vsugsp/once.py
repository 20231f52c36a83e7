"""A bounded map whose values are computed once, by the first thread that asks.

The engine keeps two things here: each source pair's DIS flow prior, so the
prior is computed outside the network's lock (the next pair's prior is
computed ahead, :meth:`OnceCache.prefetch`, while the network works on this
pair), and each chunk of a pair's interpolated frames,
so the threads asking for frames of one chunk share one network pass.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

__all__ = ["OnceCache"]


class _Entry:
    __slots__ = ("done", "value", "error", "uses")

    def __init__(self, uses: int) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        # reads left before the entry is dropped: a count, or the readers still to come
        self.uses: int | set = uses


class OnceCache:
    """Values by key, each computed once; at most ``size`` finished values are kept (≥ 1).

    An entry is dropped after its ``uses`` reads or, oldest first, when more
    than ``size`` finished ones are held (a running computation is never
    dropped: others wait on it). A failed computation is not kept; every
    thread waiting on it gets its error.
    """

    def __init__(self, size: int) -> None:
        if int(size) < 1:
            raise ValueError(f"vsugsp: OnceCache size must be at least 1, got {size!r}")
        self.size = int(size)
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: Hashable, compute: Callable[[], Any], uses: "int | Iterable[Hashable]" = 1,
            reader: Hashable = None) -> Any:
        """The value of ``key``: computed by ``compute()`` unless present or being computed.

        uses: how many reads (this one included) the value serves before it is
        dropped, or the readers it serves (dropped once each has read it; a
        reader reading twice counts once); set by the thread that computes it.
        reader: who reads, when ``uses`` names readers.
        """
        entry, owner = self._claim(key, uses)
        if owner:
            self._compute(key, entry, compute)
        else:
            entry.done.wait()
        if entry.error is not None:
            raise entry.error
        with self._lock:
            if isinstance(entry.uses, set):
                entry.uses.discard(reader)
                spent = not entry.uses
            else:
                entry.uses -= 1
                spent = entry.uses <= 0
            if spent and self._entries.get(key) is entry:
                del self._entries[key]
        return entry.value

    def peek(self, key: Hashable) -> Any:
        """``key``'s value if it is computed (None when absent, still running, or failed); never waits.

        Reads nothing: for a caller that must not wait on another thread's work
        (it computes the value itself instead).
        """
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or not entry.done.is_set() or entry.error is not None:
            return None
        return entry.value

    def prefetch(self, key: Hashable, compute: Callable[[], Any], uses: "int | Iterable[Hashable]" = 1) -> None:
        """Compute ``key``'s value now, in this thread, unless present or being computed; reads nothing.

        For work ahead of its readers (a worker thread computing the next pair's
        prior): the ``uses`` reads are all left to them. An error is kept only
        for the readers already waiting; a later reader computes again.
        """
        entry, owner = self._claim(key, uses)
        if owner:
            self._compute(key, entry, compute)

    def _claim(self, key: Hashable, uses: "int | Iterable[Hashable]") -> tuple[_Entry, bool]:
        """The entry of ``key`` and whether this thread made it (and so must compute it)."""
        with self._lock:
            entry = self._entries.get(key)
            owner = entry is None
            if owner:
                entry = self._entries[key] = _Entry(max(1, int(uses)) if isinstance(uses, int) else set(uses))
                self._trim()
            self._entries.move_to_end(key)
        return entry, owner

    def _compute(self, key: Hashable, entry: _Entry, compute: Callable[[], Any]) -> None:
        try:
            entry.value = compute()
        except BaseException as exc:
            entry.error = exc
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
        finally:
            entry.done.set()

    def _trim(self) -> None:
        while len(self._entries) > self.size:
            for k, e in self._entries.items():
                if e.done.is_set():
                    del self._entries[k]
                    break
            else:
                return
