"""Keep freed memory in the process instead of handing it back to the kernel (glibc only).

Every network pass allocates and frees tensors of tens of MB (a 1280×720 level
is 70 MB in fp32).  glibc serves blocks above 32 MB (and, by its adaptive
threshold, many smaller ones) with a fresh ``mmap`` and unmaps them on free, so
each pass page-faults its whole working set again: measured on the 2-core
EPYC, about 100 000 minor faults and 0.2–0.3 s of kernel time per 720p
``balanced`` pass, 15–30 % of its wall time, and most of its run-to-run spread.
With ``mmap`` off for the heap and no trimming, freed blocks are reused as they
are; the resident size stays at the peak of what the process has needed (which
a video filter reaches on its first frames anyway), plus some fragmentation:
eight untrained ``small`` passes at 1280×720 peaked at 1118 MB with it and
1025 MB without, and ran 0.6 s instead of 0.9–1.3 s per pass.

It is a process-wide setting, so it is made once, when the first
:class:`~vsugsp.engine.Engine` (or benchmark) starts on a CPU, and
``VSUGSP_RETAIN_MEMORY=0`` leaves the allocator alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading

__all__ = ["retain_freed_memory"]

log = logging.getLogger(__name__)

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

_done: bool | None = None
_lock = threading.Lock()


def retain_freed_memory() -> bool:
    """Make glibc's malloc keep and reuse freed blocks; True when in effect.

    Idempotent and thread-safe.  False (and nothing changed) on a C library
    other than glibc, or with the environment variable ``VSUGSP_RETAIN_MEMORY=0``.
    """
    global _done
    with _lock:
        if _done is not None:
            return _done
        _done = False
        if os.environ.get("VSUGSP_RETAIN_MEMORY", "").strip() == "0" or not sys.platform.startswith("linux"):
            return False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return False
        if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: no such tunables
            return False
        mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        mallopt.restype = ctypes.c_int
        # largest int: never trim the heap top; no mmap: large blocks come from the heap too
        ok = mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1 and mallopt(_M_MMAP_MAX, 0) == 1
        if not ok:
            log.debug("vsugsp: mallopt refused; freed memory goes back to the kernel as usual")
        _done = ok
        return ok
