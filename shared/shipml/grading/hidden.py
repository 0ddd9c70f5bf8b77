"""Hidden checks: instructor-only verdicts over the exported plain answers, run in the grader's process.

A hidden-checks file is plain Python that the *grader* imports (``shipml grade ... --hidden PATH``);
it never enters the student's kernel and its messages never reach the student's feedback. It defines
``HIDDEN``, a list whose items are either :class:`HiddenCheck` objects or plain functions
``name(answers, ctx) -> (passed, message)`` (worth 1 point each)::

    from shipml.grading.hidden import HiddenCheck

    def proba_not_constant(answers, ctx):
        p = answers["proba"]              # the plain answer of question "proba" (a numpy array)
        return float(p.std()) > 0, f"std {p.std():.3g}"

    HIDDEN = [HiddenCheck("proba_spread", 1, proba_not_constant, "probabilities vary"), ...]

``answers`` maps question ids to the plain data exported by *check cells that ran* (pass or fail); a
hidden check that needs an answer the student did not give is ``not_run``.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipml import checks
from shipml.errors import ShipmlError
from shipml.grading.results import QuestionResult


@dataclass(frozen=True)
class HiddenCheck:
    id: str
    points: float
    evaluate: Callable[[dict[str, Any], checks.Context], tuple[bool, str]]
    title: str = ""


def load_hidden(path: Path | None) -> list[HiddenCheck]:
    """Import ``path`` and return its ``HIDDEN`` checks (an empty list without a path)."""
    if path is None:
        return []
    path = Path(path)
    if not path.is_file():
        raise ShipmlError(f"hidden checks file {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"shipml_hidden_{abs(hash(str(path.resolve())))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ShipmlError(f"hidden checks file {path} failed to import: {type(exc).__name__}: {exc}") from exc
    items = getattr(module, "HIDDEN", None)
    if not isinstance(items, Sequence) or not items:
        raise ShipmlError(f"hidden checks file {path} must define HIDDEN = [HiddenCheck(...) or functions]")
    out: list[HiddenCheck] = []
    for item in items:
        if isinstance(item, HiddenCheck):
            out.append(item)
        elif inspect.isfunction(item):
            out.append(HiddenCheck(item.__name__, 1.0, item, (item.__doc__ or "").strip().split("\n")[0]))
        else:
            raise ShipmlError(f"hidden checks file {path}: {item!r} is neither a HiddenCheck nor a function")
    ids = [h.id for h in out]
    if len(set(ids)) != len(ids):
        raise ShipmlError(f"hidden checks file {path}: duplicate ids {ids}")
    return out


def run_hidden(hidden: Sequence[HiddenCheck], answers: dict[str, Any], ctx: checks.Context) -> list[QuestionResult]:
    """Each hidden check on the plain answers; a crash or a missing answer is that check's status."""
    results = []
    for h in hidden:
        base = dict(id=h.id, title=h.title or h.id, max_points=h.points, hidden=True)
        try:
            passed, message = h.evaluate(answers, ctx)
        except KeyError as exc:
            results.append(QuestionResult(status="not_run", points=0.0, message=f"needs answer {exc}", **base))
            continue
        except Exception as exc:
            results.append(QuestionResult(status="error", points=0.0,
                                          message=f"{type(exc).__name__}: {exc}"[:300], **base))
            continue
        results.append(QuestionResult(status="pass" if passed else "fail", points=h.points if passed else 0.0,
                                      message=str(message)[:300], **base))
    return results
