"""Where prepared training data (photo pool, footage) is cached."""
from __future__ import annotations

import os
from pathlib import Path


def default_cache(name: str) -> Path:
    """``.cache/<name>`` in a source checkout, else ``$XDG_CACHE_HOME/vsugsp/<name>``."""
    repo = Path(__file__).resolve().parents[2]
    if (repo / "setup.cfg").is_file() and (repo / "vsugsp").is_dir():
        return repo / ".cache" / name
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vsugsp" / name
