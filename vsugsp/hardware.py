"""What the host CPU can do natively (no torch, no GPU needed to ask)."""
from __future__ import annotations

import functools
import os
from pathlib import Path

#: CPU flags (``/proc/cpuinfo``) of native bfloat16 matrix/vector arithmetic.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags named in the text of ``/proc/cpuinfo``."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


@functools.lru_cache(maxsize=1)
def cpu_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AVX512-BF16 or AMX).

    ``VSUGSP_CPU_BF16=0`` / ``=1`` overrides the detection (e.g. to compare
    precisions, or on systems without ``/proc/cpuinfo``).
    """
    env = os.environ.get("VSUGSP_CPU_BF16", "").strip()
    if env in ("0", "1"):
        return env == "1"
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return bool(cpu_flags(text) & set(BF16_FLAGS))
