"""Lab 07 — automate deployment: write a release gate, choose canary bounds, read a pipeline's run record.

The inputs each question hands out are built here from the lab's seed (gate cases, the canary's traffic,
a run record in the pipeline's own format), so the student's kernel can make them. What the answers are
compared with — the gate's expected verdicts, the canary replayed on another hour of traffic, why the run
stopped — is computed by the grader in ``shipml.grading.keys.lab07``.
"""

from __future__ import annotations

import copy
import math
import random
from typing import Any

import numpy as np

from shipml.checks import Context, Question, Unanswered

# ---- 1. a release gate ------------------------------------------------------------------------------
# The rules the lab states. They are the pipeline's quantities (shipml.pipeline.gates), but stricter where
# the pipeline's check_gates is lenient, and the lab says so: check_gates does not count the slice's frauds,
# and it treats a deployed version whose metric is missing or NaN like a first release (floors only), where
# the lab's gate fails closed. So wrapping check_gates does not answer the question.
AUC_MARGIN = 0.01        # ROC AUC may be at most this far below the deployed version's
MIN_AUC = 0.70           # ... and never below this, also when nothing is deployed yet
MAX_ECE = 0.03           # expected calibration error bound
SLICE_AUC_MARGIN = 0.03  # card-not-present ROC AUC may be at most this far below the deployed's
MIN_SLICE_ROWS = 200     # fewer held-out card-not-present rows: no verdict possible, so the gate fails
MIN_SLICE_FRAUDS = 20    # ... and fewer frauds among them: the slice's ROC AUC is noise, the gate fails
METRICS = ("roc_auc", "ece", "slice_roc_auc", "slice_rows", "slice_frauds")
COMPARED = ("roc_auc", "slice_roc_auc")  # the deployed version's metrics the gate compares with


def _deployed(rng: random.Random) -> dict[str, float]:
    return {"roc_auc": round(rng.uniform(0.85, 0.89), 4), "ece": round(rng.uniform(0.005, 0.015), 4),
            "slice_roc_auc": round(rng.uniform(0.80, 0.84), 4), "slice_rows": rng.randint(900, 1400),
            "slice_frauds": rng.randint(35, 70)}


def gate_cases(seed: int) -> list[tuple[dict[str, float] | None, dict[str, float]]]:
    """Pairs (deployed metrics or None for a first release, candidate metrics) the check gives the gate.

    Each pair is a situation a release meets: better, a little worse, clearly worse, miscalibrated, better
    overall but worse on card-not-present payments, too few slice rows or frauds to judge, a first release, a
    metric that came out NaN, a metric missing, a deployed version whose slice metric was lost. The order
    depends on the seed."""
    rng = random.Random(seed * 7919 + 7)
    cases = []
    for kind in ("better", "within_margin", "worse_auc", "miscalibrated", "slice_drop", "tiny_slice", "first_ok",
                 "first_weak", "nan_auc", "missing_slice", "few_frauds", "deployed_lost_slice"):
        current = _deployed(rng)
        cand = {"roc_auc": round(current["roc_auc"] + rng.uniform(0.002, 0.01), 4),
                "ece": round(rng.uniform(0.005, 0.02), 4),
                "slice_roc_auc": round(current["slice_roc_auc"] + rng.uniform(-0.01, 0.01), 4),
                "slice_rows": current["slice_rows"] + rng.randint(-100, 100),
                "slice_frauds": current["slice_frauds"] + rng.randint(-10, 10)}
        if kind == "within_margin":
            cand["roc_auc"] = round(current["roc_auc"] - rng.uniform(0.002, 0.007), 4)
        elif kind == "worse_auc":
            cand["roc_auc"] = round(current["roc_auc"] - rng.uniform(0.015, 0.04), 4)
        elif kind == "miscalibrated":
            cand["ece"] = round(rng.uniform(0.04, 0.09), 4)
        elif kind == "slice_drop":
            cand["roc_auc"] = round(current["roc_auc"] + rng.uniform(0.005, 0.012), 4)
            cand["slice_roc_auc"] = round(current["slice_roc_auc"] - rng.uniform(0.045, 0.09), 4)
        elif kind == "tiny_slice":
            cand["slice_rows"] = rng.randint(40, 150)
            cand["slice_frauds"] = rng.randint(2, 6)
        elif kind == "few_frauds":  # enough rows, too few frauds among them: check_gates does not count them
            cand["slice_frauds"] = rng.randint(5, 16)
        elif kind == "first_ok":
            current = None
            cand["roc_auc"] = round(rng.uniform(0.78, 0.86), 4)
        elif kind == "first_weak":
            current = None
            cand["roc_auc"] = round(rng.uniform(0.60, 0.68), 4)
        elif kind == "nan_auc":
            cand["roc_auc"] = math.nan  # e.g. a held-out set with one class only
        elif kind == "missing_slice":
            del cand["slice_roc_auc"]
        elif kind == "deployed_lost_slice":  # the deployed record lost a metric: check_gates skips the comparison
            current["slice_roc_auc"] = math.nan if rng.random() < 0.5 else None
            if current["slice_roc_auc"] is None:
                del current["slice_roc_auc"]
        cases.append((current, cand))
    rng.shuffle(cases)
    return cases


def documented_gate_examples() -> list[tuple[dict[str, float] | None, dict[str, float], bool]]:
    """The examples the lab's text spells out, so instant feedback may know their verdicts."""
    current = {"roc_auc": 0.870, "ece": 0.010, "slice_roc_auc": 0.820, "slice_rows": 1000, "slice_frauds": 40}
    return [
        (current, {**current, "roc_auc": 0.865}, True),    # 0.005 worse: within the margin
        (current, {**current, "roc_auc": 0.850}, False),   # 0.02 worse
        (current, {**current, "ece": 0.060}, False),       # miscalibrated
        (None, {**current, "roc_auc": 0.650}, False),      # a first release below the floor
        (current, {**current, "slice_frauds": 12}, False),  # 1000 slice rows, but 12 frauds: no verdict
    ]


def illustrative_gate_cases() -> list[tuple[str, dict[str, float] | None, dict[str, float]]]:
    """Situations the notebook may compare the student's gate and the kit's check_gates on: the lab's own
    examples plus two fixed ones. None of them is a graded case (those come from the seed)."""
    named = ["0.005 worse", "0.02 worse", "ECE 0.06", "first release at 0.65", "12 slice frauds"]
    cases = [(what, cur, cand) for what, (cur, cand, _) in zip(named, documented_gate_examples(), strict=True)]
    current = {"roc_auc": 0.880, "ece": 0.012, "slice_roc_auc": 0.830, "slice_rows": 1200, "slice_frauds": 50}
    cases.append(("deployed slice AUC is NaN", {**current, "slice_roc_auc": math.nan},
                  {**current, "slice_roc_auc": 0.700}))
    cases.append(("candidate ECE is NaN", current, {**current, "ece": math.nan}))
    return cases


def _call_gate(fn: Any, current: dict | None, candidate: dict) -> dict[str, Any]:
    try:
        out = fn(copy.deepcopy(current), copy.deepcopy(candidate))
    except (Exception, SystemExit) as exc:  # a gate that calls exit() is a gate that crashed
        return {"raised": f"{type(exc).__name__}: {str(exc)[:120]}"}
    if not (isinstance(out, tuple | list) and len(out) == 2):
        return {"form": f"returned {type(out).__name__}, not a (passed, reason) pair"}
    passed, reason = out
    if not isinstance(passed, bool | np.bool_):
        return {"form": f"passed is {type(passed).__name__}, not True/False"}
    if not isinstance(reason, str):
        return {"form": f"reason is {type(reason).__name__}, not a string"}
    return {"passed": bool(passed), "reason": reason[:300]}


def collect_gate(fn: Any, ctx: Context) -> dict:
    """Call the student's ``gate(current, candidate) -> (passed, reason)`` on the seed's cases and the
    documented examples."""
    if fn is None:
        raise Unanswered()
    if not callable(fn):
        raise TypeError("the answer is a function: gate(current, candidate) -> (passed, reason)")
    probe = _call_gate(fn, *documented_gate_examples()[0][:2])
    if "raised" in probe and "NotImplementedError" in probe["raised"]:
        raise Unanswered()
    return {"cases": [_call_gate(fn, cur, cand) for cur, cand in gate_cases(ctx.seed)],
            "examples": [_call_gate(fn, cur, cand) for cur, cand, _ in documented_gate_examples()]}


def _form_problem(answers: list[dict]) -> str | None:
    for i, a in enumerate(answers):
        if "raised" in a:
            return f"your gate raised {a['raised']} on case {i}: a gate answers (False, why), it never crashes"
        if "form" in a:
            return f"your gate {a['form']} on case {i}"
        if a["passed"] is False and not a["reason"].strip():
            return f"your gate refused case {i} without a reason: say which rule failed"
    return None


def evaluate_gate(a: dict, ctx: Context) -> tuple[bool, str]:
    problem = _form_problem(a["examples"] + a["cases"])
    if problem:
        return False, problem
    for (current, cand, want), got in zip(documented_gate_examples(), a["examples"], strict=True):
        if got["passed"] != want:
            return False, (f"on the lab's own example (deployed {current}, candidate {cand}) your gate "
                           f"{'passes' if got['passed'] else 'refuses'}; the rules say it should "
                           f"{'pass' if want else 'refuse'}")
    return True, (f"answers every case with a verdict and a reason, and the lab's {len(a['examples'])} examples "
                  f"right (grading also checks the {len(a['cases'])} cases' verdicts, and that each refusal names "
                  "the rule that failed and no rule that holds)")


# ---- 2. canary bounds --------------------------------------------------------------------------------
FLAWS = ("errors", "latency", "scores")  # what is wrong with the bad candidate, depending on the seed
STABLE_REQUESTS = 5000
CANDIDATE_REQUESTS = 3000


def bad_flaw(seed: int) -> str:
    return FLAWS[seed % len(FLAWS)]


def _version(rng: np.random.Generator, version: int, requests: int, error_ratio: float, latency_scale: float,
             score_scale: float) -> Any:
    from shipml.release.analysis import VersionStats

    errors = round(requests * error_ratio)  # the counts are the version's; latencies and scores vary by hour
    ok = requests - errors
    latencies = 11.0 * latency_scale * rng.lognormal(0.0, 0.35, ok)
    scores = np.clip(rng.beta(0.6, 11.0, ok) * score_scale, 0.0, 1.0)
    return VersionStats.from_samples(version, requests, errors, latencies, scores, max_samples=requests)


def canary_traffic(seed: int, hour: int = 0) -> dict[str, Any]:
    """What the server recorded during two canaries, as ``VersionStats``: ``stable`` (version 1) beside a
    ``good`` candidate (version 2) and a ``bad`` one (version 3). ``hour`` replays the same versions on
    another hour of traffic (fresh samples)."""
    rng = np.random.default_rng([seed, hour, 707])
    flaw = bad_flaw(seed)
    stable = _version(rng, 1, STABLE_REQUESTS, 0.004, 1.0, 1.0)
    # the good candidate is a bigger model: a little slower, the same errors and scores
    good = _version(rng, 2, CANDIDATE_REQUESTS, 0.004, 1.3, 1.0)
    bad = _version(rng, 3, CANDIDATE_REQUESTS, 0.015 if flaw == "errors" else 0.004,
                   1.85 if flaw == "latency" else 1.1, 1.7 if flaw == "scores" else 1.0)
    return {"stable": stable, "good": good, "bad": bad}


def _bounds(answer: Any) -> Any:
    from pydantic import ValidationError

    from shipml.release.analysis import CanaryBounds

    if isinstance(answer, CanaryBounds):
        fields = answer.model_dump()
    elif isinstance(answer, dict):
        fields = answer
    else:
        raise TypeError("the answer is a CanaryBounds(...) (or a dict of its fields)")
    try:
        return CanaryBounds.model_validate(fields)
    except ValidationError as exc:  # one line, not pydantic's page with a URL
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "the bounds"
        raise ValueError(f"CanaryBounds refuses {where}={first.get('input')!r}: {first.get('msg', 'invalid')} "
                         "(help(CanaryBounds) gives each field's range)") from None


def replay(bounds: dict, seed: int, hour: int = 0) -> dict[str, dict]:
    """The real analysis of both canaries under ``bounds``: decision and reasons per candidate."""
    from shipml.release.analysis import CanaryBounds, analyse

    limits = CanaryBounds.model_validate(bounds)
    traffic = canary_traffic(seed, hour)
    out = {}
    for name in ("good", "bad"):
        verdict = analyse(traffic["stable"], traffic[name], limits)
        out[name] = {"decision": verdict.decision, "reasons": verdict.reasons}
    return out


def collect_bounds(answer: Any, ctx: Context) -> dict:
    if answer is None:
        raise Unanswered()
    return {"bounds": _bounds(answer).model_dump()}


def judge_bounds(bounds: dict, seed: int, hour: int = 0) -> tuple[bool, str]:
    """Promote the good candidate and abort the bad one, on that hour's traffic."""
    decisions = replay(bounds, seed, hour)
    good, bad = decisions["good"], decisions["bad"]
    if good["decision"] != "promote":
        return False, f"the good candidate is not promoted ({good['decision']}: {'; '.join(good['reasons'])[:300]})"
    if bad["decision"] != "abort":
        return False, f"the bad candidate is not aborted ({bad['decision']}: {'; '.join(bad['reasons'])[:300]})"
    return True, f"the good candidate is promoted and the bad one aborted ({bad['reasons'][0][:160]})"


def evaluate_bounds(a: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = judge_bounds(a["bounds"], ctx.seed)
    if ok:
        message += " (grading replays both candidates on other hours of traffic too)"
    return ok, message


# ---- 3. read a run record ------------------------------------------------------------------------------
STAGE_NAMES = ("train", "evaluate", "export", "build", "validate", "deploy", "smoke", "canary", "promote",
               "rollback")
STORIES = ("slice_gate", "parity", "canary_errors")


def record_story(seed: int) -> str:
    return STORIES[(seed // len(FLAWS)) % len(STORIES)]


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _metrics(rng: random.Random, auc: float, slice_auc: float) -> dict[str, float]:
    return {"roc_auc": round(auc, 4), "brier": round(rng.uniform(0.012, 0.016), 4),
            "ece": round(rng.uniform(0.004, 0.012), 4), "slice_roc_auc": round(slice_auc, 4), "rows": 20000.0,
            "slice_rows": float(rng.randint(5200, 5600)), "slice_frauds": float(rng.randint(150, 190))}


class _NightRun:
    """The record being written and last night's clock: each stage starts when the one before ended.

    The stages draw their durations and hashes from one ``rng`` in a fixed order, so a seed always gives
    the same record (the grader rebuilds it from the seed)."""

    def __init__(self, rng: random.Random, record: Any, clock: Any) -> None:
        self.rng, self.record, self.clock = rng, record, clock

    def at(self) -> str:
        return self.clock.isoformat(timespec="milliseconds")

    def stage(self, name: str, seconds: float, status: str = "passed", **fields: Any) -> Any:
        from datetime import timedelta

        from shipml.pipeline.record import StageResult

        result = StageResult(name=name, status=status, started_at=self.at(), seconds=round(seconds, 3), **fields)
        self.clock += timedelta(seconds=seconds)
        self.record.add(result)
        return result

    def end(self, status: str, stopped_at: str, reason: str) -> Any:
        self.record.finish(status, stopped_at, reason)
        self.record.finished_at = self.at()  # last night's clock, not now: the record is the same every time
        return self.record


def _deployed_version(rng: random.Random, before: int) -> dict[str, Any]:
    """What production ran before the night's run: version ``before`` with its metrics and image."""
    deployed_metrics = _metrics(rng, rng.uniform(0.86, 0.88), rng.uniform(0.82, 0.85))
    image_before = f"shipml-serving:{_hex(rng, 12)}-v{before}-{_hex(rng, 8)}"
    return {"model": "fraud-lr", "version": before, "bundle": f"artifacts/pipeline/runs/r{before}/bundle",
            "bundle_sha256": _hex(rng, 64), "onnx_sha256": _hex(rng, 64), "image": image_before,
            "image_id": "sha256:" + _hex(rng, 64), "metrics": deployed_metrics, "run_id": f"r{before}",
            "promoted_at": "2026-11-23T02:14:09.311+00:00"}


def _evaluate_stage(run: _NightRun, metrics: dict[str, float], deployed: dict[str, Any]) -> str | None:
    """The gates by the pipeline's own ``check_gates``; the reason the run stops there, or None."""
    from shipml.pipeline.config import Gates
    from shipml.pipeline.gates import check_gates

    gates = check_gates(metrics, deployed["metrics"], Gates())
    bad = [g for g in gates if not g.passed]
    reason = "gate " + "; gate ".join(g.message for g in bad) if bad else None
    fields: dict[str, Any] = {"status": "failed", "reason": reason} if bad else {}
    run.stage("evaluate", run.rng.uniform(0.2, 0.4), **fields, detail={
        "checks": [g.to_dict() for g in gates], "candidate": metrics, "deployed": deployed["metrics"],
        "compared": f"re-scored fraud-lr v{deployed['version']} on the same rows"})
    return reason


def _export_stage(run: _NightRun, seed: int, story: str) -> str | None:
    """ONNX parity by ``measure_parity`` on scores made from the seed (the "parity" story's exporter rounds
    to float16); the reason the run stops there, or None."""
    from shipml.edge.parity import measure_parity

    proba = np.random.default_rng(seed).beta(0.6, 11.0, 2000)
    if story == "parity":
        got = proba.astype(np.float16).astype(np.float64)
        parity = measure_parity(np.c_[1 - proba, proba], np.c_[1 - got, got], 1e-5)
        reason = f"parity check failed, edge bundle not written: {parity.summary()}"
        run.stage("export", run.rng.uniform(1, 3), "failed", reason=reason, detail={"checks": [
            {"name": "parity", "passed": False, "value": None, "bound": 1e-5, "message": reason}]})
        return reason
    parity = measure_parity(np.c_[1 - proba, proba], np.c_[1 - proba, proba] + 1e-8, 1e-5)
    onnx = _hex(run.rng, 64)
    run.record.candidate.onnx_sha256 = onnx
    run.stage("export", run.rng.uniform(1, 3), artifacts={"onnx_sha256": onnx}, detail={"checks": [
        {"name": "parity", "passed": True, "value": parity.max_abs_diff, "bound": 1e-5, "message": parity.summary()}]})
    return None


def _ship_stages(run: _NightRun, commit: str, version: int, image_before: str) -> None:
    """build, validate, deploy and smoke: the stages that pass in every story."""
    rng, candidate = run.rng, run.record.candidate
    image = f"shipml-serving:{commit[:12]}-v{version}-{candidate.bundle_sha256[:8]}"
    candidate.image, candidate.image_id = image, "sha256:" + _hex(rng, 64)
    run.stage("build", rng.uniform(5, 9), artifacts={"image": image, "image_id": candidate.image_id},
              detail={"steps": 14, "cached_steps": 12})
    run.stage("validate", rng.uniform(8, 12), detail={"checks": [
        {"name": "schema+policy", "passed": True, "value": 0.0, "bound": 0.0,
         "message": "strict schema and policy: ok"},
        {"name": "kube-score", "passed": True, "value": 0.0, "bound": 0.0, "message": "kube-score: no finding"}]})
    run.stage("deploy", rng.uniform(15, 25), detail={"first_release": False, "tracks": {"stable": image_before,
                                                                                         "canary": image},
                                                      "canary_share": 0.25, "cluster": "fake"})
    run.stage("smoke", rng.uniform(6, 9), detail={"checks": [{"name": "smoke", "passed": True, "value": 2.1e-7,
                                                              "bound": 1e-5, "message": "20 requests answered, "
                                                              "probabilities match the bundle"}]})


def _canary_stage(run: _NightRun, seed: int, before: int, version: int) -> str:
    """The canary judged by the release analysis: the candidate fails on errors; the reason it stopped."""
    from shipml.release.analysis import CanaryBounds, VersionStats, analyse

    traffic = canary_traffic(seed, hour=7)
    stable = traffic["stable"]
    stable.version = before
    # the candidate raises on a share of the payments: 18 of its first 120 requests failed (past min_requests,
    # so every other check was judged and passed: errors is the one failed check)
    failing = VersionStats.from_samples(version, 120, 18, traffic["good"].latencies_ms[:102],
                                        traffic["good"].scores[:102])
    verdict = analyse(stable, failing, CanaryBounds())
    checks = [{"name": c.name, "passed": c.ok is not False, "value": c.value, "bound": c.bound, "message": c.detail}
              for c in verdict.checks]
    reason = f"{verdict.decision}: {'; '.join(verdict.reasons)}"
    run.stage("canary", run.rng.uniform(20, 30), "failed", reason=reason, detail={
        "checks": checks, "share": 0.25, "requests": 480, "bounds": CanaryBounds().model_dump(),
        "verdict": verdict.model_dump(mode="json")})
    return reason


def run_record(seed: int) -> Any:
    """Question 3's record: one night's run of the pipeline, a ``shipml.pipeline.record.RunRecord``.

    Its verdicts are the kit's own computations on the numbers shown: the gates by the pipeline's
    ``check_gates``, ONNX parity by ``measure_parity``, the canary by the release analysis. The story
    (``record_story``) decides where it stops: evaluate (the slice gate), export (parity) or canary."""
    from datetime import UTC, datetime, timedelta

    from shipml.pipeline.record import Candidate, RunRecord

    rng = random.Random(seed * 104729 + 77)
    story = record_story(seed)
    commit, before = _hex(rng, 40), rng.randint(3, 7)
    clock = datetime(2026, 11, 30, 2, 0, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 900))
    deployed = _deployed_version(rng, before)
    slice_auc = deployed["metrics"]["slice_roc_auc"] + (-rng.uniform(0.05, 0.08) if story == "slice_gate"
                                                        else rng.uniform(-0.01, 0.01))
    metrics = _metrics(rng, deployed["metrics"]["roc_auc"] + rng.uniform(0.003, 0.01), slice_auc)
    run_id = clock.strftime("%Y%m%dT%H%M%S.%fZ") + f"-{commit[:8]}"
    version = before + 1
    run = _NightRun(rng, RunRecord(run_id=run_id, commit=commit, started_at=clock.isoformat(timespec="milliseconds"),
                                   deployed_before=deployed, candidate=Candidate(name="fraud-lr", version=version),
                                   config={"model": "fraud-lr", "kind": "lr"}), clock)
    candidate = run.record.candidate
    candidate.bundle = f"artifacts/pipeline/runs/{run_id}/bundle/fraud-lr/{version}"
    candidate.bundle_sha256 = _hex(rng, 64)
    run.stage("train", rng.uniform(6, 9), detail={"rows": 20000, "kind": "lr"},
              artifacts={"bundle": candidate.bundle, "bundle_sha256": candidate.bundle_sha256})
    candidate.metrics = metrics
    if reason := _evaluate_stage(run, metrics, deployed):
        return run.end("stopped", "evaluate", reason)
    if reason := _export_stage(run, seed, story):
        return run.end("stopped", "export", reason)
    _ship_stages(run, commit, version, deployed["image"])
    reason = _canary_stage(run, seed, before, version)
    run.stage("rollback", rng.uniform(3, 6), detail={"tracks": {"stable": deployed["image"]}, "deployed": deployed})
    return run.end("rolled_back", "canary", reason)


def collect_diagnosis(answer: Any, ctx: Context) -> dict:
    if answer is None:
        raise Unanswered()
    if not isinstance(answer, dict):
        raise TypeError('the answer is a dict: {"stopped_at": ..., "failed_check": ..., "serving_version": ...}')
    missing = {"stopped_at", "failed_check", "serving_version"} - set(answer)
    if missing:
        raise TypeError(f"the answer misses {', '.join(sorted(missing))}")
    version = answer["serving_version"]
    if isinstance(version, bool) or not isinstance(version, int | np.integer):
        raise TypeError("serving_version is a version number (an int)")
    for key in ("stopped_at", "failed_check"):
        if not isinstance(answer[key], str):
            raise TypeError(f"{key} is a name from the record (a string), not {type(answer[key]).__name__}")
    return {"stopped_at": answer["stopped_at"].strip().lower(),
            "failed_check": " ".join(answer["failed_check"].lower().split()), "serving_version": int(version)}


def evaluate_diagnosis(a: dict, ctx: Context) -> tuple[bool, str]:
    if a["stopped_at"] not in STAGE_NAMES:
        return False, f"stopped_at is a stage name of the record ({', '.join(STAGE_NAMES)}), not {a['stopped_at']!r}"
    if not a["failed_check"]:
        return False, "failed_check is empty: name the gate or check that failed"
    if len(a["failed_check"]) > 60:
        return False, "failed_check is one check's name, as the record names it, not a sentence"
    if a["serving_version"] < 1:
        return False, "versions start at 1"
    return True, "a stage, a check and a version (grading compares them with the record)"


QUESTIONS = [
    Question("gate", 3, collect_gate, evaluate_gate,
             "write one rule at a time and test it on the examples in the text; ask what `<` does with NaN, and "
             "what your code does when a key is not there",
             "Write a release gate", instant_judges=False),
    Question("bounds", 3, collect_bounds, evaluate_bounds,
             "run analyse() with the default bounds on both candidates and read each Check's value next to its "
             "bound: which number separates the good candidate from the bad one?",
             "Choose canary bounds", instant_judges=False),
    Question("diagnosis", 2, collect_diagnosis, evaluate_diagnosis,
             "read record.summary() first, then the detail of the stage that did not pass; and ask what a "
             "rollback leaves running",
             "Why did the run stop?", instant_judges=False),
]
