"""Submissions: find them, read them defensively, and rebuild each from the instructor's copy of the lab.

Only the *sources of the answer cells* come from the student's file (matched by cell id, then by the
order of cells tagged ``answer``). Everything else — setup and check cells, tags, metadata, kernel,
outputs — comes from ``labs/<lab>*.ipynb``; an answer cell the student deleted keeps the lab's stub.
"""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from shipml import checks
from shipml.errors import ShipmlError
from shipml.paths import repo_root

CHECK_CALL = re.compile(r"""checks\.check\(\s*["']([\w.-]+)["']""")
START_CALL = re.compile(r"""checks\.start\(\s*["']([\w.-]+)["']""")
MAX_FILE_BYTES = 200 * 1024 * 1024  # read at all (outputs are discarded, but parsing costs memory)
MAX_SOURCE_BYTES = 2 * 1024 * 1024  # of cell sources: what is actually graded


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

    def requires(self) -> list[str]:
        """What the lab's notebook declares it needs (``shipml.requires``: docker, cluster)."""
        return list(self.notebook.metadata.get("shipml", {}).get("requires", []))

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


def _candidates(folder: Path) -> dict[str, list[Path]]:
    """Notebooks per student (NFC-normalised name): ``<student>.ipynb`` and ``<student>/*.ipynb``."""
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        name = unicodedata.normalize("NFC", path.stem if path.is_file() else path.name)
        if path.is_file() and path.suffix == ".ipynb":
            found.setdefault(name, []).append(path)
        elif path.is_dir():
            found.setdefault(name, []).extend(p for p in sorted(path.glob("*.ipynb")) if p.is_file())
    return {k: v for k, v in found.items() if v}


def find_submissions(folder: Path, lab: str = "") -> list[Submission]:
    """One submission per student; several notebooks for one student are ``ambiguous`` unless exactly one
    of them is named after the lab (that one is graded, and the feedback says so)."""
    if not folder.is_dir():
        raise ShipmlError(f"{folder} is not a folder of submissions")
    found = _candidates(folder)
    if not found:
        raise ShipmlError(f"no submissions (*.ipynb) in {folder}")
    out = []
    for student, paths in sorted(found.items()):
        names = ", ".join(str(p.relative_to(folder)) for p in paths)
        if len(paths) == 1:
            out.append(Submission(student, paths[0]))
            continue
        named = [p for p in paths if lab and p.name.startswith(lab)]
        if len(named) == 1:
            out.append(Submission(student, named[0], notes=[
                f"you handed in {len(paths)} notebooks ({names}); the one named after the lab, "
                f"{named[0].relative_to(folder)}, was graded"]))
        else:
            out.append(Submission(student, paths[0], status="ambiguous", problem=(
                f"{len(paths)} notebooks for one student ({names}): hand in one, named after the lab")))
    return out


def _load(path: Path) -> nbformat.NotebookNode:
    """Parse a notebook file; raise ValueError (or anything) when it is not one."""
    size = path.stat().st_size
    if size == 0:
        raise ValueError("the file is empty")
    if size > MAX_FILE_BYTES:
        raise ValueError(f"the file is {size / 2**20:.0f} MiB (limit {MAX_FILE_BYTES // 2**20} MiB)")
    raw = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", raw.get("worksheets")), list):
        raise ValueError("not a notebook (no list of cells)")
    if raw.get("nbformat") == 3 or "worksheets" in raw:
        raw = nbformat.convert(nbformat.from_dict(raw), 4)  # nbformat 3 upgrades cleanly
        raw["metadata"]["shipml_upgraded_from"] = 3
    return nbformat.from_dict(raw)


def _normalise_cells(nb: nbformat.NotebookNode, notes: list[str]) -> None:
    """Cells as the rebuild expects them: dicts, ``source`` a string, ``tags`` a list of strings."""
    cells = [c for c in nb.cells if isinstance(c, dict)]
    if len(cells) != len(nb.cells):
        notes.append(f"{len(nb.cells) - len(cells)} entries of the notebook were not cells and were ignored")
    for cell in cells:
        source = cell.get("source", "")
        cell["source"] = "".join(str(s) for s in source) if isinstance(source, list) else str(source)
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        tags = metadata.get("tags", [])
        metadata["tags"] = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
        cell["metadata"] = metadata
        cell["id"] = str(cell.get("id", ""))
    nb.cells = cells


