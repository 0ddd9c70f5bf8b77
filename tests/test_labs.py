"""Labs are generated from solutions; solutions earn full marks; unsolved labs run with zero marks."""

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from shipml import checks, labs
from shipml.errors import ShipmlError
from shipml.grading import keys

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("lab*.ipynb"))


def test_strip_solutions_stubs():
    src = "a = 1\n# BEGIN SOLUTION\nx = compute()\n# STUB: x = None\n# END SOLUTION\nprint(x)"
    assert labs.strip_solutions(src) == "a = 1\n# YOUR CODE HERE\nx = None\nprint(x)"
    body = "def f(n):\n    # BEGIN SOLUTION\n    return n * 2\n    # END SOLUTION"
    assert labs.strip_solutions(body) == (
        'def f(n):\n    # YOUR CODE HERE\n    raise NotImplementedError("write this part")')


@pytest.mark.parametrize("src", ["# BEGIN SOLUTION\nx=1", "x\n# END SOLUTION",
                                 "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION"])
def test_unbalanced_markers_are_errors(src):
    with pytest.raises(ShipmlError):
        labs.strip_solutions(src)


def test_labs_are_in_sync_with_solutions():
    assert labs.build(ROOT, check=True) == [], "run `shipml labs build` and commit labs/"


def test_sync_check_detects_a_stale_lab(tmp_path):
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    shutil.copytree(ROOT / "labs", tmp_path / "labs")
    assert labs.build(tmp_path, check=True) == []
    lab = sorted((tmp_path / "labs").glob("*.ipynb"))[0]
    lab.write_text(lab.read_text().replace("YOUR CODE HERE", "my edit", 1))
    assert labs.build(tmp_path, check=True) == [lab]
    labs.build(tmp_path)
    assert labs.build(tmp_path, check=True) == []


def test_generated_labs_hold_no_solution_code():
    for solution in SOLUTIONS:
        lab = nbformat.read(ROOT / "labs" / solution.name, as_version=4)
        assert lab.cells[0].id == labs.HEADER_ID
        text = "\n".join(c.source for c in lab.cells)
        assert "BEGIN SOLUTION" not in text and "# STUB" not in text


def _run(notebook: Path, tmp_path: Path, lab: str) -> dict:
    import papermill

    answers = tmp_path / f"{lab}.jsonl"
    papermill.execute_notebook(str(notebook), str(tmp_path / notebook.name), kernel_name="shipml",
                               parameters={"answers_path": str(answers)}, progress_bar=False,
                               cwd=str(tmp_path), execution_timeout=600)
    return checks.load_answers(answers)


def _skip_if_unmet(notebook: Path) -> None:
    from shipml.doctor import unmet_requirement

    reason = unmet_requirement(notebook)
    if reason:
        pytest.skip(reason)


def _lab_id(path: Path) -> str:
    return path.name.split("_")[0]


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.name)
def test_solution_earns_full_marks(solution, tmp_path):
    _skip_if_unmet(solution)
    lab = _lab_id(solution)
    exported = Path(os.environ.get("SHIPML_ANSWERS_DIR", "/nonexistent")) / f"{lab}.jsonl"
    # `make test` runs the solutions under nbval first with SHIPML_ANSWERS_DIR set: reuse those answers.
    answers = checks.load_answers(exported) if exported.exists() else _run(solution, tmp_path, lab)
    # the grader's verdicts (answer keys), and the instant ones the student saw: both full marks
    for verdicts in (keys.grade_answers(lab, answers), checks.grade_answers(lab, answers)):
        assert [(v.question, v.status, v.message) for v in verdicts if v.status != "pass"] == []


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.name)
def test_unsolved_lab_runs_to_the_end_with_zero_marks(solution, tmp_path):
    _skip_if_unmet(solution)
    lab = _lab_id(solution)
    verdicts = checks.grade_answers(lab, _run(ROOT / "labs" / solution.name, tmp_path, lab))
    assert sum(v.points for v in verdicts) == 0
    assert all(v.message == "not answered yet" for v in verdicts), [v.message for v in verdicts]
    assert all(v.hint == "" for v in verdicts), "hints are for attempts, not for an unanswered stub"
