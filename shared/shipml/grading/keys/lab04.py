"""Answer keys of lab04 (grader only): the three mistakes of the broken manifest, as the kit's validator
words them."""

from __future__ import annotations

from shipml.checks import Context
from shipml.checks import lab04 as public

EXPECTED_FINDINGS = {
    "selector": "does not match the pod template labels",
    "readiness probe": "has no readinessProbe",
    ":latest": "uses :latest",
}


def evaluate_problems(found: list[str], ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_problems(found, ctx)
    if not ok:
        return ok, message
    missing = [name for name, text in EXPECTED_FINDINGS.items() if not any(text in line for line in found)]
    if missing:
        return False, f"{len(found)} problem(s) listed, but not the {', '.join(missing)} one(s)"
    return True, f"all three mistakes found ({len(found)} problems)"


EVALUATE = {"problems": evaluate_problems}
