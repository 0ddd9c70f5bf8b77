"""Answer keys of lab08 (grader only): the lab bundle's training fingerprint for the seed, on top of
the instant checks (the refusal cases are built fresh by the collector, so they need no key)."""

from __future__ import annotations

from functools import lru_cache

from shipml.checks import Context
from shipml.checks import lab08 as public


@lru_cache(maxsize=4)
def fingerprint(seed: int) -> str:
    """Fingerprint of the seeded rows the lab bundle is trained on."""
    from shipml.data import fingerprint as fp
    from shipml.data import make_transactions

    return fp(make_transactions(public.ROWS, seed=seed))


def evaluate_signed(a: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_signed(a, ctx)
    if ok and a["fingerprint"] != fingerprint(ctx.seed):
        return False, "that is not the lab's bundle (trained on other rows): sign bundle_dir from the setup cell"
    return ok, message


def WARM(seed: int) -> None:  # noqa: N802 (the grader's name for it)
    fingerprint(seed)


EVALUATE = {"signed": evaluate_signed, "refuse": public.evaluate_refuse, "fixed": public.evaluate_fixed}
