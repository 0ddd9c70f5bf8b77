"""Answer keys: what the grader compares answers with, computed in the grader's process only.

The student's kernel can import ``shipml.checks`` (instant feedback) but not ``shipml.grading``: the
grading sandbox hides this folder. So everything a verdict is measured against — reference answers,
expected ids, scenario tables, parity expectations, reference computations — lives here, in one
module per lab, ``shipml.grading.keys.labNN``, exporting plain data and functions:

``EVALUATE``
    ``{question_id: evaluate(plain, ctx) -> (passed, message)}``: the strong evaluator of that
    question, on the same plain data the check cell exported (``checks.from_plain`` of the record).
    A question without an entry is judged by its ``Question.evaluate`` (the instant one).
``WARM`` (optional)
    ``WARM(seed) -> None`` computes the references of ``seed`` ahead (references are cached per
    process); the grader calls :func:`warm` once per run before any submission starts.

:func:`evaluate_answer` is what the grader calls per question; :func:`grade_answers` grades a whole
answers file (tests and ``make test`` use it to prove that solutions earn full marks).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from shipml import checks


def module(lab: str) -> ModuleType | None:
    """``shipml.grading.keys.<lab>``, or None when the lab has no keys (every question judged instantly)."""
    try:
        return importlib.import_module(f"{__name__}.{lab}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{lab}":
            return None
        raise


def evaluator(lab: str, question_id: str) -> checks.Evaluate | None:
    """The strong evaluator of one question, or None (the question's own evaluate is then used)."""
    keys = module(lab)
    return None if keys is None else getattr(keys, "EVALUATE", {}).get(question_id)


INSTANT_NOTE = " (grading "  # instant messages may end with a note on what grading adds: dropped here


def evaluate_answer(q: checks.Question, plain: Any, ctx: checks.Context) -> checks.Verdict:
    """The grader's verdict: ``checks.evaluate_answer`` with the strong evaluator of ``q`` when it has one."""
    verdict = checks.evaluate_answer(q, plain, ctx, evaluate=evaluator(ctx.lab, q.id))
    if INSTANT_NOTE in verdict.message:
        verdict.message = verdict.message.split(INSTANT_NOTE)[0]
    return verdict


def grade_answers(lab: str, answers: dict[str, Any], seed: int = 0) -> list[checks.Verdict]:
    """Grader verdicts for every question of ``lab`` from exported answers (missing ones: not answered)."""
    ctx = checks.Context(lab, seed)
    return [evaluate_answer(q, checks.from_plain(answers.get(q.id, checks.UNANSWERED)), ctx)
            for q in checks.questions(lab)]


def warm(lab: str, seed: int = 0) -> None:
    """Compute ``lab``'s references for ``seed`` now (before submissions run), if it has any."""
    keys = module(lab)
    fn = getattr(keys, "WARM", None) if keys else None
    if fn is not None:
        fn(seed)


def labs_with_keys() -> list[str]:
    """Every lab that has a keys module (so the grader can import them all before any submission runs)."""
    import pkgutil

    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("lab"))
