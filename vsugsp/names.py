"""Bundled names versus file paths: the one rule for every argument that takes either.

A preset, a training recipe and a weights file may each be given as a bundled name
(``fast``, ``small-cpu``, ``small``) or as a path.  A bare word is always the bundled
name, whatever the current folder holds (a folder or file called ``fast`` must not shadow
the bundled ``fast``); a path needs a separator or the kind's file suffix.  A leaf module:
the model layer and the YAML reader both use it without importing each other.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["names_a_file"]


def names_a_file(name: "str | Path", suffixes: tuple[str, ...]) -> bool:
    """Whether ``name`` names a file: a ``Path``, or text with a ``/`` or ``\\`` separator or
    ending in one of ``suffixes`` (e.g. ``(".pt",)``); otherwise it is a bundled name."""
    if isinstance(name, Path):
        return True
    text = str(name)
    return text.endswith(suffixes) or "/" in text or "\\" in text
