"""Quoting values in error messages: a bounded ``repr`` (at most a short prefix of any value)."""
from __future__ import annotations

import reprlib

__all__ = ["short", "clip", "MAX_CHARS"]

#: Longest quote an error message holds, in characters (the ``...`` marker included).
MAX_CHARS = 80

# reprlib visits at most ``maxlevel`` levels and ``maxlist`` items per container, so the
# work is bounded even for a YAML alias bomb (a value of 10^9 shared leaves): the full
# repr of such a value is gigabytes, this one a few dozen characters.
_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = 6
_REPR.maxdict = 6
_REPR.maxstring = MAX_CHARS
_REPR.maxlong = 40
_REPR.maxother = MAX_CHARS


def short(value: object, limit: int = MAX_CHARS) -> str:
    """``repr(value)`` when it is at most ``limit`` characters (≥ 8), else a prefix ending in ``...``.

    Cost and length are bounded whatever ``value`` holds (nesting, shared references,
    a long string), so an error message that quotes a user's value stays one short line.
    """
    limit = max(8, limit)
    if isinstance(value, str) and len(value) <= limit:
        text = repr(value)  # the common case: exactly what ``{value!r}`` would say
    elif isinstance(value, (str, bytes)):
        text = repr(value[: limit + 1])
    else:
        text = _REPR.repr(value)
    return clip(text, limit)


def clip(text: str, limit: int = MAX_CHARS) -> str:
    """``text`` on one line (runs of whitespace, newlines included, become one space),
    cut to at most ``limit`` characters (≥ 8) ending in ``...``; for quoting library
    messages that embed a user's input."""
    limit = max(8, limit)
    text = " ".join(text[: 4 * limit].split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
