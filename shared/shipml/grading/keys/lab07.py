"""Answer keys of lab07 (grader only): the gate's expected verdicts (the rules the lab states, applied
to the seed's cases), the canary bounds replayed on an hour of traffic the notebook never saw, and why
the seed's pipeline run stopped."""

from __future__ import annotations

import math

from shipml.checks import Context
from shipml.checks import lab07 as public

# rule -> words a refusal's reason must contain one of (it names the rule that failed)
RULE_WORDS = {"roc_auc": ("roc_auc", "auc"), "ece": ("ece", "calibrat"), "slice_roc_auc": ("slice", "card"),
              "slice_rows": ("slice_rows", "rows")}


def expected_gate(current: dict | None, candidate: dict) -> str | None:
    """The first rule ``candidate`` breaks (None: it passes), failing closed on missing or NaN metrics."""
    def value(metrics: dict, key: str) -> float | None:
        v = metrics.get(key)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    for key in public.METRICS:
        if value(candidate, key) is None:
            return key
    if value(candidate, "slice_rows") < public.MIN_SLICE_ROWS:
        return "slice_rows"
    auc = value(candidate, "roc_auc")
    if auc < public.MIN_AUC or (current is not None and auc < current["roc_auc"] - public.AUC_MARGIN):
        return "roc_auc"
    if value(candidate, "ece") > public.MAX_ECE:
        return "ece"
    if current is not None and value(candidate, "slice_roc_auc") < current["slice_roc_auc"] - public.SLICE_AUC_MARGIN:
        return "slice_roc_auc"
    return None


def evaluate_gate(a: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_gate(a, ctx)
    if not ok:
        return ok, message
    cases = public.gate_cases(ctx.seed)
    wrong = []
    for i, ((current, candidate), got) in enumerate(zip(cases, a["cases"], strict=True)):
        rule = expected_gate(current, candidate)
        if got["passed"] != (rule is None):
            wrong.append((i, current, candidate, got, rule))
        elif rule is not None and not any(w in got["reason"].lower() for w in RULE_WORDS[rule]):
            return False, (f"case {i}: the refusal is right, but its reason ({got['reason']!r}) does not say which "
                           "rule failed: name the metric")
    if wrong:
        i, current, candidate, got, rule = wrong[0]
        verb = "passes" if got["passed"] else "refuses"
        return False, (f"{len(wrong)} of {len(cases)} verdicts break the rules; e.g. case {i}: your gate {verb} "
                       f"candidate {candidate} against deployed {current}")
    return True, f"all {len(cases)} verdicts follow the rules, each refusal names its rule"


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


STOPS = {"slice_gate": ("evaluate", ("slice",)), "parity": ("export", ("parity",)),
         "canary_errors": ("canary", ("error",))}


def evaluate_diagnosis(a: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_diagnosis(a, ctx)
    if not ok:
        return ok, message
    stage, words = STOPS[public.record_story(ctx.seed)]
    serving = public.run_record(ctx.seed).deployed_before["version"]
    if a["stopped_at"] != stage:
        return False, f"the run did not stop at {a['stopped_at']}: find the first stage that did not pass"
    if not any(w in a["failed_check"] for w in words):
        return False, f"{a['failed_check']!r} is not what failed in {stage}: read that stage's detail"
    if a["serving_version"] != serving:
        return False, (f"version {a['serving_version']} is not what serves after this run: what did the pipeline "
                       "leave running?")
    return True, f"stopped at {stage} because {a['failed_check']}; version {serving} still serves"


def WARM(seed: int) -> None:  # noqa: N802 (the grader's name for it)
    public.run_record(seed)


EVALUATE = {"gate": evaluate_gate, "bounds": evaluate_bounds, "diagnosis": evaluate_diagnosis}
