"""Test helpers for hostile input: YAML alias bombs and a child Python bounded in memory and time."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A YAML flow value of about ``width ** levels`` leaves in a few hundred bytes: a list
    whose item i is ``&li [*l(i-1), ...]`` (each level repeats the one before it)."""
    items = ["&l0 [" + ", ".join(["lol"] * width) + "]"]
    items += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


def run_bounded(code: str, *, mem_gib: float = 1.0, timeout: float = 90.0, cwd: Path | None = None,
                args: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -c code`` (or ``python args...``) with its address space capped at
    ``mem_gib`` GiB and a wall-clock ``timeout``: a regression that balloons fails the
    test with MemoryError (or the timeout) instead of taking the machine down."""
    limit = int(mem_gib * 2**30)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("VSUGSP_DEBUG", None)
    argv = [sys.executable, *(args if args is not None else ["-c", code])]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, preexec_fn=cap,
                          cwd=cwd or REPO, env=env)
