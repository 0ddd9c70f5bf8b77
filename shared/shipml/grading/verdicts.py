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
from dataclasses import asdict, dataclass, field
from typing import Any

from shipml import checks
from shipml.grading import keys
from shipml.grading.sandbox import WorkerRun
from shipml.grading.submission import LabLayout

QUESTION_STATUSES = ("pass", "fail", "error", "timeout", "not_run", "kernel_died", "exited")
SUBMISSION_STATUSES = ("ok", "tampered", "timeout", "exited", "kernel_died", "invalid", "wrong_lab", "grader_error")


@dataclass
class QuestionResult:
    id: str
    title: str
    status: str
    points: float
    max_points: float
    message: str = ""
    hint: str = ""
    hidden: bool = False


@dataclass
class SubmissionResult:
    student: str
    lab: str
    status: str
    detail: str = ""
    questions: list[QuestionResult] = field(default_factory=list)
    hidden: list[QuestionResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(q.points for q in self.questions + self.hidden)

    @property
    def max_total(self) -> float:
        return sum(q.max_points for q in self.questions + self.hidden)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total, "max_total": self.max_total}


def not_graded(student: str, lab: str, layout: LabLayout, status: str, detail: str, hidden=()) -> SubmissionResult:
    """Every question ``not_run``: the submission could not be read, or is for another lab."""
    qs = [QuestionResult(q.id, q.title or q.id, "not_run", 0.0, q.points, detail) for q in checks.questions(lab)]
    hs = [QuestionResult(h.id, h.title or h.id, "not_run", 0.0, h.points, detail, hidden=True) for h in hidden]
    return SubmissionResult(student, lab, status, detail, qs, hs)


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
    if not done:
        index = running if running is not None else (started[-1] + 1 if started else 0)
        return index, "kernel_died", f"the grading process stopped unexpectedly (exit {run.returncode})"
    return None, "", ""


def _parse_record(line: str) -> tuple[str | None, Any, str]:
    try:
        record = json.loads(line)
        if not isinstance(record, dict) or set(record) != {"question", "answer"}:
            return None, None, "an answer record of the wrong shape"
        return str(record["question"]), checks.from_plain(record["answer"]), ""
    except (ValueError, TypeError, RecursionError, KeyError) as exc:
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
    return WorkerRun(events, run.wall_timeout, run.returncode, run.seconds, run.killed_groups, run.wall_limit)


def judge(lab: LabLayout, student: str, run: WorkerRun, seed: int, hidden=()) -> SubmissionResult:
    """Statuses and points for every question of ``lab`` from one worker run."""
    run = _by_lab_index(lab, run)
    cells = {e["index"]: e for e in run.events if e.get("event") == "cell"}
    halt_index, halt_status, halt_detail = _halt(run)
    if halt_status == "grader_error":
        return not_graded(student, lab.lab, lab, "grader_error", halt_detail, hidden)
    notes: list[str] = []
    tampered: list[str] = []
    for index, event in sorted(cells.items()):
        tampered += [f"cell {index}: {p}" for p in event.get("problems", [])]
        if event.get("records") and index not in lab.check_cells:
            tampered.append(f"cell {index} (not a check cell) wrote {len(event['records'])} answer record(s)")
    ctx = checks.Context(lab.lab, seed)
    results: list[QuestionResult] = []
    plain_answers: dict[str, Any] = {}
    check_of = {q: i for i, q in lab.check_cells.items()}
    for q in checks.questions(lab.lab):
        first, last = lab.segment(q.id)
        base = dict(id=q.id, title=q.title or q.id, points=0.0, max_points=q.points)
        if halt_index is not None and halt_index < first:
            results.append(QuestionResult(status="not_run", message="the notebook stopped before this question",
                                          **base))
            continue
        if halt_index is not None and first <= halt_index <= last:
            results.append(QuestionResult(status=halt_status, message=halt_detail, hint=q.hint, **base))
            continue
        segment = [cells.get(i) for i in range(first, last + 1) if i in cells and i != check_of[q.id]]
        raised = next((e for e in segment if e.get("status") in ("error", "timeout")), None)
        if raised and raised["status"] == "timeout":
            results.append(QuestionResult(status="timeout", message="your cell ran past the time limit and was "
                                          "interrupted", hint=q.hint, **base))
            continue
        if raised and raised.get("ename") == "SystemExit":
            results.append(QuestionResult(status="exited", message="your cell called sys.exit(); nothing was "
                                          "checked", hint=q.hint, **base))
            continue
        if raised:
            results.append(QuestionResult(status="error", message=f"your code raised {raised.get('ename')}: "
                                          f"{raised.get('evalue', '')}"[:300], hint=q.hint, **base))
            continue
        check = cells.get(check_of[q.id], {})
        records = check.get("records", [])
        if len(records) != 1:
            message = ("no answer was exported: the check did not run as written" if not records
                       else f"the check cell exported {len(records)} answers instead of one")
            if records or check.get("status") == "ok":
                tampered.append(f"question {q.id}: {message}")
            results.append(QuestionResult(status="error", message=message, hint=q.hint, **base))
            continue
        question, plain, problem = _parse_record(records[0])
        if problem or question != q.id:
            tampered.append(f"question {q.id}: {problem or f'the record answers {question!r}'}")
            results.append(QuestionResult(status="error", message=problem or "the exported answer is for another "
                                          "question", hint=q.hint, **base))
            continue
        verdict = keys.evaluate_answer(q, plain, ctx)  # the strong, key-holding evaluator when the lab has one
        if verdict.status == "pass" or verdict.message != "not answered yet" and verdict.status != "error":
            plain_answers[q.id] = plain
        results.append(QuestionResult(q.id, q.title or q.id, verdict.status, verdict.points, q.points,
                                      verdict.message, verdict.hint))
    from shipml.grading.hidden import run_hidden

    hidden_results = run_hidden(hidden, plain_answers, ctx)
    if halt_status:
        status, detail = halt_status, halt_detail
    elif any(r.status in ("timeout", "exited") for r in results):
        first_bad = next(r for r in results if r.status in ("timeout", "exited"))
        status, detail = first_bad.status, f"{first_bad.id}: {first_bad.message}"
    elif tampered:
        status, detail = "tampered", "; ".join(tampered)[:500]
    else:
        status, detail = "ok", ""
    dropped = sum(e.get("dropped", 0) for e in cells.values())
    if dropped:
        notes.append(f"{dropped:,} bytes of output were dropped from the executed notebook")
    return SubmissionResult(student, lab.lab, status, detail, results, hidden_results, notes + tampered,
                            run.seconds)
