"""docs/architecture.md (linked from the README) lists every module of the package, with its docstring's first line."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _first_line(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ").strip().replace("|", "/")


def test_every_module_has_its_line():
    readme = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(vsugsp/[^`]+\.py)` \| (.*) \|$", readme, flags=re.M))
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "vsugsp").rglob("*.py")
               if p.name not in ("__main__.py", "_version.py")}
    assert set(rows) == modules, (sorted(modules - set(rows)), sorted(set(rows) - modules))
    for mod, line in rows.items():
        assert line == _first_line(ROOT / mod), mod
        assert line, f"{mod} has no docstring"
