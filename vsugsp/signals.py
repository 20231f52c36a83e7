"""Stopping cleanly on Ctrl-C and ``kill``: SIGINT and SIGTERM become an exception.

Python's default for SIGTERM ends the process at once, so nothing can remove a
half-written file. Inside :func:`stop_on_signals` both signals raise
:class:`Interrupted` in the main thread instead: ``finally`` blocks and context
managers (:func:`vsugsp.output.atomic_output`) run, and the caller exits with
:attr:`Interrupted.exit_code` (128 + the signal number: 130, 143), as a shell
expects of a process stopped by that signal.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Interrupted", "stop_on_signals", "STOP_SIGNALS"]

#: The signals that stop a command cleanly.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread when a stop signal arrives (a KeyboardInterrupt, so Ctrl-C code paths see it)."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(signal.Signals(self.signum).name)

    @property
    def name(self) -> str:
        """The signal's name, e.g. "SIGTERM"."""
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """128 + the signal number (SIGINT 130, SIGTERM 143)."""
        return 128 + self.signum


@contextmanager
def stop_on_signals(signums: tuple[int, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Within the block, ``signums`` raise :class:`Interrupted`; the previous handlers come back after.

    Only the main thread can install handlers; elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
