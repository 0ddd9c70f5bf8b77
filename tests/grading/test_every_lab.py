"""The grader is generic over labs: every lab in labs/ has a layout it understands, and grading the
solution as a submission earns full marks with status ok. (Unsolved labs running to the end with zero
marks is tests/test_labs.py's job, without the grader's allow-errors.)"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from shipml import checks
from shipml.cli import main
from shipml.doctor import unmet_requirement
from shipml.grading import submission

ROOT = Path(__file__).resolve().parents[2]
LABS = sorted(p.name.split("_")[0] for p in (ROOT / "labs").glob("lab*.ipynb"))


@pytest.mark.parametrize("lab", LABS)
def test_layout_has_a_check_cell_per_question(lab):
    layout = submission.layout(lab)
    assert sorted(layout.check_cells.values()) == sorted(q.id for q in checks.questions(lab))
    assert layout.answer_cells, f"{lab} has no cells tagged answer"


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("lab", LABS)
def test_grading_the_solution_gives_full_marks(lab, tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    name = submission.lab_notebook(lab).name
    reason = unmet_requirement(ROOT / "solutions" / name)
    if reason:
        pytest.skip(reason)
    shutil.copy(ROOT / "solutions" / name, subs / "solution.ipynb")
    # a lab that needs Docker or a cluster cannot be graded in a sandbox (no socket, no network): none
    sandbox = ["--sandbox", "none"] if submission.layout(lab).requires() else []
    assert main(["grade", lab, str(subs), "--out", str(tmp_path / "out"), "--jobs", "2", "--timeout", "600",
                 "--wall-timeout", "1200", "--quiet", *sandbox]) == 0
    with (tmp_path / "out" / "gradebook.csv").open() as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows["solution"]["status"] == "ok" and rows["solution"]["total"] == rows["solution"]["max_total"], \
        rows["solution"]
