"""Judging worker reports in the grader's process: only check cells export answers; statuses; reports."""

from __future__ import annotations

import csv
import json

import pytest
from shipml.grading import hidden, report, verdicts
from shipml.grading.runner import WorkerRun

GOOD_REFUSAL = json.dumps({"question": "refusal", "answer": "x: model.joblib does not match its sha256"})


@pytest.fixture(autouse=True)
def plain_evaluator(monkeypatch):
    """These tests are about *which* answers count; the answer keys' own verdicts are tests/test_checks.py's.
    Here an answer passes when it is the string above (no reference model is trained)."""
    from shipml import checks

    def evaluate(q, plain, ctx):
        if isinstance(plain, dict) and plain.get("__unanswered__"):
            return checks.Verdict(q.id, "fail", "not answered yet", "", 0.0, q.points)
        ok = isinstance(plain, str) and "model.joblib" in plain
        return checks.Verdict(q.id, "pass" if ok else "fail", "ok" if ok else "wrong", "", q.points * ok, q.points)

    monkeypatch.setattr(verdicts, "evaluate", evaluate)


def _run(lab, records=None, stop_at=None, halt=None, errors=None, wall=False):
    """Worker events for lab00 as if every code cell ran; ``records`` maps cell id -> answer lines."""
    unanswered = {c.id: [json.dumps({"question": c.id.removeprefix("check-"), "answer": {"__unanswered__": True}})]
                  for c in lab.notebook.cells if "check" in c.metadata.get("tags", [])}
    records, errors = {**unanswered, **(records or {})}, errors or {}
    events = [{"event": "limits", "limits": {}}]
    for i, cell in enumerate(lab.notebook.cells):
        if cell.cell_type != "code":
            continue
        events.append({"event": "start", "index": i, "id": cell.id})
        if cell.id == stop_at:
            if halt:
                events.append({"event": "cell", "index": i, "id": cell.id, "status": "none", "records": []})
                events.append({"event": "halt", "index": i, "id": cell.id, **halt})
            break
        ename = errors.get(cell.id, "")
        events.append({"event": "cell", "index": i, "id": cell.id, "status": "error" if ename else "ok",
                       "ename": ename, "evalue": "boom" if ename else "", "records": records.get(cell.id, []),
                       "problems": []})
    else:
        events.append({"event": "done"})
    return WorkerRun(events, wall_timeout=wall, returncode=0 if not wall else -9, seconds=1.0, wall_limit=60)


def _status(result):
    return {q.id: (q.status, q.points) for q in result.questions}


def test_answer_counts_only_from_its_check_cell(lab00):
    ok = verdicts.judge(lab00, "s", _run(lab00, {"check-refusal": [GOOD_REFUSAL]}), 0)
    assert _status(ok)["refusal"] == ("pass", 1) and ok.status == "ok"
    forged = verdicts.judge(lab00, "s", _run(lab00, {"answer-refusal": [GOOD_REFUSAL]}), 0)
    assert _status(forged)["refusal"] == ("fail", 0.0) and forged.status == "tampered"
    silent = verdicts.judge(lab00, "s", _run(lab00, {"check-refusal": []}), 0)
    assert _status(silent)["refusal"] == ("error", 0.0) and silent.status == "tampered"
    twice = verdicts.judge(lab00, "s", _run(lab00, {"check-refusal": [GOOD_REFUSAL, GOOD_REFUSAL]}), 0)
    assert _status(twice)["refusal"][0] == "error" and twice.status == "tampered"
    other = verdicts.judge(lab00, "s", _run(lab00, {"check-proba": [GOOD_REFUSAL]}), 0)
    assert _status(other)["proba"][0] == "error"


def test_pickles_and_garbage_are_not_answers(lab00):
    for line in ['{"question": "refusal", "answer": {"__pickle__": "gASV"}}', "not json", "[" * 100_000,
                 '{"question": "refusal"}']:
        result = verdicts.judge(lab00, "s", _run(lab00, {"check-refusal": [line]}), 0)
        assert _status(result)["refusal"][1] == 0


def test_halt_statuses(lab00):
    exited = verdicts.judge(lab00, "s", _run(lab00, stop_at="answer-proba",
                                             halt={"kind": "died", "returncode": 1}), 0)
    assert exited.status == "exited"
    assert [q.status for q in exited.questions] == ["fail", "fail", "exited", "not_run"]
    died = verdicts.judge(lab00, "s", _run(lab00, stop_at="answer-bundle",
                                           halt={"kind": "died", "returncode": -9}), 0)
    assert died.status == "kernel_died" and "signal 9" in died.detail
    assert [q.status for q in died.questions] == ["fail", "kernel_died", "not_run", "not_run"]
    wall = verdicts.judge(lab00, "s", _run(lab00, stop_at="answer-refusal", wall=True), 0)
    assert wall.status == "timeout" and [q.status for q in wall.questions][-1] == "timeout"


