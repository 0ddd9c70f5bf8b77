"""Chaining the stages: a new run, one stage at a time with the record saved after each, and the
automatic rollback when a stage fails after the candidate reached the cluster.

``shipml pipeline run`` calls :func:`run_pipeline`; ``shipml pipeline <stage>`` calls
:func:`run_stage` on the latest run, with the same failure handling, so a workflow that runs the
stages one by one stops and rolls back exactly as the chained run does.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shipml.errors import ShipmlError
from shipml.pipeline.config import STAGES, PipelineConfig
from shipml.pipeline.record import RECORD_FILE, Candidate, RunRecord, StageResult, latest_run, now
from shipml.pipeline.stages import STAGE_FUNCTIONS, Run, StageFailed
from shipml.pipeline.state import load_state

AFTER_DEPLOY = ("smoke", "canary", "promote")  # a failure here undoes the release


def start_run(config: PipelineConfig) -> Run:
    """A new run folder and record; the candidate's version is the deployed one's plus one."""
    from shipml.pipeline.image import git_commit

    deployed = load_state(config.state_path)
    if deployed is not None and deployed.model != config.model:
        raise ShipmlError(f"{config.state_path} records model {deployed.model}, this config ships {config.model}: "
                          "use another workdir/state_file per model")
    commit = git_commit()
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ") + f"-{commit[:8]}"
    record = RunRecord(run_id=run_id, commit=commit, started_at=now(),
                       candidate=Candidate(name=config.model, version=(deployed.version + 1) if deployed else 1),
                       deployed_before=deployed.model_dump(mode="json") if deployed else None,
                       config=config.model_dump(mode="json"))
    record.save(config.runs_dir / run_id / RECORD_FILE)
    return Run(config, record)


def open_run(config: PipelineConfig, folder: str | None = None) -> Run:
    """The run in ``folder`` (default: the latest); it must still be going."""
    from pathlib import Path

    record = RunRecord.load(Path(folder) if folder else latest_run(config.runs_dir))
    if record.status not in ("running", "passed"):
        raise ShipmlError(f"run {record.run_id} has ended ({record.status}"
                          + (f" at {record.stopped_at}: {record.reason}" if record.reason else "")
                          + "): start a new one with `shipml pipeline train`")
    return Run(config, record)


def run_stage(run: Run, name: str) -> StageResult:
    """Run one stage and record it. On failure: the run stops (rolled back when the candidate was
    deployed) and ShipmlError carries the one-line reason."""
    if name not in STAGE_FUNCTIONS:
        raise ShipmlError(f"unknown stage '{name}' (stages: {', '.join(STAGE_FUNCTIONS)})")
    record = run.record
    try:
        result = STAGE_FUNCTIONS[name](run)
    except StageFailed as exc:
        result = exc.result  # type: ignore[attr-defined]
    except ShipmlError as exc:  # a tool or input problem inside the stage: the run stops here too
        result = StageResult(name=name, status="failed", started_at=now(), seconds=0.0, reason=str(exc))
    record.add(result)
    if result.status == "failed":
        _stop(run, name, result.reason or "failed")
    elif name == "promote":
        record.finish("promoted")
    elif name == "rollback":
        record.finish("rolled_back", "rollback", "rolled back by request")
    record.save()
    if result.status == "failed":
        raise ShipmlError(f"{name}: {result.reason}")
    return result


def _stop(run: Run, name: str, reason: str) -> None:
    record = run.record
    if name in AFTER_DEPLOY and record.passed("deploy") and name != "rollback":
        try:
            record.add(STAGE_FUNCTIONS["rollback"](run))
        except ShipmlError as exc:
            record.add(StageResult(name="rollback", status="failed", started_at=now(), seconds=0.0, reason=str(exc)))
            record.finish("stopped", name, f"{reason} (and the rollback failed: {exc})")
            return
        record.finish("rolled_back", name, reason)
    else:
        record.finish("stopped", name, reason)


def run_pipeline(config: PipelineConfig, until: str | None = None) -> RunRecord:
    """Every stage in order (up to ``until``); returns the record of a promoted run, raises ShipmlError
    (the run's one-line reason) for a stopped or rolled-back one — the record is saved either way."""
    if until is not None and until not in STAGES:
        raise ShipmlError(f"--until: unknown stage '{until}' (stages: {', '.join(STAGES)})")
    run = start_run(config)
    for name in STAGES:
        run_stage(run, name)
        if name == until:
            if until != "promote":
                run.record.finish("passed", until, f"stopped after {until} as asked (--until)")
                run.record.save()
            break
    return run.record
