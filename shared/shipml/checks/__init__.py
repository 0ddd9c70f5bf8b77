"""Lab checks: instant, friendly feedback in the notebook, and verdicts nobody can forge.

A check cell calls ``check("question", answer)``. Two steps happen:

1. ``collect`` (in the student's kernel) turns the answer into *plain data* — numbers, strings,
   lists, dicts, numpy arrays — possibly by calling the student's function on inputs made from the
   seed. Plain data goes through JSON, so an object whose ``__eq__`` always says True cannot pass.
2. ``evaluate`` (pure) compares the plain data with what is expected and returns a :class:`Verdict`.

The notebook prints the verdict at once. When graded, the notebook also appends the plain data to an
answers file, and the grader runs ``evaluate`` again *in its own process*: what the notebook printed
does not count. A check never raises: a broken answer gives a message and a hint, not a traceback.

**Instant feedback and grading differ on purpose.** This package is importable from the student's
kernel, so it holds no answer key: ``Question.evaluate`` checks what can be checked without one (the
form of the answer, the behaviour observed while ``collect`` ran). The grader judges with the strong
evaluator of ``shipml.grading.keys.<lab>.EVALUATE[question]`` when there is one (reference answers,
expected ids, parity expectations, computed in the grader's process only; the grading sandbox hides
``shipml.grading`` from the kernel). Nothing here imports ``shipml.grading``.

Hints are shown after an attempt (a wrong answer or an error), never for an unanswered stub.
"""

from __future__ import annotations

import importlib
import json
import os
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

Status = Literal["pass", "fail", "error"]
UNANSWERED = {"__unanswered__": True}


@dataclass
class Verdict:
    question: str
    status: Status
    message: str
    hint: str = ""
    points: float = 0.0
    max_points: float = 0.0
    graded_later: bool = False  # instant feedback that cannot judge: no points printed, "graded later"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Context:
    """What a question may know besides the answer: the lab and the seed the grader injected."""

    lab: str
    seed: int = 0


@dataclass(frozen=True)
class Question:
    id: str
    points: float
    collect: Callable[[Any, Context], Any]
    evaluate: Callable[[Any, Context], tuple[bool, str]]
    hint: str = ""
    title: str = ""
    # False: the instant evaluate checks only the form of the answer (and what it can without a key), so a
    # passing answer is shown as "looks well-formed; graded later", never with points that read like a grade
    instant_judges: bool = True


class Unanswered(Exception):
    """Raised by a ``collect`` function when the answer is still the stub."""


def questions(lab: str) -> list[Question]:
    """The questions of ``lab`` (defined in ``shipml.checks.<lab>``)."""
    module = importlib.import_module(f"shipml.checks.{lab}")
    return list(module.QUESTIONS)


def find_question(lab: str, question_id: str) -> Question:
    for q in questions(lab):
        if q.id == question_id:
            return q
    known = ", ".join(q.id for q in questions(lab))
    raise KeyError(f"{lab} has no question '{question_id}' (it has: {known})")


# ---- plain data: what may cross from the student's kernel to the grader -------------------------

def to_plain(value: Any) -> Any:
    """Encode ``value`` as JSON-safe plain data; raise TypeError for anything else."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float) and type(value) in (int, float):
        return value if not isinstance(value, float) or np.isfinite(value) else {"__float__": str(value)}
    if isinstance(value, np.generic) and type(value).__module__ == "numpy":
        return to_plain(value.item())
    if type(value) is np.ndarray:
        if value.dtype.kind not in "biuf":
            raise TypeError(f"arrays of {value.dtype} are not plain data")
        return {"__ndarray__": [to_plain(v) for v in value.ravel().tolist()], "dtype": value.dtype.str,
                "shape": list(value.shape)}
    if type(value) in (list, tuple):
        return [to_plain(v) for v in value]
    if type(value) is dict:
        if not all(type(k) is str for k in value):
            raise TypeError("dict keys must be strings")
        return {k: to_plain(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} is not plain data (use numbers, strings, lists, dicts, arrays)")


def from_plain(value: Any) -> Any:
    if isinstance(value, list):
        return [from_plain(v) for v in value]
    if isinstance(value, dict):
        if "__ndarray__" in value:
            flat = [from_plain(v) for v in value["__ndarray__"]]
            return np.array(flat, dtype=np.dtype(value["dtype"])).reshape(value["shape"])
        if "__float__" in value:
            return float(value["__float__"])
        return {k: from_plain(v) for k, v in value.items()}
    return value


def roundtrip(value: Any) -> Any:
    """Through JSON and back: exactly what the grader will see."""
    return from_plain(json.loads(json.dumps(to_plain(value))))


# ---- evaluation (pure: runs in the notebook and again in the grader) ---------------------------

Evaluate = Callable[[Any, Context], tuple[bool, str]]


def evaluate_answer(q: Question, plain: Any, ctx: Context, evaluate: Evaluate | None = None) -> Verdict:
    """Turn plain data into a verdict; a crash in evaluation is an ``error``, never an exception.

    ``evaluate`` replaces ``q.evaluate`` (the grader passes its strong, key-holding evaluator). An
    unanswered stub gets no hint: hints are for attempts. An instant pass of a question whose instant
    evaluate cannot judge (``instant_judges=False``) is marked ``graded_later``: shown without points.
    """
    if isinstance(plain, dict) and plain.get("__unanswered__"):
        return Verdict(q.id, "fail", "not answered yet", "", 0.0, q.points)
    if isinstance(plain, dict) and "__error__" in plain:
        return Verdict(q.id, "error", str(plain["__error__"]), q.hint, 0.0, q.points)
    try:
        passed, message = (evaluate or q.evaluate)(plain, ctx)
    except Exception as exc:  # the answer had a shape evaluate did not expect
        return Verdict(q.id, "fail", f"the answer has an unexpected form ({type(exc).__name__}: {exc})",
                       q.hint, 0.0, q.points)
    return Verdict(q.id, "pass" if passed else "fail", message, "" if passed else q.hint,
                   q.points if passed else 0.0, q.points,
                   graded_later=bool(passed) and evaluate is None and not q.instant_judges)


def collect_answer(q: Question, answer: Any, ctx: Context) -> Any:
    """Run ``collect`` in the student's kernel; failures become plain error records."""
    if answer is None or answer is Ellipsis:
        return UNANSWERED
    try:
        return to_plain(q.collect(answer, ctx))
    except (Unanswered, NotImplementedError):
        return UNANSWERED
    except (Exception, SystemExit) as exc:  # exit() in an answer is an error, not a dead cell;
        return {"__error__": who_raised(exc)}  # KeyboardInterrupt (the grader's cell timeout) propagates


