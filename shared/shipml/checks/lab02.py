"""Lab 02 — a model API by hand: a request model from a schema, TF Serving's two formats, a v2 request,
latency percentiles. Each answer is a function; the checks call it on inputs made from the lab's seed."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from shipml.checks import Context, Question, Unanswered

PROBE_ROWS = 12


def _valid_records(seed: int, n: int = PROBE_ROWS) -> list[dict[str, Any]]:
    from shipml.data import SCHEMA, make_transactions

    df = make_transactions(n, seed=seed)[SCHEMA.names]
    out = []
    for row in df.to_dict(orient="records"):
        out.append({"amount": float(row["amount"]), "hour": int(row["hour"]),
                    "merchant_category": str(row["merchant_category"]),
                    "distance_from_home_km": float(row["distance_from_home_km"]),
                    "card_present": bool(row["card_present"]), "txn_count_24h": int(row["txn_count_24h"]),
                    "account_age_days": int(row["account_age_days"])})
    return out


def probe_records(seed: int) -> list[dict[str, Any]]:
    """Valid records and, from them, one of each kind of mistake (the order depends on the seed)."""
    valid = _valid_records(seed)
    mistakes = [
        ("amount", -1.0), ("amount", 30_000.0), ("hour", 24), ("hour", 3.5), ("merchant_category", "casino"),
        ("txn_count_24h", -1), ("account_age_days", "old"), ("amount", "12.5"), ("extra", 1), ("missing", "hour"),
    ]
    rng = np.random.default_rng(seed)
    probes = list(valid[:4])
    for k, (field, value) in enumerate(mistakes):
        rec = dict(valid[4 + k % (len(valid) - 4)])
        if field == "extra":
            rec["tip"] = value
        elif field == "missing":
            rec.pop(value)
        else:
            rec[field] = value
        probes.append(rec)
    order = rng.permutation(len(probes))
    return [probes[i] for i in order]


def collect_record_model(make_model: Any, ctx: Context) -> dict:
    from pydantic import ValidationError

    from shipml.data import SCHEMA

    model = make_model(SCHEMA)
    if model is None:
        raise Unanswered()
    accepted = []
    for rec in probe_records(ctx.seed):
        try:
            model.model_validate_json(json.dumps(rec))
            accepted.append(True)
        except ValidationError:
            accepted.append(False)
    return {"accepted": accepted}


def evaluate_record_model(a: dict, ctx: Context) -> tuple[bool, str]:
    from shipml.data import SCHEMA
    from shipml.serving.schemas import record_model

    reference = record_model(SCHEMA)
    probes = probe_records(ctx.seed)
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


def probe_instances(seed: int) -> list[dict[str, Any]]:
    return _valid_records(seed + 1, 5)


def collect_columns(rows_to_columns: Any, ctx: Context) -> Any:
    out = rows_to_columns(probe_instances(ctx.seed))
    if out is None:
        raise Unanswered()
    return {str(k): list(v) for k, v in dict(out).items()}


def evaluate_columns(a: Any, ctx: Context) -> tuple[bool, str]:
    rows = probe_instances(ctx.seed)
    want = {k: [r[k] for r in rows] for k in rows[0]}
    if set(a) != set(want):
        return False, f"the columns are {sorted(a)}; expected one per feature: {sorted(want)}"
    for k in want:
        if a[k] != want[k]:
            return False, f"column '{k}' is {a[k]}; expected {want[k]} (one value per row, in row order)"
    return True, "rows turned into TF Serving's columnar 'inputs' format"


def collect_v2(to_v2_request: Any, ctx: Context) -> Any:
    from shipml.data import SCHEMA

    rows = probe_instances(ctx.seed)
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    out = to_v2_request(columns, SCHEMA)
    if out is None:
        raise Unanswered()
    return json.loads(json.dumps(out))


def evaluate_v2(a: Any, ctx: Context) -> tuple[bool, str]:
    from shipml.data import SCHEMA

    types = {"float": "FP64", "int": "INT64", "bool": "BOOL", "category": "BYTES"}
    rows = probe_instances(ctx.seed)
    if not isinstance(a, dict) or not isinstance(a.get("inputs"), list):
        return False, "a v2 request is an object with an 'inputs' list of tensors"
    tensors = {t.get("name"): t for t in a["inputs"] if isinstance(t, dict)}
    for f in SCHEMA.features:
        t = tensors.get(f.name)
        if t is None:
            return False, f"no input tensor named '{f.name}'"
        if t.get("datatype") != types[f.dtype]:
            return False, f"'{f.name}' has datatype {t.get('datatype')!r}; a {f.dtype} feature is {types[f.dtype]}"
        if t.get("shape") not in ([len(rows)], [len(rows), 1]):
            return False, f"'{f.name}' has shape {t.get('shape')}; {len(rows)} rows make shape [{len(rows)}]"
        if t.get("data") != [r[f.name] for r in rows]:
            return False, f"'{f.name}' data is {t.get('data')}; expected the column's values in row order"
    return True, "a valid Open Inference Protocol request: one tensor per feature, right datatype and shape"


def probe_latencies(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.round(rng.lognormal(0.0, 0.6, 5_000) + (rng.random(5_000) < 0.02) * 40.0, 4)


def collect_summary(summarize: Any, ctx: Context) -> Any:
    out = summarize(probe_latencies(ctx.seed).tolist())
    if out is None:
        raise Unanswered()
    return {k: float(v) for k, v in dict(out).items()}


def evaluate_summary(a: Any, ctx: Context) -> tuple[bool, str]:
    lat = probe_latencies(ctx.seed)
    want = {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)), "max": float(lat.max())}
    for k, v in want.items():
        if k not in a:
            return False, f"the summary has no '{k}' (keys: p50, p99, max)"
        if abs(a[k] - v) > 0.02 * max(v, 1.0):
            return False, f"{k} is {a[k]:.3f}; expected about {v:.3f}"
    ratio = want["p99"] / want["p50"]
    return True, f"p50 {want['p50']:.2f} ms, p99 {want['p99']:.2f} ms: the tail is {ratio:.0f}x the median"


QUESTIONS = [
    Question("record_model", 3, collect_record_model, evaluate_record_model,
             "create_model(name, __config__=ConfigDict(extra='forbid'), **fields); numbers: Annotated[float, "
             "Field(strict=True, allow_inf_nan=False, ge=f.min, le=f.max)]; categories: Literal[tuple(f.categories)]",
             "A request model generated from the schema"),
    Question("columns", 1, collect_columns, evaluate_columns,
             "{name: [row[name] for row in instances] for name in instances[0]}", "TF Serving: rows to columns"),
    Question("v2", 2, collect_v2, evaluate_v2,
             "one dict per feature: name, shape [rows], datatype (FP64, INT64, BOOL or BYTES by dtype), data",
             "An Open Inference Protocol request"),
    Question("summary", 1, collect_summary, evaluate_summary,
             "np.percentile(latencies, 50) and 99, and max", "Latency percentiles"),
]
