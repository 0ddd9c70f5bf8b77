"""Answer keys of lab07 (grader only): the gate's expected verdicts (the rules the lab states, applied
to the seed's cases), the canary bounds replayed on an hour of traffic the notebook never saw, and why
the seed's pipeline run stopped."""

from __future__ import annotations

import math
import re

from shipml.checks import Context
from shipml.checks import lab07 as public

RULES = ("roc_auc", "ece", "slice_roc_auc", "slice_size")
SHOWN = {"slice_size": "slice_rows/slice_frauds"}  # how a rule is called in feedback
# how a reason names each rule (after lower-casing and turning every run of other characters into "_"); the
# slice's AUC ("slice_roc_auc", "slice AUC", the kit's "slice card_present=False ROC AUC", "card-not-present ROC
# AUC": up to 3 words between, none of them rows/frauds) is matched, and removed, before the overall AUC
_WORDS = r"(?:(?!rows_|frauds?_)[a-z]+_){0,3}?"
RULE_NAMES = (("slice_roc_auc", rf"_(?:slice|card_not_present)_{_WORDS}(?:roc_)?auc_"),
              ("slice_size", r"_(?:slice_)?(?:rows|frauds?)_"), ("roc_auc", r"_(?:roc_)?auc_"),
              ("ece", r"_ece_|calibrat"))


def _value(metrics: dict | None, key: str) -> float | None:
    v = None if metrics is None else metrics.get(key)
    if v is None or isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v):
        return None
    return float(v)


def rule_status(current: dict | None, candidate: dict) -> dict[str, bool | None]:
    """Each rule of the lab: True (holds), False (broken: also when a metric it needs is missing or NaN, on
    either side: the gate fails closed) or None (cannot be judged: the slice is too small for its AUC)."""
    c = {k: _value(candidate, k) for k in public.METRICS}
    d = {k: _value(current, k) for k in public.COMPARED}
    status: dict[str, bool | None] = {}
    rows, frauds = c["slice_rows"], c["slice_frauds"]
    status["slice_size"] = (rows is not None and frauds is not None and rows >= public.MIN_SLICE_ROWS
                            and frauds >= public.MIN_SLICE_FRAUDS)
    auc = c["roc_auc"]
    if auc is None or (current is not None and d["roc_auc"] is None):
        status["roc_auc"] = False
    else:
        status["roc_auc"] = auc >= public.MIN_AUC and (current is None or auc >= d["roc_auc"] - public.AUC_MARGIN)
    status["ece"] = c["ece"] is not None and c["ece"] <= public.MAX_ECE
    if c["slice_roc_auc"] is None or (current is not None and d["slice_roc_auc"] is None):
        status["slice_roc_auc"] = False
    elif not status["slice_size"]:
        status["slice_roc_auc"] = None  # too few rows or frauds: its AUC is noise, naming it or not is fine
    else:
        status["slice_roc_auc"] = current is None or (
            c["slice_roc_auc"] >= d["slice_roc_auc"] - public.SLICE_AUC_MARGIN)
    return status


def expected_gate(current: dict | None, candidate: dict) -> str | None:
    """The first rule ``candidate`` breaks (None: it passes), failing closed on missing or NaN metrics."""
    status = rule_status(current, candidate)
    return next((rule for rule in RULES if status[rule] is False), None)


def named_rules(reason: str) -> set[str]:
    """The rules a reason names (by their metrics' names: roc_auc or AUC, ece or calibration, slice_roc_auc or
    slice AUC, slice_rows/rows or slice_frauds/frauds)."""
    text = "_" + re.sub(r"[^a-z0-9]+", "_", reason.lower()) + "_"
    found = set()
    for rule, pattern in RULE_NAMES:
        if re.search(pattern, text):
            found.add(rule)
            text = re.sub(pattern, "_", text)
    return found


def evaluate_gate(a: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_gate(a, ctx)
    if not ok:
        return ok, message
    cases = public.gate_cases(ctx.seed)
    wrong = []
    for i, ((current, candidate), got) in enumerate(zip(cases, a["cases"], strict=True)):
        status = rule_status(current, candidate)
        broken = {r for r, s in status.items() if s is False}
        if got["passed"] != (not broken):
            wrong.append((i, current, candidate, got))
            continue
        if not broken:
            continue
        named = named_rules(got["reason"])
        if not named & broken:
            return False, (f"case {i}: the refusal is right, but its reason ({got['reason'][:120]!r}) does not "
                           "name the rule that failed: name its metric")
        held = sorted(SHOWN.get(r, r) for r in named & {r for r, s in status.items() if s is True})
        if held:
            return False, (f"case {i}: the refusal is right, but its reason ({got['reason'][:120]!r}) also names "
                           f"{', '.join(held)}, which holds there: name the rule that failed, not every rule")
    if wrong:
        i, current, candidate, got = wrong[0]
        verb = "passes" if got["passed"] else "refuses"
        return False, (f"{len(wrong)} of {len(cases)} verdicts break the rules; e.g. case {i}: your gate {verb} "
                       f"candidate {candidate} against deployed {current}")
    return True, f"all {len(cases)} verdicts follow the rules, each refusal names the rule that failed"


GRADING_HOURS = (3, 4, 5)  # hours of traffic the grader replays the canaries on (the notebook shows hour 0)


def evaluate_bounds(a: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.judge_bounds(a["bounds"], ctx.seed)
    if not ok:
        return ok, message
    for hour in GRADING_HOURS:
        ok, message = public.judge_bounds(a["bounds"], ctx.seed, hour)
        if not ok:
            return False, ("your bounds decide right on the notebook's traffic but not on another hour of the same two "
                           f"candidates, so they sit too close to one of them: {message}")
    return True, (f"the good candidate is promoted and the bad one aborted, on the notebook's hour and on "
                  f"{len(GRADING_HOURS)} others")


STOPS = {"slice_gate": "evaluate", "parity": "export", "canary_errors": "canary"}


def _name(text: str) -> str:
    return "".join(text.lower().split())  # case- and space-insensitive


def failed_checks(record: object, stage: str) -> list[str]:
    return [c["name"] for c in record.stage(stage).detail.get("checks", []) if c["passed"] is False]


def evaluate_diagnosis(a: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_diagnosis(a, ctx)
    if not ok:
        return ok, message
    stage = STOPS[public.record_story(ctx.seed)]
    record = public.run_record(ctx.seed)
    serving = record.deployed_before["version"]
    if a["stopped_at"] != stage:
        return False, f"the run did not stop at {a['stopped_at']}: find the first stage that did not pass"
    (check,) = failed_checks(record, stage)  # every story's record names exactly one failed check
    if _name(a["failed_check"]) != _name(check):
        return False, (f"{a['failed_check']!r} is not the name of the check that failed in {stage}: read that "
                       "stage's checks and copy the failed one's name")
    if a["serving_version"] != serving:
        return False, (f"version {a['serving_version']} is not what serves after this run: what did the pipeline "
                       "leave running?")
    return True, f"stopped at {stage} because {check} failed; version {serving} still serves"


def WARM(seed: int) -> None:  # noqa: N802 (the grader's name for it)
    public.run_record(seed)


EVALUATE = {"gate": evaluate_gate, "bounds": evaluate_bounds, "diagnosis": evaluate_diagnosis}
