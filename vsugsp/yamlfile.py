"""Bounded YAML reading for presets, recipes and ``--set`` values: size cap, depth and alias-expansion limits, libyaml."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .names import names_a_file
from .quote import clip

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "Loader", "load_text", "load_file", "looks_like_path", "text_number_hint"]

#: Largest YAML file read, in bytes (the bundled presets and recipes are under 4 KB).
MAX_BYTES = 1 << 20
#: Deepest nesting of mappings and sequences (the bundled files reach 4).
MAX_DEPTH = 64
#: Most nodes the document may hold once every alias is expanded: what a reader that
#: walks the value (repr, merge, copy, JSON) would visit.  A 375-byte "billion laughs"
#: document expands to 10^9 nodes; the bundled files hold a few hundred.
MAX_NODES = 100_000

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~50x faster than the pure-Python parser


class Loader(_Base):  # type: ignore[misc, valid-type]
    """Safe loader (libyaml where present) that also reads YAML 1.2 floats such as ``1e-9``.

    YAML 1.1, PyYAML's dialect, needs a dot (``1.0e-9``) and reads ``1e-9`` as the
    string ``'1e-9'``: a number a user wrote would be refused as text.
    """


# YAML 1.2 core schema floats (exponent without a dot, optional sign); the 1.1 forms stay.
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)$"),
    list("-+0123456789."),
)
_NO_DOT_EXPONENT = re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$")  # what YAML 1.1 reads as text


def _check_events(text: str, what: str) -> None:
    """Refuse ``text`` when its nesting exceeds :data:`MAX_DEPTH` or its alias-expanded
    size exceeds :data:`MAX_NODES`, from the parser's event stream (no value built)."""
    sizes: dict[str, int] = {}  # anchor -> expanded node count of the node it names
    stack: list[list] = [[0, None]]  # per open collection: [its nodes so far, its anchor]
    total = 0  # nodes of the whole document so far, aliases expanded
    for ev in yaml.parse(text, Loader=_Base):
        if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(stack) > MAX_DEPTH:
                raise ValueError(f"vsugsp: {what} nests deeper than {MAX_DEPTH} levels")
            stack.append([1, ev.anchor])
            total += 1
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            n, anchor = stack.pop()
            stack[-1][0] += n
            if anchor is not None:
                sizes[anchor] = n
        elif isinstance(ev, yaml.ScalarEvent):
            stack[-1][0] += 1
            total += 1
            if ev.anchor is not None:
                sizes[ev.anchor] = 1
        elif isinstance(ev, yaml.AliasEvent):
            n = sizes.get(ev.anchor, 1)
            stack[-1][0] += n
            total += n
        if total > MAX_NODES:
            raise ValueError(f"vsugsp: {what} expands to more than {MAX_NODES} values (nested aliases?)")


def load_text(text: str, what: str) -> Any:
    """The value of YAML ``text``; ``what`` names it in errors ("preset file 'x.yaml'").

    Raises ``ValueError("vsugsp: ...")`` for invalid YAML, unsafe tags, text over
    :data:`MAX_BYTES`, nesting over :data:`MAX_DEPTH` or an alias expansion over
    :data:`MAX_NODES`.
    """
    if len(text) > MAX_BYTES:
        raise ValueError(f"vsugsp: {what} is {len(text)} characters; at most {MAX_BYTES} are read")
    try:
        _check_events(text, what)
        return yaml.load(text, Loader=Loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise ValueError(f"vsugsp: {what} is not valid YAML: {clip(str(exc), 300)}") from None
    except RecursionError:  # the pure-Python parser without libyaml, on deep flow collections
        raise ValueError(f"vsugsp: {what} nests deeper than {MAX_DEPTH} levels") from None


def load_file(path: str | Path, what: str) -> Any:
    """The value of the YAML file ``path`` (read at most :data:`MAX_BYTES` + 1 bytes); see :func:`load_text`."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"vsugsp: cannot read {what}: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise ValueError(f"vsugsp: {what} is larger than {MAX_BYTES // 1024} KiB; refusing to read it")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"vsugsp: {what} is not UTF-8 text (byte {exc.start})") from None
    return load_text(text, what)


def text_number_hint(value: Any) -> str:
    """For an error about ``value``: a note when it is text that reads as a number, else ``""``.

    Such text is a quoted number in YAML (``"10"``), or an exponent without a dot from a
    YAML 1.1 reader other than :class:`Loader` (``1e-9``: PyYAML's ``safe_load``).
    """
    if not isinstance(value, str) or len(value) > 64:
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    if _NO_DOT_EXPONENT.match(value.strip()):
        return f" (read as text: write it with a dot, e.g. {value.strip().replace('e', '.0e', 1).replace('E', '.0E', 1)})"
    return " (text, not a number: write it without quotes)"


def looks_like_path(name: str) -> bool:
    """Whether a preset or recipe reference names a file: a separator or a ``.yaml`` /
    ``.yml`` suffix.  A bare word is a bundled name, whatever the current folder holds
    (a folder or file called ``fast`` must not shadow the bundled ``fast``)."""
    return names_a_file(name, (".yaml", ".yml"))
