"""Answer keys of lab02 (grader only): the server's own verdicts on the probe records, the columns and
v2 tensors the probe rows make, and the configuration to ship in each load-test situation."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from shipml.checks import Context
from shipml.checks import lab02 as public


def evaluate_record_model(a: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_record_model(a, ctx)
    if not ok:
        return ok, message
    from shipml.data import SCHEMA
    from shipml.serving.schemas import record_model

    reference = record_model(SCHEMA)
    probes = public.probe_records(ctx.seed)
    for rec, got in zip(probes, a["accepted"], strict=True):
        try:
            reference.model_validate_json(json.dumps(rec))
            want = True
        except Exception:
            want = False
        if got != want:
            verb = "accepts" if got else "refuses"
            return False, f"your model {verb} this record, the server's {'refuses' if got else 'accepts'} it: {rec}"
    return True, f"your model agrees with the server on all {len(probes)} probe records (valid and invalid)"


def evaluate_columns(a: Any, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_columns(a, ctx)
    if not ok:
        return ok, message
    rows = public.probe_instances(ctx.seed)
    want = {k: [r[k] for r in rows] for k in rows[0]}
    if set(a) != set(want):
        return False, f"the columns are {sorted(a)}; expected one per feature: {sorted(want)}"
    for k in want:
        if a[k] != want[k]:
            return False, f"column '{k}' is {a[k]}; expected {want[k]} (one value per row, in row order)"
    return True, "rows turned into TF Serving's columnar 'inputs' format"


DATATYPES = {"float": "FP64", "int": "INT64", "bool": "BOOL", "category": "BYTES"}


def evaluate_v2(a: Any, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_v2(a, ctx)
    if not ok:
        return ok, message
    from shipml.data import SCHEMA

    rows = public.probe_instances(ctx.seed)
    tensors = {t.get("name"): t for t in a["inputs"] if isinstance(t, dict)}
    for f in SCHEMA.features:
        t = tensors[f.name]
        if t.get("datatype") != DATATYPES[f.dtype]:
            return False, f"'{f.name}' has datatype {t.get('datatype')!r}; a {f.dtype} feature is {DATATYPES[f.dtype]}"
        if t.get("shape") not in ([len(rows)], [len(rows), 1]):
            return False, f"'{f.name}' has shape {t.get('shape')}; {len(rows)} rows make shape [{len(rows)}]"
        if t.get("data") != [r[f.name] for r in rows]:
            return False, f"'{f.name}' data is {t.get('data')}; expected the column's values in row order"
    return True, "a valid Open Inference Protocol request: one tensor per feature, right datatype and shape"


def expected_choices(seed: int) -> list[str | None]:
    out = []
    for runs, budget in public.load_test_runs(seed):
        fits = {k: v["requests_per_s"] for k, v in runs.items() if np.percentile(v["latencies_ms"], 99) <= budget}
        out.append(max(fits, key=fits.get) if fits else None)
    return out


def evaluate_choose(a: list, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_choose(a, ctx)
    if not ok:
        return ok, message
    budgets = [budget for _, budget in public.load_test_runs(ctx.seed)]
    for n, (got, want, budget) in enumerate(zip(a, expected_choices(ctx.seed), budgets, strict=True)):
        if got != want:
            return False, (f"situation {n + 1} (p99 budget {budget:g} ms): you chose {got!r}; the fastest "
                           f"configuration whose p99 is within the budget is {want!r}")
    return True, "the fastest configuration whose p99 fits the budget, in every situation (none when none fits)"


EVALUATE = {"record_model": evaluate_record_model, "columns": evaluate_columns, "v2": evaluate_v2,
            "choose": evaluate_choose}
