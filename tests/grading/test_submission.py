"""Reading submissions defensively and rebuilding them from the instructor's lab (no kernel needed)."""

from __future__ import annotations

import json

import nbformat
import pytest
from shipml.errors import ShipmlError
from shipml.grading import submission


def _write(path, nb):
    nbformat.write(nb, path)
    return path


def _read(path, lab="lab00"):
    return submission.read(submission.Submission(path.stem, path), lab)


def test_unreadable_files_get_a_reason(tmp_path):
    (tmp_path / "empty.ipynb").write_bytes(b"")
    (tmp_path / "broken.ipynb").write_text('{"cells": [')
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    assert _read(tmp_path / "empty.ipynb").status == "invalid"
    assert "empty" in _read(tmp_path / "empty.ipynb").problem
    assert _read(tmp_path / "broken.ipynb").status == "invalid"
    assert "not a notebook" in _read(tmp_path / "list.ipynb").problem


def test_wrong_lab_is_detected(tmp_path, lab00):
    nb = nbformat.read(lab00.path, as_version=4)
    for cell in nb.cells:
        cell.source = cell.source.replace('checks.start("lab00"', 'checks.start("lab03"')
    sub = _read(_write(tmp_path / "x.ipynb", nb))
    assert sub.status == "wrong_lab" and "lab03" in sub.problem


def test_rebuild_takes_only_answer_sources(tmp_path, lab00):
    nb = nbformat.read(lab00.path, as_version=4)
    for cell in nb.cells:
        if cell.id == "answer-data":
            cell.source = "df = 42"
            cell.metadata["tags"] = []  # untagged: still matched by id
        if "check" in cell.metadata.get("tags", []):
            cell.source = 'print("✅ all good")'
        if cell.id == "setup":
            cell.source = "import os"
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="✅ data (1/1)")]
    nb.cells.append(nbformat.v4.new_code_cell("print('extra cell')"))
    nb.metadata["kernelspec"]["name"] = "evil"
    rebuilt = submission.rebuild(lab00, _read(_write(tmp_path / "s.ipynb", nb)))
    original = lab00.notebook
    assert [c.id for c in rebuilt.cells] == [c.id for c in original.cells]
    assert rebuilt.metadata["kernelspec"]["name"] == "shipml"
    for mine, theirs in zip(rebuilt.cells, original.cells, strict=True):
        assert mine.metadata == theirs.metadata
        if mine.cell_type == "code":
            assert mine.outputs == []
        if mine.id == "answer-data":
            assert mine.source == "df = 42"
        else:
            assert mine.source == theirs.source


def test_rebuild_falls_back_to_tag_order_and_keeps_stubs_for_deleted_cells(tmp_path, lab00):
    nb = nbformat.read(lab00.path, as_version=4)
    for n, cell in enumerate(nb.cells):
        cell.id = f"c{n}"
        if "answer" in cell.metadata.get("tags", []):
            cell.source = f"answer_{n} = {n}"
    sub = _read(_write(tmp_path / "s.ipynb", nb))
    rebuilt = submission.rebuild(lab00, sub)
    answers = [rebuilt.cells[i].source for i in lab00.answer_cells]
    assert all(a.startswith("answer_") for a in answers)
    assert any("tag order" in note for note in sub.notes)

    nb = nbformat.read(lab00.path, as_version=4)
    nb.cells = [c for c in nb.cells if c.id != "answer-proba"]
    sub = _read(_write(tmp_path / "d.ipynb", nb))
    rebuilt = submission.rebuild(lab00, sub)
    assert rebuilt.cells[[c.id for c in rebuilt.cells].index("answer-proba")].source.endswith("proba = None")
    assert any("answer-proba" in note for note in sub.notes)


def test_layout_maps_check_cells_to_questions(lab00):
    assert sorted(lab00.check_cells.values()) == sorted(lab00.question_ids)
    first, last = lab00.segment("data")
    assert lab00.notebook.cells[last].id == "check-data"
    assert first == 0


def test_submissions_are_found_by_file_or_folder(tmp_path):
    (tmp_path / "ann.ipynb").write_text(json.dumps({"cells": []}))
    (tmp_path / "ben").mkdir()
    (tmp_path / "ben" / "lab00_first_bundle.ipynb").write_text("{}")
    assert [s.student for s in submission.find_submissions(tmp_path)] == ["ann", "ben"]
    with pytest.raises(ShipmlError):
        submission.find_submissions(tmp_path / "ben" / "nothing")


def test_unknown_lab_is_a_clear_error():
    with pytest.raises(ShipmlError, match="no lab 'lab99'"):
        submission.layout("lab99")
