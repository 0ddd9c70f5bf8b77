"""Lab 02 — a model API by hand: a request model from a schema, TF Serving's two formats, a v2 request,
and which server configuration to ship under a latency budget. Each answer is a function; the checks
call it on inputs made from the lab's seed.

Instant feedback only: the server's own verdicts on the probe records, the expected tensors and the
right configurations are the grader's (``shipml.grading.keys.lab02``)."""

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


# Examples the question itself spells out, so instant feedback may know their verdicts.
def documented_examples(seed: int) -> list[tuple[dict[str, Any], bool]]:
    valid = _valid_records(seed + 5, 2)
    return [(valid[0], True), ({**valid[1], "amount": "12.5"}, False), ({**valid[0], "tip": 1}, False),
            ({**valid[1], "hour": 25}, False)]


def _accepts(model: Any, rec: dict) -> bool:
    from pydantic import ValidationError

    try:
        model.model_validate_json(json.dumps(rec))
        return True
    except ValidationError:
        return False


def collect_record_model(make_model: Any, ctx: Context) -> dict:
    from shipml.data import SCHEMA

    model = make_model(SCHEMA)
    if model is None:
        raise Unanswered()
    return {"accepted": [_accepts(model, rec) for rec in probe_records(ctx.seed)],
            "examples": [_accepts(model, rec) for rec, _ in documented_examples(ctx.seed)]}


def evaluate_record_model(a: dict, ctx: Context) -> tuple[bool, str]:
    for (rec, want), got in zip(documented_examples(ctx.seed), a["examples"], strict=True):
        if got != want:
            verb = "accepts" if got else "refuses"
            must = "refuse" if got else "accept"
            return False, f"your model {verb} this record, which the question says it must {must}: {rec}"
    if all(a["accepted"]) or not any(a["accepted"]):
        return False, f"your model {'accepts' if a['accepted'][0] else 'refuses'} every probe record, valid or not"
    return True, ("your model agrees with the question's examples (grading compares it with the server on "
                  f"{len(a['accepted'])} more records)")


def probe_instances(seed: int) -> list[dict[str, Any]]:
    return _valid_records(seed + 1, 5)


def collect_columns(rows_to_columns: Any, ctx: Context) -> Any:
    out = rows_to_columns(probe_instances(ctx.seed))
    if out is None:
        raise Unanswered()
    return {str(k): list(v) for k, v in dict(out).items()}


def evaluate_columns(a: Any, ctx: Context) -> tuple[bool, str]:
    rows = probe_instances(ctx.seed)
    if len(a) != len(rows[0]):
        return False, f"{len(a)} columns for {len(rows[0])} features: one column per feature"
    short = [k for k, v in a.items() if len(v) != len(rows)]
    if short:
        return False, f"column '{short[0]}' holds {len(a[short[0]])} values for {len(rows)} rows"
    return True, "one column per feature, one value per row (grading checks the values and their order)"


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

    if not isinstance(a, dict) or not isinstance(a.get("inputs"), list):
        return False, "a v2 request is an object with an 'inputs' list of tensors"
    tensors = {t.get("name"): t for t in a["inputs"] if isinstance(t, dict)}
    for f in SCHEMA.features:
        t = tensors.get(f.name)
        if t is None:
            return False, f"no input tensor named '{f.name}'"
        missing = [k for k in ("shape", "datatype", "data") if k not in t]
        if missing:
            return False, f"the tensor '{f.name}' has no {missing[0]!r}"
    return True, "one tensor per feature with a shape, datatype and data (grading checks each of them)"


# ---- 4. ship which configuration? ---------------------------------------------------------------

CONFIGS = ("1 worker, sklearn", "2 workers, sklearn", "1 worker, onnx", "4 workers, onnx")


def _p99_sorted(lat: np.ndarray) -> float:
    return float(np.sort(lat)[int(0.99 * (len(lat) - 1))])


def load_test_runs(seed: int) -> list[tuple[dict[str, dict], float]]:
    """Seeded load-test situations: each configuration's latencies (ms) and requests per second, and a p99
    budget. In most situations some configurations fit the budget and the one with the most throughput
    does not; in the last one nothing fits."""
    rng = np.random.default_rng([4, seed])
    situations = []
    while len(situations) < 5:
        runs, p99 = {}, {}
        for name in CONFIGS:
            median = rng.uniform(0.5, 6.0)
            tail_share, tail_ms = rng.uniform(0.0, 0.04), rng.uniform(5.0, 60.0)
            n = int(rng.integers(800, 2_000))
            lat = np.round(rng.lognormal(np.log(median), 0.3, n) + (rng.random(n) < tail_share) * tail_ms, 4)
            runs[name] = {"latencies_ms": lat.tolist(), "requests_per_s": round(float(rng.uniform(300, 6_000)), 1)}
            p99[name] = _p99_sorted(lat)
        ordered = sorted(p99.values())
        if any(b < a * 1.15 for a, b in zip(ordered, ordered[1:], strict=False)):
            continue  # tails too close to call: a budget between them would hang on the percentile method
        fastest = max(runs, key=lambda k: runs[k]["requests_per_s"])
        if len(situations) == 4:
            situations.append((runs, round(ordered[0] * 0.8, 2)))
        elif p99[fastest] > ordered[1]:  # the fastest configuration has one of the two worst tails
            situations.append((runs, round((ordered[1] + ordered[2]) / 2, 2)))
    return situations


def collect_choose(choose: Any, ctx: Context) -> list:
    out = []
    for runs, budget in load_test_runs(ctx.seed):
        picked = choose({k: {"latencies_ms": list(v["latencies_ms"]), "requests_per_s": v["requests_per_s"]}
                         for k, v in runs.items()}, budget)
        out.append(None if picked is None else str(picked))
    return out


def evaluate_choose(a: list, ctx: Context) -> tuple[bool, str]:
    unknown = [x for x in a if x is not None and x not in CONFIGS]
    if unknown:
        return False, f"{unknown[0]!r} is not one of the configurations tested: return its name (or None)"
    if a[-1] is not None:
        return False, f"in the last situation no configuration's p99 fits the budget, but you chose {a[-1]!r}"
    if all(x is None for x in a):
        return False, "you chose no configuration in any situation, but some fit their budget"
    return True, "a configuration (or none) for each situation (grading checks each choice)"


QUESTIONS = [
    Question("record_model", 3, collect_record_model, evaluate_record_model,
             "build one pydantic field per schema feature with create_model; pydantic's Field has options "
             "for strictness, bounds and inf/nan, model_config one for unknown keys; typing.Literal lists "
             "allowed values", "A request model generated from the schema"),
    Question("columns", 1, collect_columns, evaluate_columns,
             "the feature names are the keys of any one row; each column collects that key from every row, "
             "in row order", "TF Serving: rows to columns"),
    Question("v2", 2, collect_v2, evaluate_v2,
             "compare your body with the Open Inference Protocol's tensor fields (name, shape, datatype, data) "
             "and map each schema dtype to a protocol datatype", "An Open Inference Protocol request"),
    Question("choose", 2, collect_choose, evaluate_choose,
             "users feel the tail: compute each configuration's p99 first, drop those over the budget, then "
             "compare throughput among the rest", "Which configuration do you ship?"),
]
