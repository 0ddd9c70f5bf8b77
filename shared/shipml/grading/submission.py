"""Submissions: find them, read them defensively, and rebuild each from the instructor's copy of the lab.

Only the *sources of the answer cells* come from the student's file (matched by cell id, then by the
order of cells tagged ``answer``). Everything else — setup and check cells, tags, metadata, kernel,
outputs — comes from ``labs/<lab>*.ipynb``; an answer cell the student deleted keeps the lab's stub.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from shipml import checks
from shipml.errors import ShipmlError
from shipml.paths import repo_root

CHECK_CALL = re.compile(r"""checks\.check\(\s*["']([\w.-]+)["']""")
START_CALL = re.compile(r"""checks\.start\(\s*["']([\w.-]+)["']""")
MAX_SUBMISSION_BYTES = 20 * 1024 * 1024


@dataclass
class LabLayout:
    """Where the questions are in the instructor's lab."""

    lab: str
    path: Path
    notebook: nbformat.NotebookNode
    check_cells: dict[int, str]  # cell index -> question id
    answer_cells: list[int]  # indices of cells tagged `answer`

    @property
    def question_ids(self) -> list[str]:
        return [q.id for q in checks.questions(self.lab)]

    def segment(self, question: str) -> tuple[int, int]:
        """Cells [first, last] that belong to ``question``: after the previous check, up to its own."""
        ordered = sorted(self.check_cells)
        last = next(i for i in ordered if self.check_cells[i] == question)
        before = [i for i in ordered if i < last]
        return (before[-1] + 1 if before else 0), last


@dataclass
class Submission:
    student: str
    path: Path
    notebook: nbformat.NotebookNode | None = None
    problem: str = ""  # why it cannot be graded (status "invalid" or "wrong_lab")
    status: str = ""
    notes: list[str] = field(default_factory=list)


def lab_notebook(lab: str, root: Path | None = None) -> Path:
    """``labs/<lab>_*.ipynb`` (or ``labs/<lab>.ipynb``) of the instructor's checkout."""
    root = root or repo_root()
    found = sorted((root / "labs").glob(f"{lab}_*.ipynb")) + sorted((root / "labs").glob(f"{lab}.ipynb"))
    if not found:
        known = ", ".join(p.name.split("_")[0] for p in sorted((root / "labs").glob("lab*.ipynb")))
        raise ShipmlError(f"no lab '{lab}' in {root / 'labs'} (labs: {known or 'none'})")
    return found[0]


def layout(lab: str, root: Path | None = None) -> LabLayout:
    path = lab_notebook(lab, root)
    nb = nbformat.read(path, as_version=4)
    check_cells: dict[int, str] = {}
    answers: list[int] = []
    for i, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and "check" in tags:
            m = CHECK_CALL.search(cell.source)
            if m:
                check_cells[i] = m.group(1)
        if cell.cell_type == "code" and "answer" in tags:
            answers.append(i)
    try:
        ids = [q.id for q in checks.questions(lab)]
    except ModuleNotFoundError as exc:
        raise ShipmlError(f"{lab} has no questions module shipml.checks.{lab}") from exc
    missing = [q for q in ids if q not in check_cells.values()]
    if missing:
        raise ShipmlError(f"{path.name}: no check cell for question(s) {', '.join(missing)}")
    return LabLayout(lab, path, nb, check_cells, answers)


def find_submissions(folder: Path) -> list[Submission]:
    """``<student>.ipynb`` files, or ``<student>/<any>.ipynb`` (one notebook per student folder)."""
    if not folder.is_dir():
        raise ShipmlError(f"{folder} is not a folder of submissions")
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*.ipynb")):
        found[path.stem] = path
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        notebooks = sorted(sub.glob("*.ipynb"))
        if notebooks:
            found.setdefault(sub.name, notebooks[0])
    if not found:
        raise ShipmlError(f"no submissions (*.ipynb) in {folder}")
    return [Submission(student, path) for student, path in sorted(found.items())]


def read(sub: Submission, lab: str) -> Submission:
    """Parse the student's file; set ``problem`` when it cannot be graded. Never raises."""
    try:
        size = sub.path.stat().st_size
        if size == 0:
            sub.problem, sub.status = "the file is empty", "invalid"
            return sub
        if size > MAX_SUBMISSION_BYTES:
            sub.problem, sub.status = f"the file is {size / 2**20:.0f} MiB (limit 20 MiB)", "invalid"
            return sub
        raw = json.loads(sub.path.read_text(encoding="utf-8", errors="replace"))
        if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
            raise ValueError("not a notebook (no list of cells)")
        sub.notebook = nbformat.from_dict(raw)
    except (json.JSONDecodeError, ValueError, UnicodeDecodeError, OSError) as exc:
        sub.problem, sub.status = f"not a readable notebook ({type(exc).__name__}: {str(exc)[:120]})", "invalid"
        return sub
    for cell in sub.notebook.cells:
        if isinstance(cell, dict) and isinstance(cell.get("source"), list):
            cell["source"] = "".join(str(s) for s in cell["source"])
    starts = {m.group(1) for c in sub.notebook.cells if isinstance(c, dict)
              for m in START_CALL.finditer(str(c.get("source", "")))}
    if starts and lab not in starts:
        sub.problem, sub.status = f"this notebook is for {', '.join(sorted(starts))}, not {lab}", "wrong_lab"
    return sub


def rebuild(lab: LabLayout, sub: Submission) -> nbformat.NotebookNode:
    """The instructor's lab with the student's answer-cell sources; notes say what was matched how."""
    nb = copy.deepcopy(lab.notebook)
    student_cells = [c for c in sub.notebook.cells if isinstance(c, dict) and c.get("cell_type") == "code"]
    by_id: dict[str, dict] = {}
    for c in student_cells:
        by_id.setdefault(str(c.get("id", "")), c)
    tagged = [c for c in student_cells if "answer" in (c.get("metadata", {}) or {}).get("tags", [])]
    for order, index in enumerate(lab.answer_cells):
        cell = nb.cells[index]
        theirs = by_id.get(cell.id)
        how = "id"
        if theirs is None and order < len(tagged) and str(tagged[order].get("id", "")) not in \
                {nb.cells[i].id for i in lab.answer_cells}:
            theirs, how = tagged[order], "tag order"
        if theirs is None:
            sub.notes.append(f"answer cell {cell.id} not found in the submission: the lab's stub was used")
            continue
        source = theirs.get("source", "")
        cell.source = source if isinstance(source, str) else "".join(source)
        if how != "id":
            sub.notes.append(f"answer cell {cell.id} matched by tag order")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb
