"""The stages, one function each: ``stage(run) -> StageResult``. A stage that finds the candidate wanting
raises :class:`StageFailed` with one line saying why; :mod:`shipml.pipeline.run` records it, stops the
run, and rolls back what was deployed. Every stage also runs alone (``shipml pipeline <stage>``): it
continues the run record left by the ones before it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shipml.bundle import SUMS_FILE, sha256_file
from shipml.errors import ShipmlError
from shipml.pipeline.config import PipelineConfig
from shipml.pipeline.record import RunRecord, StageResult, now
from shipml.pipeline.state import DeployedState, load_state, save_state


class StageFailed(ShipmlError):
    """The candidate failed a stage; ``checks`` holds every check's verdict (the one shape of gates,
    parity, smoke and canary: name, passed, value, bound, message)."""

    def __init__(self, message: str, checks: list[dict[str, Any]] | None = None,
                 artifacts: dict[str, str] | None = None, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.checks = checks or []
        self.artifacts = artifacts or {}
        self.detail = detail or {}


@dataclass
class Run:
    """A run in progress: its config, its record, and the state it compares with."""

    config: PipelineConfig
    record: RunRecord

    @property
    def folder(self) -> Path:
        return self.record.folder

    def deployed(self) -> DeployedState | None:
        return load_state(self.config.state_path)

    def require(self, *stages: str) -> None:
        for name in stages:
            if not self.record.passed(name):
                raise ShipmlError(f"run {self.record.run_id}: stage '{name}' has not passed: run "
                                  f"`shipml pipeline {name}` first")


def bundle_digest(bundle: Path) -> str:
    """One hash for a whole bundle: the sha256 of its SHA256SUMS (which lists every file's sha256)."""
    return sha256_file(Path(bundle) / SUMS_FILE)


def _result(name: str, started: float, started_at: str, **fields: Any) -> StageResult:
    return StageResult(name=name, status=fields.pop("status", "passed"), started_at=started_at,
                       seconds=time.perf_counter() - started, **fields)


def timed(name: str) -> Callable[[Callable[[Run], dict[str, Any]]], Callable[[Run], StageResult]]:
    """Wrap a stage body returning {artifacts, detail[, status, reason]} into a timed StageResult."""
    def wrap(body: Callable[[Run], dict[str, Any]]) -> Callable[[Run], StageResult]:
        def stage(run: Run) -> StageResult:
            started_at, started = now(), time.perf_counter()
            try:
                out = body(run)
            except StageFailed as exc:
                exc.result = _result(name, started, started_at, status="failed", reason=str(exc),  # type: ignore[attr-defined]
                                     artifacts=exc.artifacts, detail={**exc.detail, "checks": exc.checks})
                raise
            return _result(name, started, started_at, **out)
        stage.__name__ = stage.__qualname__ = name
        stage.__doc__ = body.__doc__
        return stage
    return wrap


# ---- train ----------------------------------------------------------------------------------------

def training_frame(config: PipelineConfig):
    """The training rows: the data file, or ``rows`` generated with ``seed``; ``label_shuffle`` of the
    labels permuted (a model that learns nothing, for the lessons' bad candidate)."""
    from shipml.data import make_transactions, read_table

    df = read_table(config.data) if config.data is not None else make_transactions(config.rows, seed=config.seed)
    if config.label_shuffle:
        rng = np.random.default_rng(config.seed + 1)
        chosen = rng.random(len(df)) < config.label_shuffle
        labels = df["is_fraud"].to_numpy().copy()
        labels[chosen] = rng.permutation(labels[chosen])
        df = df.assign(is_fraud=labels)
    return df


@timed("train")
def train(run: Run) -> dict[str, Any]:
    """Train the candidate and save it as a verified bundle, one version above the deployed one."""
    from shipml.models import save_bundle
    from shipml.models import train as fit

    config, candidate = run.config, run.record.candidate
    out = run.folder / "bundle" / candidate.name / str(candidate.version)
    if out.exists():
        shutil.rmtree(out)
    result = fit(training_frame(config), config.kind, seed=config.seed)
    save_bundle(result, out, name=candidate.name, version=candidate.version,
                decision_threshold=config.decision_threshold)
    candidate.bundle, candidate.bundle_sha256 = str(out), bundle_digest(out)
    return {"artifacts": {"bundle": str(out), "bundle_sha256": candidate.bundle_sha256},
            "detail": {"training_metrics": result.metrics, "training_data": result.training_data}}


# ---- evaluate ---------------------------------------------------------------------------------------

def holdout_frame(config: PipelineConfig):
    """Fresh rows neither model trained on (seeded apart from the training data)."""
    from shipml.data import make_transactions

    return make_transactions(config.holdout_rows, seed=config.holdout_seed)


def score_bundle(bundle: Path, frame, config: PipelineConfig) -> dict[str, float]:
    from shipml.models import SklearnPredictor
    from shipml.pipeline.gates import holdout_metrics

    predictor = SklearnPredictor.load(bundle)
    proba = predictor.predict_proba(frame)[:, 1]
    in_slice = frame[config.gates.slice_column].to_numpy() == config.gates.slice_value
    return holdout_metrics(frame["is_fraud"].to_numpy(), proba, in_slice)


@timed("evaluate")
def evaluate(run: Run) -> dict[str, Any]:
    """Score the candidate and the deployed version on the same held-out rows; check the gates."""
    from shipml.pipeline.gates import check_gates, failed

    run.require("train")
    config, candidate = run.config, run.record.candidate
    if config.gates.slice_column not in {f.name for f in _schema().features}:
        raise ShipmlError(f"gates.slice_column: '{config.gates.slice_column}' is not a feature")
    frame = holdout_frame(config)
    metrics = score_bundle(Path(candidate.bundle or ""), frame, config)
    deployed, deployed_metrics, compared = run.deployed(), None, "nothing deployed yet: floors only"
    if deployed is not None:
        try:
            deployed_metrics = score_bundle(Path(deployed.bundle), frame, config)
            compared = f"re-scored {deployed.model} v{deployed.version} on the same rows"
        except ShipmlError as exc:  # its bundle is gone: the figures it was promoted with
            deployed_metrics, compared = deployed.metrics, f"recorded figures of v{deployed.version} ({exc})"
    candidate.metrics = metrics
    verdicts = check_gates(metrics, deployed_metrics, config.gates)
    checks = [g.to_dict() for g in verdicts]
    bad = failed(verdicts)
    if bad:
        raise StageFailed("gate " + "; gate ".join(g.message for g in bad), checks,
                          detail={"candidate": metrics, "deployed": deployed_metrics, "compared": compared})
    return {"detail": {"checks": checks, "candidate": metrics, "deployed": deployed_metrics, "compared": compared}}


def _schema():
    from shipml.data import SCHEMA

    return SCHEMA


# ---- export ----------------------------------------------------------------------------------------

@timed("export")
def export(run: Run) -> dict[str, Any]:
    """ONNX export with the parity gate (edge.export refuses a graph beyond tolerance)."""
    from shipml.edge.export import ParityError, export_bundle

    run.require("evaluate")
    config, candidate = run.config, run.record.candidate
    out = run.folder / "onnx" / candidate.name / str(candidate.version)
    if out.exists():
        shutil.rmtree(out)
    try:
        done = export_bundle(candidate.bundle or "", out, parity_rows=config.parity_rows,
                             tolerance=config.parity_tolerance)
    except ParityError as exc:
        raise StageFailed(f"parity: {exc}") from None
    candidate.onnx_bundle, candidate.onnx_sha256 = str(out), bundle_digest(out)
    parity = done.parity
    check = {"name": "parity", "passed": True, "value": parity.max_abs_diff, "bound": parity.tolerance,
             "message": parity.summary()}
    return {"artifacts": {"onnx_bundle": str(out), "onnx_sha256": candidate.onnx_sha256},
            "detail": {"checks": [check], "size_bytes": done.size_bytes}}


# ---- build -----------------------------------------------------------------------------------------

@timed("build")
def build(run: Run) -> dict[str, Any]:
    """The serving image with the ONNX bundle baked in, tagged with the commit, recorded by its digest."""
    from shipml.pipeline import image

    run.require("export")
    config, candidate, record = run.config, run.record.candidate, run.record
    onnx = Path(candidate.onnx_bundle or "")
    if bundle_digest(onnx) != candidate.onnx_sha256:  # what is built is what passed the gates
        raise ShipmlError(f"{onnx} changed after the export stage (its hash differs): run export again")
    tag = image.image_tag(config.image_repository, config.tag_prefix, record.commit, candidate.version,
                          candidate.bundle_sha256 or "")
    context = image.stage_context(onnx, candidate.name, candidate.version, run.folder / "context")
    built = image.build(context, tag, base_image=config.base_image, labels={
        "org.opencontainers.image.revision": record.commit, "io.shipml.model": candidate.name,
        "io.shipml.model-version": str(candidate.version), "io.shipml.bundle-sha256": candidate.bundle_sha256 or "",
        "io.shipml.pipeline-run": record.run_id}, nocache=config.no_cache)
    shutil.rmtree(context, ignore_errors=True)
    candidate.image, candidate.image_id = built.tag, built.image_id
    return {"artifacts": {"image": built.tag, "image_id": built.image_id},
            "detail": {"steps": built.steps, "cached_steps": built.cached_steps, "build_seconds": built.seconds}}


# ---- validate --------------------------------------------------------------------------------------

def release_docs(run: Run, *, candidate_as_stable: bool = False) -> list[dict[str, Any]]:
    """The manifests of this release: the deployed version as stable and the candidate as canary (the
    candidate as stable, no canary, when nothing is deployed yet or when promoting)."""
    from shipml.pipeline.release import render_release

    candidate, deployed = run.record.candidate, run.deployed()
    mine = {"image": candidate.image, "model_version": candidate.version, "bundle_sha256": candidate.bundle_sha256,
            "image_id": candidate.image_id, "pipeline_run": run.record.run_id}
    if deployed is None or candidate_as_stable:
        return render_release(run.config, mine, None, node_port=run.config.node_port)
    stable = {"image": deployed.image, "model_version": deployed.version, "bundle_sha256": deployed.bundle_sha256,
              "image_id": deployed.image_id, "pipeline_run": deployed.run_id}
    return render_release(run.config, stable, mine, node_port=run.config.node_port)


@timed("validate")
def validate(run: Run) -> dict[str, Any]:
    """Schema (strict) and the kit's policy on the exact manifests deploy will apply; kube-score too
    when it is built. The manifests and their hash go into the run folder."""
    from shipml.cluster import render
    from shipml.cluster.validate import check_docs
    from shipml.pipeline.image import sha256_text

    run.require("build")
    docs = release_docs(run)
    text = render.to_yaml(docs)
    path = run.folder / "manifests.yaml"
    path.write_text(text)
    problems = [str(p) for p in check_docs(docs)]
    findings = _kube_score(path)
    checks = [{"name": "schema+policy", "passed": not problems, "value": float(len(problems)), "bound": 0.0,
               "message": "; ".join(problems[:3]) or "strict schema and policy: ok"}]
    if findings is not None:
        checks.append({"name": "kube-score", "passed": not findings, "value": float(len(findings)), "bound": 0.0,
                       "message": "; ".join(findings[:3]) or "kube-score: no finding"})
    run.record.candidate.manifest_sha256 = sha256_text(text)
    artifacts = {"manifests": str(path), "manifest_sha256": run.record.candidate.manifest_sha256}
    if problems or findings:
        raise StageFailed(f"manifests: {(problems or findings)[0]}", checks, artifacts)
    return {"artifacts": artifacts, "detail": {"checks": checks, "objects": len(docs)}}


def _kube_score(path: Path) -> list[str] | None:
    from shipml.cluster import score

    if score.kube_score_binary() is None:
        return None
    return [str(f) for f in score.score(path)]


# ---- deploy ----------------------------------------------------------------------------------------

def _skip(reason: str) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason}


@timed("deploy")
def deploy(run: Run) -> dict[str, Any]:
    """Apply the validated manifests: the candidate as canary beside the stable (or as the first stable)."""
    from shipml.cluster import render
    from shipml.pipeline import image
    from shipml.pipeline.release import apply_release, canary_share, cluster_kubectl

    run.require("validate")
    config, candidate = run.config, run.record.candidate
    if config.cluster == "none":
        return _skip("cluster: none (nothing deployed; smoke test and canary run on the local engine)")
    path = run.folder / "manifests.yaml"
    text = path.read_text()
    if image.sha256_text(text) != candidate.manifest_sha256:
        raise ShipmlError(f"{path} changed after validation: run `shipml pipeline validate` again")
    image.require_image(candidate.image or "", candidate.image_id)
    kubectl = cluster_kubectl(config)
    if config.cluster == "kind":
        from shipml.cluster.kind import load_image

        load_image(candidate.image or "")
    done = apply_release(kubectl, render.parse_yaml(text, source=str(path)), config.rollout_timeout)
    first = run.deployed() is None
    return {"artifacts": {"manifest_sha256": candidate.manifest_sha256 or ""},
            "detail": {"first_release": first, "tracks": done["tracks"],
                       "canary_share": 1.0 if first else canary_share(kubectl), "cluster": config.cluster}}


# ---- smoke -----------------------------------------------------------------------------------------

def onnx_predictor(run: Run):
    from shipml.edge.runtime import OnnxPredictor

    return OnnxPredictor.load(run.record.candidate.onnx_bundle or "")


@timed("smoke")
def smoke(run: Run) -> dict[str, Any]:
    """Real requests to the built image on 127.0.0.1 (and through the cluster when its pods really run)."""
    from shipml.pipeline import image
    from shipml.pipeline.smoke import SmokeFailed, records, smoke_image

    run.require("build")
    config, candidate = run.config, run.record.candidate
    image.require_image(candidate.image or "", candidate.image_id)
    predictor = onnx_predictor(run)
    rows = records(holdout_frame(config).head(config.smoke_requests), predictor.schema.names)
    try:
        report = smoke_image(candidate.image or "", predictor, rows, name=candidate.name, version=candidate.version)
    except SmokeFailed as exc:
        raise StageFailed(str(exc), [{"name": "smoke", "passed": False, "value": None,
                                                  "bound": None, "message": str(exc)}]) from None
    detail = {"image": report.detail(), "checks": [
        {"name": "smoke", "passed": True, "value": report.max_probability_diff, "bound": 1e-5,
         "message": "; ".join(report.checks)}]}
    if config.cluster == "kind" and run.record.passed("deploy"):
        detail["cluster"] = _smoke_cluster(run, predictor, rows)
    else:
        detail["cluster"] = ("not run: " + ("fake nodes run no containers" if config.cluster in ("fake", "kubeconfig")
                                            else "nothing deployed"))
    return {"detail": detail}


def _smoke_cluster(run: Run, predictor, rows) -> dict[str, Any]:
    """Through the Service (kind maps its NodePort to localhost): answers from the stable or the canary."""
    import httpx

    from shipml.cluster import workflow
    from shipml.pipeline.release import cluster_kubectl

    kubectl = cluster_kubectl(run.config)
    url, key = workflow.service_url(kubectl), workflow.api_key(kubectl)
    if url is None:
        return {"skipped": "the Service has no URL from this machine"}
    versions: dict[str, int] = {}
    with httpx.Client(timeout=10, headers={"X-API-Key": key} if key else {}) as http:
        for row in rows:
            answer = http.post(f"{url}/predict", json=row, headers={"Connection": "close"})
            if answer.status_code != 200:
                raise StageFailed(f"through the cluster: POST {url}/predict got HTTP {answer.status_code}")
            version = str(answer.json().get("version"))
            versions[version] = versions.get(version, 0) + 1
    return {"url": url, "answers_by_version": versions}


# ---- canary ----------------------------------------------------------------------------------------

@timed("canary")
def canary(run: Run) -> dict[str, Any]:
    """Automated canary analysis (shipml.release.analysis) on real requests answered by the stable and
    the candidate images, split as the Service splits them (the canary's share of Ready pods)."""
    from shipml.pipeline.canary import analyse_images

    run.require("smoke")
    deployed, candidate = run.deployed(), run.record.candidate
    if deployed is None:
        return _skip("nothing deployed before this run: no stable version to compare with")
    deploy_stage = run.record.stage("deploy")
    share = float((deploy_stage.detail if deploy_stage else {}).get("canary_share") or 0.0) \
        or run.config.canary_replicas / (run.config.canary_replicas + 3)
    verdict, detail = analyse_images(deployed, candidate, run.config, share, holdout_frame(run.config))
    checks = [{"name": c["name"], "passed": c["ok"] is not False, "value": c.get("value"), "bound": c.get("bound"),
               "message": c.get("detail") or ""} for c in detail["verdict"]["checks"]]
    detail["checks"] = checks
    if verdict != "promote":
        reasons = "; ".join(detail["verdict"].get("reasons") or []) or f"decision {verdict}"
        raise StageFailed(f"{verdict}: {reasons}", checks, detail=detail)
    return {"detail": detail}


# ---- promote / rollback ------------------------------------------------------------------------------

@timed("promote")
def promote(run: Run) -> dict[str, Any]:
    """The candidate becomes the stable version: the stable Deployment takes its image, the canary goes,
    and the deployed-state file records it (the only stage that writes it)."""
    from shipml.pipeline.release import apply_release, cluster_kubectl

    run.require("smoke")
    if run.deployed() is not None and not run.record.passed("canary"):
        run.require("canary")
    config, candidate = run.config, run.record.candidate
    detail: dict[str, Any] = {}
    if run.record.passed("deploy"):
        kubectl = cluster_kubectl(config)
        detail["tracks"] = apply_release(kubectl, release_docs(run, candidate_as_stable=True),
                                         config.rollout_timeout)["tracks"]
    state = DeployedState(model=candidate.name, version=candidate.version, bundle=candidate.bundle or "",
                          bundle_sha256=candidate.bundle_sha256 or "", onnx_sha256=candidate.onnx_sha256,
                          image=candidate.image or "", image_id=candidate.image_id,
                          metrics=candidate.metrics, run_id=run.record.run_id, promoted_at=now())
    save_state(config.state_path, state)
    return {"artifacts": {"state_file": str(config.state_path), "image": state.image,
                          "image_id": state.image_id or ""}, "detail": detail}


@timed("rollback")
def rollback(run: Run) -> dict[str, Any]:
    """Undo this run's release: the canary Deployment deleted (a first release: its stable too); the
    deployed-state file is left as it was."""
    from shipml.pipeline.release import cluster_kubectl, remove_canary, remove_stable, tracks

    if not run.record.passed("deploy"):
        return _skip("nothing of this run was deployed")
    kubectl = cluster_kubectl(run.config)
    deployed = run.deployed()
    if deployed is None:
        remove_stable(kubectl)
    remove_canary(kubectl)
    return {"detail": {"tracks": tracks(kubectl), "deployed": deployed.model_dump() if deployed else None}}


STAGE_FUNCTIONS: dict[str, Callable[[Run], StageResult]] = {
    "train": train, "evaluate": evaluate, "export": export, "build": build, "validate": validate,
    "deploy": deploy, "smoke": smoke, "canary": canary, "promote": promote, "rollback": rollback,
}