def test_student_errors_are_errors_not_crashes(lab00):
    result = verdicts.judge(lab00, "s", _run(lab00, errors={"answer-refusal": "SyntaxError"}), 0)
    q = result.questions[-1]
    assert (q.status, q.points) == ("error", 0.0) and "SyntaxError" in q.message
    sysexit = verdicts.judge(lab00, "s", _run(lab00, errors={"answer-refusal": "SystemExit"}), 0)
    assert sysexit.questions[-1].status == "exited" and sysexit.status == "exited"


def _hidden_file(tmp_path):
    path = tmp_path / "hidden.py"
    path.write_text(
        "from shipml.grading.hidden import HiddenCheck\n"
        "def names_file(answers, ctx):\n    return 'model.joblib' in answers['refusal'], 'SECRET-42'\n"
        "def needs_proba(answers, ctx):\n    return answers['proba'] is not None, 'SECRET-43'\n"
        "HIDDEN = [HiddenCheck('file', 2, names_file, 'names the file'), needs_proba]\n")
    return hidden.load_hidden(path)


def test_hidden_checks_score_but_never_leak(lab00, tmp_path):
    checks_ = _hidden_file(tmp_path)
    result = verdicts.judge(lab00, "s", _run(lab00, {"check-refusal": [GOOD_REFUSAL]}), 0, checks_)
    assert [(h.id, h.status, h.points) for h in result.hidden] == [("file", "pass", 2), ("needs_proba", "not_run", 0)]
    assert result.total == 3 and result.max_total == 5 + 3
    text = report.feedback_markdown(result)
    assert "hidden check 1" in text and "SECRET" not in text and "names the file" not in text


def test_gradebook_rows_are_replaced_not_duplicated(lab00, tmp_path):
    book = tmp_path / "gradebook.csv"
    first = verdicts.judge(lab00, "amy", _run(lab00), 0)
    report.write_gradebook(book, [first, verdicts.judge(lab00, "bo", _run(lab00), 0)])
    better = verdicts.judge(lab00, "amy", _run(lab00, {"check-refusal": [GOOD_REFUSAL]}), 0)
    report.write_gradebook(book, [better])
    rows = list(csv.DictReader(book.open()))
    assert [(r["student"], r["total"]) for r in rows] == [("amy", "1"), ("bo", "0")]


def test_arrays_of_plain_dtypes_only(lab00):
    import tracemalloc

    bomb = json.dumps({"question": "proba", "answer": {"__ndarray__": [0.0], "dtype": "(190000000,)f8",
                                                        "shape": [1]}})
    tracemalloc.start()
    result = verdicts.judge(lab00, "s", _run(lab00, {"check-proba": [bomb]}), 0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2**20  # the sub-array dtype was refused, not allocated (1.5 GB)
    assert _status(result)["proba"] == ("error", 0.0) and result.status == "tampered"
    for answer in [{"__ndarray__": [1] * 10, "dtype": "<f8", "shape": [10**9]},
                   {"__ndarray__": ["a"], "dtype": "<U1", "shape": [1]},
                   {"__ndarray__": [0.0], "dtype": "O", "shape": [1]}]:
        line = json.dumps({"question": "proba", "answer": answer})
        assert _status(verdicts.judge(lab00, "s", _run(lab00, {"check-proba": [line]}), 0))["proba"][0] == "error"


def test_names_that_look_like_formulas_are_escaped(lab00, tmp_path):
    book = tmp_path / "gradebook.csv"
    report.write_gradebook(book, [verdicts.judge(lab00, "=HYPERLINK(1)", _run(lab00), 0),
                                  verdicts.judge(lab00, "+1", _run(lab00), 0)])
    report.write_gradebook(book, [verdicts.judge(lab00, "=HYPERLINK(1)", _run(lab00), 0)])
    students = [r["student"] for r in csv.DictReader(book.open())]
    assert students == ["'+1", "'=HYPERLINK(1)"]


def test_a_worker_that_fails_says_why(lab00):
    run = WorkerRun([], returncode=1, seconds=1.0, wall_limit=60, log_tail="ModuleNotFoundError: No module named x")
    result = verdicts.judge(lab00, "s", run, 0)
    assert result.status == "grader_error" and "No module named x" in result.detail
