"""README.md and docs/*.md render as written: closed code fences, links and #anchors that resolve, the CI test command."""
import re
import shlex
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# CommonMark: a fence is 3+ backticks or tildes indented by at most 3 spaces.
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def fence_errors(text: str) -> list[str]:
    """Unclosed fences, as a CommonMark renderer reads them; line numbers are 1-based.

    Inside a fence only a bare run of the same character, at least as long,
    closes it. A fence line that carries text there (```` ``` text ```` or
    ```` ```sh ````) is almost surely a closing fence written wrong: the
    renderer shows everything after it as code, so it is reported.
    """
    errors, open_at, marker = [], 0, ""
    for n, line in enumerate(text.split("\n"), 1):
        m = _FENCE.match(line)
        if not open_at:
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                open_at, marker = n, m.group(1)
            continue
        if m and m.group(1)[0] == marker[0] and len(m.group(1)) >= len(marker):
            if not m.group(2).strip():
                open_at = 0
            else:
                errors.append(f"line {n}: a fence with text ({line.strip()[:40]!r}) inside the code block "
                              f"opened at line {open_at}; a closing fence stands alone on its line")
    if open_at:
        errors.append(f"the code block opened at line {open_at} is never closed")
    return errors


def _prose(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside code fences, with inline code spans blanked."""
    out, open_marker = [], ""
    for n, line in enumerate(text.split("\n"), 1):
        m = _FENCE.match(line)
        if open_marker:
            if m and m.group(1)[0] == open_marker[0] and len(m.group(1)) >= len(open_marker) and not m.group(2).strip():
                open_marker = ""
            continue
        if m:
            open_marker = m.group(1)
            continue
        out.append((n, _CODE_SPAN.sub(lambda s: " " * len(s.group(0)), line)))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"(\*\*|__|\*|~~)", "", text)
    kept = [c for c in text.lower()
            if c in " -_" or unicodedata.category(c)[0] in "LN" or unicodedata.category(c) in ("Mn", "Mc")]
    return "".join(kept).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every #anchor a page's headings give, numbered -1, -2, ... when repeated, as GitHub does."""
    seen: dict[str, int] = {}
    out = set()
    for _, line in _prose(text):
        m = _HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        k = seen.get(base, 0)
        seen[base] = k + 1
        out.add(base if k == 0 else f"{base}-{k}")
    return out


def link_errors(page: Path, text: str | None = None) -> list[str]:
    """Relative links whose file is missing, and #anchors no heading of the target page gives."""
    text = page.read_text(encoding="utf-8") if text is None else text
    errors = []
    for n, line in _prose(text):
        targets = [m.group(1) for m in _LINK.finditer(line)]
        ref = _REF_DEF.match(line)
        if ref:
            targets.append(ref.group(1))
        for target in targets:
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if path and not dest.exists():
                errors.append(f"{page.name} line {n}: {target!r}: {path!r} does not exist")
                continue
            if anchor and dest.suffix == ".md":
                heads = anchors(dest.read_text(encoding="utf-8") if path else text)
                if anchor not in heads:
                    errors.append(f"{page.name} line {n}: {target!r}: no heading of {dest.name} has #{anchor}")
    return errors


def test_the_pages_exist():
    assert (ROOT / "README.md").is_file()
    assert len(PAGES) > 1, "docs/*.md holds the detail the README links to"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_code_fence_is_closed(page: Path):
    assert fence_errors(page.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path):
    assert link_errors(page) == []


def test_the_fence_check_sees_what_a_renderer_sees():
    # The README's old mistake: text after the closing backticks keeps the block open.
    assert fence_errors("```python\nx = 1\n``` A full example\n\n## Next\n") != []
    assert len(fence_errors("```python\nx = 1\n``` A full example\n```sh\nls\n```\n")) == 2
    assert fence_errors("```sh\nls\n```\n\n````md\n```\ninner\n```\n````\n") == []
    assert fence_errors("~~~\n```\n~~~\n") == []


def test_slugs_are_githubs():
    assert slug("Evaluation & benchmarks") == "evaluation--benchmarks"
    assert slug("Why the network loses to its prior: the ablation") == "why-the-network-loses-to-its-prior-the-ablation"
    assert slug("Scaling of `vsugsp render`") == "scaling-of-vsugsp-render"
    assert slug("Python API") == "python-api"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n## A\n") == {"a", "a-1", "a-2"}


def test_the_link_check_finds_broken_links(tmp_path: Path):
    (tmp_path / "other.md").write_text("# Other page\n\n## Part two\n")
    page = tmp_path / "page.md"
    ok = "# Top\n\n[a](other.md) [b](other.md#part-two) [c](#top) [d](https://example.com/x#y) `[e](nothere.md)`\n"
    assert link_errors(page, ok) == []
    bad = "# Top\n\n[a](missing.md) [b](other.md#part-three) [c](#nowhere)\n"
    assert len(link_errors(page, bad)) == 3


def _commands(script: str) -> list[str]:
    """The shell commands of a script or a ```sh block, comments and blank lines left out."""
    out = []
    for line in script.split("\n"):
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(" ".join(shlex.split(line)))
    return out


def test_the_readmes_test_command_is_what_ci_runs():
    ci = _commands((ROOT / ".ci" / "run").read_text())
    ci_tests = [c for c in ci if c.startswith("make test") or "pytest" in c]
    assert ci_tests == ["make test"], ci_tests
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", quick, flags=re.S)
    shown = [c for b in blocks for c in _commands(b)]
    assert "make test" in shown and "make demo" in shown, shown
    assert re.search(r"^test:", (ROOT / "Makefile").read_text(), flags=re.M)
