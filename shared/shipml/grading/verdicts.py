"""From what the worker reported to a status and points for every question — in the grader's process.

An answer counts only if it was written *by the check cell of its question* (the worker attributes every
line of the answers file to the cell during which it appeared) and it parses as plain JSON data. The
verdict is then ``checks.evaluate_answer`` run here, never what the notebook printed.

Question statuses: ``pass``, ``fail``, ``error`` (the student's code raised, or the answer could not be
used), ``timeout`` (a cell ran past ``--timeout`` or the notebook past the wall clock), ``exited``
(``sys.exit``/``os._exit``), ``kernel_died`` (killed by a signal: memory, segfault), ``not_run`` (the
notebook stopped before this question, or the submission could not be read).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from shipml import checks
from shipml.grading import keys
from shipml.grading import plain as plain_data
from shipml.grading.hidden import run_hidden
from shipml.grading.results import QUESTION_STATUSES, SUBMISSION_STATUSES, QuestionResult, SubmissionResult
from shipml.grading.runner import WorkerRun
from shipml.grading.submission import LabLayout

__all__ = ["QUESTION_STATUSES", "SUBMISSION_STATUSES", "QuestionResult", "SubmissionResult", "answer_keys",
           "evaluate", "judge", "not_graded"]


def not_graded(student: str, lab: str, layout: LabLayout, status: str, detail: str, hidden=(),
               notes: list[str] | None = None) -> SubmissionResult:
    """Every question ``not_run``: the submission could not be read, or is for another lab."""
    qs = [QuestionResult(q.id, q.title or q.id, "not_run", 0.0, q.points, detail) for q in checks.questions(lab)]
    hs = [QuestionResult(h.id, h.title or h.id, "not_run", 0.0, h.points, detail, hidden=True) for h in hidden]
    return SubmissionResult(student, lab, status, detail, qs, hs, list(notes or []))


def answer_keys(lab: str):
    """``shipml.grading.keys.<lab>`` (grader-only answer keys), or None when the lab has none."""
    return keys.module(lab)


def evaluate(q: checks.Question, plain: Any, ctx: checks.Context) -> checks.Verdict:
    """The grader's verdict: the answer key's strong evaluator when the lab has one, else the question's own."""
    return keys.evaluate_answer(q, plain, ctx)


def _halt(run: WorkerRun) -> tuple[int | None, str, str]:
    """(cell index, status, detail) where the notebook stopped, or (None, '', '') if it ran to the end."""
    started = [e["index"] for e in run.events if e.get("event") == "start"]
    finished = {e["index"] for e in run.events if e.get("event") == "cell"}
    halt = next((e for e in run.events if e.get("event") == "halt"), None)
    done = any(e.get("event") == "done" for e in run.events)
    running = started[-1] if started and started[-1] not in finished else None
    if run.wall_timeout:
        return (running if running is not None else (started[-1] + 1 if started else 0), "timeout",
                f"the notebook ran past the wall-clock limit ({run.wall_limit:g}s) and was killed")
    if halt and halt.get("kind") == "grader":
        return -1, "grader_error", f"the notebook could not be run: {halt.get('detail', '')}"
    if halt:
        rc = halt.get("returncode")
        if halt.get("kind") == "timeout":
            return halt["index"], "timeout", "a cell ran past the time limit"
        if isinstance(rc, int) and rc >= 0:
            return halt["index"], "exited", f"the kernel exited (exit code {rc}): sys.exit/os._exit stops grading"
        why = f"signal {-rc}" if isinstance(rc, int) else "unknown cause"
        return halt["index"], "kernel_died", f"the kernel died ({why}): too much memory, or a crash"
    if not done and not started:
        last = f": {run.log_tail}" if run.log_tail else ""
        return -1, "grader_error", f"the grading worker failed before running a cell (exit {run.returncode}){last}"
    if not done:
        index = running if running is not None else (started[-1] + 1 if started else 0)
        last = f": {run.log_tail}" if run.log_tail else ""
        return index, "kernel_died", f"the grading process stopped unexpectedly (exit {run.returncode}){last}"
    return None, "", ""


def _parse_record(line: str) -> tuple[str | None, Any, str]:
    try:
        record = json.loads(line)
        if not isinstance(record, dict) or set(record) != {"question", "answer"}:
            return None, None, "an answer record of the wrong shape"
        return str(record["question"]), plain_data.decode(record["answer"]), ""
    except plain_data.NotPlain as exc:
        return None, None, f"an answer that is not plain data: {exc}"
    except (ValueError, TypeError, RecursionError, KeyError, MemoryError) as exc:
        return None, None, f"an unreadable answer record ({type(exc).__name__})"


def _by_lab_index(lab: LabLayout, run: WorkerRun) -> WorkerRun:
    """Events re-indexed by the position of their cell (matched by id) in the instructor's lab.

    Papermill inserts an ``injected-parameters`` cell; it is the grader's code and has no lab index.
    """
    where = {cell.id: i for i, cell in enumerate(lab.notebook.cells)}
    events = []
    for e in run.events:
        if "index" in e and e.get("index", -1) >= 0:
            if e.get("id") not in where:
                if e.get("event") == "halt":  # the grader's own cell: treat as before the first question
                    events.append({**e, "index": 0})
                continue
            e = {**e, "index": where[e["id"]]}
        events.append(e)
    return replace(run, events=events)


