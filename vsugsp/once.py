"""A bounded map whose values are computed once, by the first thread that asks.

The engine keeps each source pair's DIS flow prior here, so the prior is
computed outside the network's lock (a pair's prior runs while the network
works on another pair) and two threads needing the same pair share one
computation.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["OnceCache"]


class _Entry:
    __slots__ = ("done", "value", "error", "uses")

    def __init__(self, uses: int) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.uses = uses  # reads left before the entry is dropped


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

    def get(self, key: Hashable, compute: Callable[[], Any], uses: int = 1) -> Any:
        """The value of ``key``: computed by ``compute()`` unless present or being computed.

        uses: how many reads (this one included) the value serves before it is
        dropped; set by the thread that computes it.
        """
        with self._lock:
            entry = self._entries.get(key)
            owner = entry is None
            if owner:
                entry = self._entries[key] = _Entry(max(1, int(uses)))
                self._trim()
            self._entries.move_to_end(key)
        if owner:
            try:
                entry.value = compute()
            except BaseException as exc:
                entry.error = exc
                with self._lock:
                    if self._entries.get(key) is entry:
                        del self._entries[key]
            finally:
                entry.done.set()
        else:
            entry.done.wait()
        if entry.error is not None:
            raise entry.error
        with self._lock:
            entry.uses -= 1
            if entry.uses <= 0 and self._entries.get(key) is entry:
                del self._entries[key]
        return entry.value

    def _trim(self) -> None:
        while len(self._entries) > self.size:
            for k, e in self._entries.items():
                if e.done.is_set():
                    del self._entries[k]
                    break
            else:
                return
