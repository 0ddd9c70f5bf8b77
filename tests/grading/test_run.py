"""The grading run around the sandbox (no kernel: the worker's run is replaced by a recorded one):
relative paths as typed, a gradebook written row by row, a kit that changes stops judging, a batch
that mostly failed exits non-zero, ``--sandbox none`` warns, labs needing a cluster refuse a sandbox."""

from __future__ import annotations

import csv

import nbformat
import pytest
from shipml.cli import main
from shipml.errors import ShipmlError
from shipml.grading import kit, run, submission
from shipml.grading.runner import WorkerRun


def _done(lab, sub, out, settings, box, uids) -> WorkerRun:
    """A worker that ran nothing but finished cleanly (every question then fails: not answered)."""
    assert out.is_absolute() and sub.path.is_absolute()
    return WorkerRun([{"event": "done"}], returncode=0, seconds=0.1, wall_limit=60)


def _crashed(lab, sub, out, settings, box, uids) -> WorkerRun:
    return WorkerRun([], returncode=1, seconds=0.1, wall_limit=60, log_tail="ImportError: no module named papermill")


def _subs(folder, n=3):
    folder.mkdir()
    lab = nbformat.read(submission.lab_notebook("lab00"), as_version=4)
    for i in range(n):
        nbformat.write(lab, folder / f"s{i}.ipynb")


def _rows(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_relative_paths_from_where_you_stand(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run, "_run_one", _done)
    monkeypatch.chdir(tmp_path)
    _subs(tmp_path / "submissions")
    assert main(["grade", "lab00", "submissions/", "--out", "grades/", "--jobs", "2", "--sandbox", "none"]) == 0
    assert "unsafe" in capsys.readouterr().err
    rows = _rows(tmp_path / "grades" / "gradebook.csv")
    assert [(r["student"], r["status"]) for r in rows] == [("s0", "ok"), ("s1", "ok"), ("s2", "ok")]


def test_most_rows_failing_exits_non_zero_with_the_last_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run, "_run_one", _crashed)
    _subs(tmp_path / "subs")
    assert main(["grade", "lab00", str(tmp_path / "subs"), "--out", str(tmp_path / "o"), "--sandbox", "none"]) == 1
    assert "kernel_died/grader_error" in capsys.readouterr().err
    rows = _rows(tmp_path / "o" / "gradebook.csv")
    assert all(r["status"] == "grader_error" and "no module named papermill" in r["detail"] for r in rows)


def test_a_kit_that_changes_stops_judging(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run, "_run_one", _done)
    real = kit.fingerprint
    calls = []

    def fingerprint(**kwargs):
        calls.append(1)
        found = real(**kwargs)
        return found if len(calls) == 1 else {**found, "shipml/checks/__init__.py": "edited"}

    monkeypatch.setattr(kit, "fingerprint", fingerprint)
    _subs(tmp_path / "subs")
    assert main(["grade", "lab00", str(tmp_path / "subs"), "--out", str(tmp_path / "o"), "--sandbox", "none",
                 "--jobs", "1"]) == 1
    assert "changed while grading" in capsys.readouterr().err
    rows = _rows(tmp_path / "o" / "gradebook.csv")
    assert len(rows) == 3 and all(r["status"] == "grader_error" and "shipml/checks/__init__.py" in r["detail"]
                                  for r in rows)


def test_rows_are_written_as_they_finish(tmp_path, monkeypatch):
    from shipml.grading import verdicts

    seen, judge = [], verdicts.judge

    def watching(lab, student, worker_run, seed, hidden=()):
        book = tmp_path / "o" / "gradebook.csv"
        seen.append(len(_rows(book)) if book.exists() else 0)  # rows already on disk when this one is judged
        return judge(lab, student, worker_run, seed, hidden)

    monkeypatch.setattr(run, "_run_one", _done)
    monkeypatch.setattr(verdicts, "judge", watching)
    _subs(tmp_path / "subs")
    run.grade("lab00", tmp_path / "subs", tmp_path / "o", run.GradeOptions(sandbox="none", jobs=1), progress=False)
    assert seen == [0, 1, 2]


def test_a_lab_that_needs_a_cluster_refuses_a_sandbox(tmp_path):
    if not submission.layout("lab04").requires():
        pytest.skip("lab04 declares no requirement")
    _subs(tmp_path / "subs", 1)
    with pytest.raises(ShipmlError, match="--sandbox none"):
        run.grade("lab04", tmp_path / "subs", tmp_path / "o", run.GradeOptions(sandbox="auto"), progress=False)


def test_every_grader_module_is_imported_up_front():
    names = kit.preimport()
    assert "shipml.grading.verdicts" in names and "shipml.checks.lab00" in names