@dataclass
class _Tally:
    """What judging one run collects besides the question results."""

    tampered: list[str] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)  # plain answers for the hidden checks


def _cell_problems(lab: LabLayout, cells: dict[int, dict]) -> list[str]:
    out: list[str] = []
    for index, event in sorted(cells.items()):
        out += [f"cell {index}: {p}" for p in event.get("problems", [])]
        if event.get("records") and index not in lab.check_cells:
            out.append(f"cell {index} (not a check cell) wrote {len(event['records'])} answer record(s)")
    return out


def _answer_cells_failed(q: checks.Question, segment: list[dict], base: dict) -> QuestionResult | None:
    """The result when the student's own cells of this question raised, timed out or exited."""
    raised = next((e for e in segment if e.get("status") in ("error", "timeout")), None)
    if raised is None:
        return None
    if raised["status"] == "timeout":
        return QuestionResult(status="timeout", message="your cell ran past the time limit and was interrupted",
                              hint=q.hint, **base)
    if raised.get("ename") == "SystemExit":
        return QuestionResult(status="exited", message="your cell called sys.exit(); nothing was checked",
                              hint=q.hint, **base)
    return QuestionResult(status="error", message=f"your code raised {raised.get('ename')}: "
                          f"{raised.get('evalue', '')}"[:300], hint=q.hint, **base)


def _from_check_cell(q: checks.Question, check: dict, base: dict, ctx: checks.Context, tally: _Tally
                     ) -> QuestionResult:
    """The verdict on the one answer the question's check cell exported."""
    records = check.get("records", [])
    if len(records) != 1:
        message = ("no answer was exported: the check did not run as written" if not records
                   else f"the check cell exported {len(records)} answers instead of one")
        if records or check.get("status") == "ok":
            tally.tampered.append(f"question {q.id}: {message}")
        return QuestionResult(status="error", message=message, hint=q.hint, **base)
    question, plain, problem = _parse_record(records[0])
    if problem or question != q.id:
        tally.tampered.append(f"question {q.id}: {problem or f'the record answers {question!r}'}")
        return QuestionResult(status="error", message=problem or "the exported answer is for another question",
                              hint=q.hint, **base)
    verdict = evaluate(q, plain, ctx)
    if verdict.status == "pass" or verdict.message != "not answered yet" and verdict.status != "error":
        tally.answers[q.id] = plain
    return QuestionResult(q.id, q.title or q.id, verdict.status, verdict.points, q.points, verdict.message,
                          verdict.hint)


def _question(lab: LabLayout, q: checks.Question, cells: dict[int, dict], halt: tuple, ctx: checks.Context,
              tally: _Tally) -> QuestionResult:
    halt_index, halt_status, halt_detail = halt
    first, last = lab.segment(q.id)
    check_index = next(i for i, qid in lab.check_cells.items() if qid == q.id)
    base = dict(id=q.id, title=q.title or q.id, points=0.0, max_points=q.points)
    if halt_index is not None and halt_index < first:
        return QuestionResult(status="not_run", message="the notebook stopped before this question", **base)
    if halt_index is not None and first <= halt_index <= last:
        return QuestionResult(status=halt_status, message=halt_detail, hint=q.hint, **base)
    segment = [cells[i] for i in range(first, last + 1) if i in cells and i != check_index]
    return _answer_cells_failed(q, segment, base) or _from_check_cell(q, cells.get(check_index, {}), base, ctx,
                                                                        tally)


def _overall(results: list[QuestionResult], halt: tuple, tampered: list[str]) -> tuple[str, str]:
    _, halt_status, halt_detail = halt
    if halt_status:
        return halt_status, halt_detail
    first_bad = next((r for r in results if r.status in ("timeout", "exited")), None)
    if first_bad:
        return first_bad.status, f"{first_bad.id}: {first_bad.message}"
    if tampered:
        return "tampered", "; ".join(tampered)[:500]
    return "ok", ""


def judge(lab: LabLayout, student: str, run: WorkerRun, seed: int, hidden=()) -> SubmissionResult:
    """Statuses and points for every question of ``lab`` from one worker run."""
    run = _by_lab_index(lab, run)
    cells = {e["index"]: e for e in run.events if e.get("event") == "cell"}
    halt = _halt(run)
    if halt[1] == "grader_error":
        return not_graded(student, lab.lab, lab, "grader_error", halt[2], hidden)
    tally = _Tally(tampered=_cell_problems(lab, cells))
    ctx = checks.Context(lab.lab, seed)
    results = [_question(lab, q, cells, halt, ctx, tally) for q in checks.questions(lab.lab)]
    hidden_results = run_hidden(hidden, tally.answers, ctx)
    status, detail = _overall(results, halt, tally.tampered)
    notes = []
    dropped = sum(e.get("dropped", 0) for e in cells.values())
    if dropped:
        notes.append(f"{dropped:,} bytes of output were dropped from the executed notebook")
    return SubmissionResult(student, lab.lab, status, detail, results, hidden_results, notes + tally.tampered,
                            run.seconds)