def read(sub: Submission, lab: str) -> Submission:
    """Parse the student's file; set ``problem`` when it cannot be graded. Never raises."""
    if sub.problem:
        return sub
    try:
        sub.notebook = _load(sub.path)
        if sub.notebook.metadata.get("shipml_upgraded_from") == 3:
            sub.notes.append("your notebook was in the old nbformat 3 and was upgraded to nbformat 4")
        _normalise_cells(sub.notebook, sub.notes)
        sources = sum(len(c["source"].encode("utf-8", "replace")) for c in sub.notebook.cells)
        if sources > MAX_SOURCE_BYTES:
            raise ValueError(f"its cells hold {sources / 2**20:.1f} MiB of code and text "
                             f"(limit {MAX_SOURCE_BYTES // 2**20} MiB; outputs do not count)")
    except ValueError as exc:
        sub.problem, sub.status = (str(exc) if str(exc).startswith(("the file", "its cells", "not a notebook"))
                                   else f"not a readable notebook ({type(exc).__name__}: {str(exc)[:120]})"), "invalid"
        sub.notebook = None
        return sub
    except Exception as exc:  # RecursionError (deeply nested JSON), MemoryError, anything: a row, never a crash
        sub.problem, sub.status = f"not a readable notebook ({type(exc).__name__}: {str(exc)[:120]})", "invalid"
        sub.notebook = None
        return sub
    starts = {m.group(1) for c in sub.notebook.cells for m in START_CALL.finditer(c["source"])}
    if starts and lab not in starts:
        sub.problem, sub.status = f"this notebook is for {', '.join(sorted(starts))}, not {lab}", "wrong_lab"
    return sub


def _pick(lab: LabLayout, sub: Submission, cell_id: str, order: int, by_id: dict[str, list[dict]],
          tagged: list[dict]) -> dict | None:
    """The student's cell for the lab's answer cell ``cell_id``; notes say how it was found."""
    mine = by_id.get(cell_id, [])
    code = [c for c in mine if c.get("cell_type") == "code"]
    if len(code) > 1:
        sub.notes.append(f"{len(code)} cells have the id {cell_id}: the last one was graded")
    if code:
        return code[-1]
    if mine:
        sub.notes.append(f"your answer cell {cell_id} is a {mine[0].get('cell_type')} cell, not code: the lab's "
                         "stub was run instead (change the cell back to code)")
        return None
    answer_ids = {lab.notebook.cells[i].id for i in lab.answer_cells}
    if order < len(tagged) and tagged[order]["id"] not in answer_ids:
        sub.notes.append(f"answer cell {cell_id} had lost its id: the {order + 1}. cell tagged `answer` was used")
        return tagged[order]
    sub.notes.append(f"answer cell {cell_id} is missing from your notebook: the lab's stub was run instead")
    return None


def rebuild(lab: LabLayout, sub: Submission) -> nbformat.NotebookNode:
    """The instructor's lab with the student's answer-cell sources; notes say what was matched how."""
    nb = copy.deepcopy(lab.notebook)
    by_id: dict[str, list[dict]] = {}
    for c in sub.notebook.cells:
        by_id.setdefault(c["id"], []).append(c)
    student_code = [c for c in sub.notebook.cells if c.get("cell_type") == "code"]
    tagged = [c for c in student_code if "answer" in c["metadata"]["tags"]]
    used: list[int] = []
    for order, index in enumerate(lab.answer_cells):
        cell = nb.cells[index]
        theirs = _pick(lab, sub, cell.id, order, by_id, tagged)
        if theirs is not None:
            cell.source = theirs["source"]
            used.append(id(theirs))
    lab_ids = {c.id for c in lab.notebook.cells}
    lab_sources = {c.source.strip() for c in lab.notebook.cells}
    extra = [c for c in student_code if id(c) not in used and c["id"] not in lab_ids and c["source"].strip()
             and c["source"].strip() not in lab_sources and not {"check", "answer"} & set(c["metadata"]["tags"])]
    if extra:
        sub.notes.append(f"{len(extra)} code cell(s) you added were not run: only answer cells are graded, so put "
                         "helper code inside an answer cell")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb
