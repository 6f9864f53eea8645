"""The layers of letta_otel stay one-way, and no module reaches into another's privates.

* ``lint-imports`` (import-linter, contracts in ``pyproject.toml``): each part imports
  only the parts below it, the pipeline's pieces in the order of a cycle, no circle
  between siblings, the state file opened only by the pipeline and the programs. A
  back-edge anywhere fails this test with the contract and the import that broke it.
* A walk of the source with ``ast``: no ``from x import _y``, no private module, no
  ``obj._attr`` on anything but ``self``/``cls``. A name with a leading underscore is
  its module's (or class's) own business; code that needs it needs a public name.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "letta_otel"

# namedtuple's documented API starts with an underscore so as not to clash with fields.
PUBLIC_BY_CONVENTION = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults"})


def _private(name: str) -> bool:
    dunder = name.startswith("__") and name.endswith("__")
    return name.startswith("_") and not dunder and name not in PUBLIC_BY_CONVENTION


def _lint_imports() -> str:
    beside = Path(sys.executable).with_name("lint-imports")
    command = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert command, "lint-imports is missing: pip install -e '.[test]'"
    return command


def test_the_import_contracts_hold() -> None:
    result = subprocess.run(
        [_lint_imports(), "--no-cache", "--no-logo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _module_of(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _crossings(path: Path, root: Path = REPO) -> list[str]:
    """Every place ``path`` (a module under ``root``) uses a private name not its own."""
    module = _module_of(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[str] = []

    def note(node: ast.AST, what: str) -> None:
        found.append(f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, path.name == "__init__.py")
            if any(_private(p) for p in source.split(".")):
                note(node, f"imports from the private module {source}")
            for alias in node.names:
                if _private(alias.name):
                    note(node, f"imports {source}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if any(_private(p) for p in alias.name.split(".")):
                    note(node, f"imports the private module {alias.name}")
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            if not (isinstance(base, ast.Name) and base.id in ("self", "cls")):
                note(node, f"reads {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            base = node.args[0]
            if not (isinstance(base, ast.Name) and base.id in ("self", "cls")):
                note(node, f"reaches into {ast.unparse(node)}")
    return found


def test_no_private_name_crosses_a_module() -> None:
    found = [line for path in sorted(PACKAGE.rglob("*.py")) for line in _crossings(path)]
    assert not found, "\n".join(found)


def test_the_walk_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The check itself: each kind of crossing is reported, a class's own use is not."""
    text = (
        "from letta_otel.mapping.clean import _clean\n"
        "from . import _private_module\n"
        "import letta_otel._hidden\n"
        "x = other._state\n"
        "y = getattr(other, '_listed', None)\n"
        "class A:\n"
        "    def f(self) -> None:\n"
        "        self._own = 1\n"
        "        parts = self.url._replace(netloc='x')\n"
    )
    sample = tmp_path / "letta_otel" / "sample.py"
    sample.parent.mkdir()
    sample.write_text(text)
    found = _crossings(sample, tmp_path)
    assert [line.split(": ", 1)[1] for line in found] == [
        "imports letta_otel.mapping.clean._clean",
        "imports letta_otel._private_module",
        "imports the private module letta_otel._hidden",
        "reads other._state",
        "reaches into getattr(other, '_listed', None)",
    ]
