"""The code keeps its shape: no module over 600 lines, no function over 60, outside tests and migrations.

Read with ``ast`` from the source files themselves, so a new offender fails the test command naming its
file, line and size. Benchmarks (``bench/``) are held to the module limit only: a benchmark reads best
as one long scenario. There is no list of exceptions: an offender is split, not excused.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60
# The project's own code; tests/ is not under these, and bench/ is checked for module size only.
CHECKED = ("apps", "cdplatform")
BENCHMARKS = ("bench",)
SKIPPED_PARTS = {"migrations", "tests", "__pycache__"}


@dataclass(frozen=True)
class Offender:
    """One module or function past its limit, as the failure message names it."""

    path: str
    line: int
    what: str
    lines: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.what} has {self.lines} lines"


def source_files(roots: tuple[str, ...]) -> list[Path]:
    """The Python files under ``roots``, leaving out migrations and any tests package."""
    return sorted(
        path
        for root in roots
        for path in (ROOT / root).rglob("*.py")
        if not SKIPPED_PARTS.intersection(path.relative_to(ROOT).parts)
    )


def long_modules(paths: list[Path], root: Path = ROOT) -> list[Offender]:
    """The modules with more than MAX_MODULE_LINES lines; paths are named relative to ``root``."""
    offenders = []
    for path in paths:
        count = len(path.read_text(encoding="utf-8").splitlines())
        if count > MAX_MODULE_LINES:
            offenders.append(Offender(str(path.relative_to(root)), 1, "the module", count))
    return offenders


def long_functions(paths: list[Path], root: Path = ROOT) -> list[Offender]:
    """The functions and methods (nested ones too) longer than MAX_FUNCTION_LINES, from ``def`` to last line."""
    offenders = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                count = node.end_lineno - node.lineno + 1
                if count > MAX_FUNCTION_LINES:
                    what = f"{'async ' if isinstance(node, ast.AsyncFunctionDef) else ''}def {node.name}()"
                    offenders.append(Offender(str(path.relative_to(root)), node.lineno, what, count))
    return offenders


def report(offenders: list[Offender], limit: str) -> str:
    """The failure message: one offender a line."""
    return f"{len(offenders)} over {limit}:\n" + "\n".join(f"  {offender}" for offender in offenders)


def test_the_checked_packages_are_where_the_check_looks():
    # Guards the check itself: a moved package must not make it pass by finding nothing.
    assert all((ROOT / root).is_dir() for root in CHECKED + BENCHMARKS)
    assert len(source_files(CHECKED)) > 50


def test_no_module_is_over_600_lines():
    offenders = long_modules(source_files(CHECKED + BENCHMARKS))
    assert not offenders, report(offenders, f"{MAX_MODULE_LINES} lines; split them by concern")


def test_no_function_is_over_60_lines():
    offenders = long_functions(source_files(CHECKED))
    assert not offenders, report(offenders, f"{MAX_FUNCTION_LINES} lines; split them")


def test_the_check_finds_a_long_function_and_a_long_module(tmp_path):
    body = "\n".join(f"    x{index} = {index}" for index in range(MAX_FUNCTION_LINES))
    long_function = tmp_path / "long_function.py"
    long_function.write_text(f"@staticmethod\ndef long():\n{body}\n")
    long_module = tmp_path / "long_module.py"
    long_module.write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    fine = tmp_path / "fine.py"
    fine.write_text("def short():\n" + "\n".join(f"    x{index} = {index}" for index in range(MAX_FUNCTION_LINES - 1)))

    paths = [long_function, fine, long_module]
    functions = long_functions(paths, root=tmp_path)
    modules = long_modules(paths, root=tmp_path)

    assert [(o.path, o.line, o.lines) for o in functions] == [("long_function.py", 2, MAX_FUNCTION_LINES + 1)]
    assert [(o.path, o.lines) for o in modules] == [("long_module.py", MAX_MODULE_LINES + 1)]

