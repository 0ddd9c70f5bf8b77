"""No function of the package is longer than a reader can hold: at most MAX_LINES lines, docstring included.

A longer one is split where a reader would (a named step, a helper whose docstring says why), not to please
this number. Nested functions and classes count in the function that holds them.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "shared" / "shipml"
MAX_LINES = 60


def long_functions(source: str, limit: int = MAX_LINES) -> list[tuple[str, int, int]]:
    """``(name, first line, lines)`` of every function in ``source`` longer than ``limit`` lines."""
    return [(node.name, node.lineno, node.end_lineno - node.lineno + 1)
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > limit]


def test_the_length_is_measured_from_def_to_the_last_line():
    body = "".join(f"    x{i} = {i}\n" for i in range(4))
    source = f"def short():\n{body}\n\nclass K:\n    async def method(self):\n{body.replace('    ', '        ')}"
    assert long_functions(source, limit=5) == []
    assert long_functions(source, limit=4) == [("short", 1, 5), ("method", 9, 5)]


def test_no_package_function_is_longer_than_the_limit():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 100  # the package was found
    too_long = [f"{path.relative_to(PACKAGE)}:{line} {name} ({n} lines)"
                for path in files for name, line, n in long_functions(path.read_text())]
    assert not too_long, f"split these at their seams (at most {MAX_LINES} lines): {too_long}"
