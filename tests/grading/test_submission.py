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
    assert "not a notebook" in _read(tmp_path / "list.ipynb").problem
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
    assert any("lost its id" in note for note in sub.notes)

    nb = nbformat.read(lab00.path, as_version=4)
    nb.cells = [c for c in nb.cells if c.id != "answer-proba"]
    sub = _read(_write(tmp_path / "d.ipynb", nb))
    rebuilt = submission.rebuild(lab00, sub)
    assert rebuilt.cells[[c.id for c in rebuilt.cells].index("answer-proba")].source.endswith("proba = None")
    assert any("answer-proba" in note and "stub" in note for note in sub.notes)


def test_layout_maps_check_cells_to_questions(lab00):
    assert sorted(lab00.check_cells.values()) == sorted(lab00.question_ids)
    first, last = lab00.segment("data")
    assert lab00.notebook.cells[last].id == "check-data"
    assert first == 0


def test_submissions_are_found_by_file_or_folder(tmp_path):
    (tmp_path / "ann.ipynb").write_text(json.dumps({"cells": []}))
    (tmp_path / "ben").mkdir()
    (tmp_path / "ben" / "lab00_first_bundle.ipynb").write_text("{}")
    (tmp_path / "ben" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "ben" / ".ipynb_checkpoints" / "lab00_first_bundle-checkpoint.ipynb").write_text("{}")
    assert [s.student for s in submission.find_submissions(tmp_path)] == ["ann", "ben"]
    with pytest.raises(ShipmlError):
        submission.find_submissions(tmp_path / "ben" / "nothing")


def test_several_notebooks_for_one_student(tmp_path):
    (tmp_path / "ada.ipynb").write_text("{}")
    (tmp_path / "ada").mkdir()
    (tmp_path / "ada" / "lab00_first_bundle.ipynb").write_text("{}")
    (tmp_path / "cy.ipynb").write_text("{}")
    (tmp_path / "cy").mkdir()
    (tmp_path / "cy" / "Untitled.ipynb").write_text("{}")
    (tmp_path / "Jos\u00e9.ipynb").write_text("{}")
    (tmp_path / "Jose\u0301.ipynb").write_text("{}")
    subs = {s.student: s for s in submission.find_submissions(tmp_path, "lab00")}
    assert sorted(subs) == ["Jos\u00e9", "ada", "cy"]  # NFC and NFD spellings are one student
    assert subs["ada"].path.name == "lab00_first_bundle.ipynb" and "named after the lab" in subs["ada"].notes[0]
    assert subs["cy"].status == "ambiguous" and "cy/Untitled.ipynb" in subs["cy"].problem
    assert subs["Jos\u00e9"].status == "ambiguous"


def test_messy_notebooks_are_read_or_refused_with_a_reason(tmp_path, lab00):
    nb = nbformat.read(lab00.path, as_version=4)
    deep = tmp_path / "deep.ipynb"
    deep.write_bytes(b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert _read(deep).status == "invalid" and "RecursionError" in _read(deep).problem
    for cell in nb.cells:
        if cell.metadata.get("tags"):
            cell.metadata["tags"] = "answer"  # a string: not a list
    sub = _read(_write(tmp_path / "tags.ipynb", nb))
    assert not sub.problem and all(isinstance(c["metadata"]["tags"], list) for c in sub.notebook.cells)
    submission.rebuild(lab00, sub)
    v3 = tmp_path / "v3.ipynb"
    v3.write_text(nbformat.writes(nbformat.convert(nbformat.read(lab00.path, as_version=4), 3)))
    sub = _read(v3)
    assert not sub.problem and any("nbformat 3" in n for n in sub.notes)
    heavy = nbformat.read(lab00.path, as_version=4)
    for cell in heavy.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 2**21)]
    assert not _read(_write(tmp_path / "heavy.ipynb", heavy)).problem  # 25+ MiB, all of it outputs
    big = nbformat.read(lab00.path, as_version=4)
    big.cells[0].source = "#" * (3 * 2**20)
    assert "of code and text" in _read(_write(tmp_path / "big.ipynb", big)).problem


def test_duplicated_ids_markdown_answers_and_added_cells_are_noted(tmp_path, lab00):
    nb = nbformat.read(lab00.path, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if c.id == "answer-data")
    copy = nbformat.v4.new_code_cell("df = 'first'")
    copy.id = "answer-data"
    nb.cells.insert(index, copy)
    nb.cells[index + 1].source = "df = 'last'"
    bundle = next(c for c in nb.cells if c.id == "answer-bundle")
    bundle.cell_type = "markdown"
    nb.cells.append(nbformat.v4.new_code_cell("def helper():\n    return 1"))
    path = tmp_path / "dup.ipynb"
    path.write_text(json.dumps(nb))  # raw: nbformat.write would renumber the duplicate
    sub = _read(path)
    rebuilt = submission.rebuild(lab00, sub)
    assert next(c for c in rebuilt.cells if c.id == "answer-data").source == "df = 'last'"
    text = " ".join(sub.notes)
    assert "2 cells have the id answer-data" in text and "markdown cell" in text and "were not run" in text


def test_unknown_lab_is_a_clear_error():
    with pytest.raises(ShipmlError, match="no lab 'lab99'"):
        submission.layout("lab99")
