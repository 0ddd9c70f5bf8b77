"""Lab 06's keys for the grader: ``EVALUATE`` (question id -> evaluate) and ``WARM(seed)``.

Lab 06's expected answers are the kit's own public computations on seeded data (the lab asks students to
compare with the kit), so they live in :mod:`shipml.checks.lab06` and give the same verdict in the notebook;
the grader's protection is that it evaluates the exported plain answer in its own process.
"""

from __future__ import annotations

from shipml.checks import lab06 as lab

EVALUATE = {q.id: q.evaluate for q in lab.QUESTIONS}


def WARM(seed: int) -> None:  # noqa: N802 - the name the grader looks for
    """Precompute the seed's expected answers once per grading run (trains the lab's small model)."""
    lab.expected_drifted(seed)
    lab.expected_amount_psi(seed)
    lab.expected_drop_window(seed)
