"""Labs are generated from solutions: ``solutions/labNN_*.ipynb`` is the one source of truth.

Each ``# BEGIN SOLUTION`` … ``# END SOLUTION`` region becomes ``# YOUR CODE HERE`` plus its stub: the
region's ``# STUB: <code>`` lines, uncommented, or ``raise NotImplementedError`` for an indented region
without stubs (the body of a function the student writes). Outputs are dropped and a header cell says
the file is generated. ``build(check=True)`` reports stale labs without writing (CI runs it).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

from shipml.errors import ShipmlError
from shipml.paths import repo_root

BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
STUB = re.compile(r"^\s*# STUB: ?(.*)$")
HEADER_ID = "generated-header"


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace every solution region in ``source`` by its stub."""
    out: list[str] = []
    region: list[str] | None = None
    indent = ""
    for line in source.splitlines():
        if region is None:
            m = BEGIN.match(line)
            if m:
                indent, region = m.group(1), []
            elif END.match(line):
                raise ShipmlError(f"{where}: '# END SOLUTION' without '# BEGIN SOLUTION'")
            else:
                out.append(line)
        elif END.match(line):
            stubs = [STUB.match(r).group(1) for r in region if STUB.match(r)]
            out.append(f"{indent}# YOUR CODE HERE")
            if stubs:
                out += [f"{indent}{s}" for s in stubs]
            elif indent:
                out.append(f'{indent}raise NotImplementedError("write this part")')
            region = None
        elif BEGIN.match(line):
            raise ShipmlError(f"{where}: nested '# BEGIN SOLUTION'")
        else:
            region.append(line)
    if region is not None:
        raise ShipmlError(f"{where}: '# BEGIN SOLUTION' without '# END SOLUTION'")
    return "\n".join(out)


def build_lab(solution: nbformat.NotebookNode, solution_name: str) -> nbformat.NotebookNode:
    lab = copy.deepcopy(solution)
    for i, cell in enumerate(lab.cells):
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.source = strip_solutions(cell.source, f"{solution_name} cell {i}")
    header = nbformat.v4.new_markdown_cell(
        f"> **Generated file.** This lab is built from `solutions/{solution_name}` by "
        "`shipml labs build`; edit the solution, not this file.\n>\n"
        "> Write your code where it says `# YOUR CODE HERE`, then run the check cell below it. "
        "Checks tell you what is wrong and give a hint; they never crash your notebook."
    )
    header.id = HEADER_ID
    lab.cells.insert(0, header)
    return lab


def lab_text(solution_path: Path) -> str:
    nb = nbformat.read(solution_path, as_version=4)
    return nbformat.writes(build_lab(nb, solution_path.name)) + "\n"


def build(root: Path | None = None, check: bool = False) -> list[Path]:
    """Write ``labs/`` from ``solutions/``; with ``check``, write nothing and return the stale labs."""
    root = root or repo_root()
    solutions = sorted((root / "solutions").glob("lab*.ipynb"))
    if not solutions:
        raise ShipmlError(f"no solutions found in {root / 'solutions'}")
    wanted = {root / "labs" / s.name: lab_text(s) for s in solutions}
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    orphans = [p for p in (root / "labs").glob("lab*.ipynb") if p not in wanted]
    if check:
        return stale + orphans
    (root / "labs").mkdir(exist_ok=True)
    for path in stale:
        path.write_text(wanted[path])
    for path in orphans:
        path.unlink()
    return stale + orphans
