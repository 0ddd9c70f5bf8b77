"""Answer keys of lab03 (grader only): the fraud probabilities the container must answer for the probe
rows, from the app's model (the other questions judge facts the check saw: no key needed)."""

from __future__ import annotations

import math

from shipml.checks import Context
from shipml.checks import lab03 as public


def expected_probability(row: dict) -> float:
    w = public.MODEL["weights"]
    z = public.MODEL["bias"] + w["amount"] * row["amount"] + w["night"] * float(int(row["hour"]) < 6)
    z += w["card_present"] * float(bool(row["card_present"]))
    return 1 / (1 + math.exp(-z))


def evaluate_runs(facts: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_runs(facts, ctx)
    if not ok:
        return ok, message
    expected = [expected_probability(row) for row in public.PROBE_ROWS]
    got = facts.get("answers") or []
    if any(abs(g - e) > 1e-9 for g, e in zip(got, expected, strict=True)):
        return False, f"the container answered {got}, expected {[round(e, 6) for e in expected]}"
    return True, f"it builds, starts in {facts.get('ready_seconds', 0):.1f}s and scores like the model"


EVALUATE = {"runs": evaluate_runs}