_KIT = str(Path(__file__).resolve().parent.parent)  # the shipml package folder
_CHECKS = str(Path(__file__).resolve().parent)


def _is_library(filename: str) -> bool:
    return (filename.startswith(_KIT) or "site-packages" in filename or "dist-packages" in filename
            or filename.startswith("<frozen") or "/lib/python3" in filename)


def who_raised(exc: BaseException) -> str:
    """Say whose code raised ``exc``: the student's, the kit's (called from the student's code), or the
    check's own handling of the answer — so a BundleError from the kit is not "your code raised"."""
    frames = traceback.extract_tb(exc.__traceback__)
    text = f"{type(exc).__name__}: {str(exc)[:300]}"
    student = [f for f in frames if not _is_library(f.filename)]
    if not student:  # nothing of the student's ran: the check could not use the answer as given
        return f"the check could not use your answer ({text})"
    last = student[-1]
    raiser = frames[-1]
    if raiser is last:
        return f"your code raised {text} (your line {last.lineno})"
    where = "the kit" if raiser.filename.startswith(_KIT) else "a library"
    if where == "the kit":
        name = ".".join(Path(raiser.filename).relative_to(_KIT).with_suffix("").parts)
    else:
        parts = Path(raiser.filename).parts
        top = next((parts[i + 1] for i, part in enumerate(parts[:-1]) if part.endswith("-packages")), parts[-1])
        name = Path(top).stem
    return (f"{where} ({name}.{raiser.name}) raised {text}, called from your line {last.lineno}: "
            "read the message, it is about what your code passed or did")


def grade_answers(lab: str, answers: dict[str, Any], seed: int = 0) -> list[Verdict]:
    """Instant-feedback verdicts for every question of ``lab`` from exported answers (missing ones: not
    answered). The grader's verdicts come from ``shipml.grading.keys.grade_answers``."""
    ctx = Context(lab, seed)
    return [evaluate_answer(q, from_plain(answers.get(q.id, UNANSWERED)), ctx) for q in questions(lab)]


def load_answers(path: str | Path) -> dict[str, Any]:
    """Read an answers file (JSON lines); the last answer to a question counts."""
    answers: dict[str, Any] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            answers[record["question"]] = record["answer"]
    return answers


# ---- the notebook side ------------------------------------------------------------------------

@dataclass
class _Session:
    lab: str
    seed: int
    answers_path: Path | None


_session: _Session | None = None


def start(lab: str, seed: int = 0, answers_path: str | Path | None = None) -> None:
    """Begin a lab: remember the seed and, when graded, where to export answers.

    ``SHIPML_ANSWERS_DIR`` (set by ``make test``) exports to ``<dir>/<lab>.jsonl`` when no path is given.
    """
    global _session
    if answers_path is None and os.environ.get("SHIPML_ANSWERS_DIR"):
        answers_path = Path(os.environ["SHIPML_ANSWERS_DIR"]) / f"{lab}.jsonl"
    path = Path(answers_path) if answers_path else None
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    _session = _Session(lab, int(seed), path)
    qs = questions(lab)
    print(f"{lab}: {len(qs)} questions, {sum(q.points for q in qs):g} points. "
          "Run each check cell after your answer; it tells you what is wrong and gives a hint.")


def check(question_id: str, answer: Any) -> None:
    """Check one answer and print a friendly verdict. Never raises."""
    try:
        verdict = _check(question_id, answer)
    except (Exception, SystemExit) as exc:  # a bug in a question must not become a student's traceback
        print(f"⚠️  {question_id}: the checker itself failed ({type(exc).__name__}: {exc}); "
              "tell your instructor")
        return
    print(format_verdict(verdict))


def _check(question_id: str, answer: Any) -> Verdict:
    if _session is None:
        return Verdict(question_id, "error", "run the setup cell at the top of the lab first (checks.start)")
    q = find_question(_session.lab, question_id)
    ctx = Context(_session.lab, _session.seed)
    plain = collect_answer(q, answer, ctx)
    if _session.answers_path:
        with open(_session.answers_path, "a") as f:
            f.write(json.dumps({"question": q.id, "answer": plain}) + "\n")
    return evaluate_answer(q, from_plain(plain), ctx)


def format_verdict(v: Verdict) -> str:
    if v.graded_later:
        return (f"☑️  {v.question}: looks well-formed; graded later ({v.max_points:g} points) — {v.message}")
    mark = {"pass": "✅", "fail": "❌", "error": "💥"}[v.status]
    text = f"{mark} {v.question} ({v.points:g}/{v.max_points:g}): {v.message}"
    if v.hint:
        text += f"\n   hint: {v.hint}"
    return text
