"""The run record: what each stage did, how long it took, the hashes of what it made, why a run stopped.

One JSON file per run (``<workdir>/runs/<run_id>/record.json``), rewritten after every stage, so a
run cut off half way still says how far it got; ``<workdir>/runs/latest`` names the newest run, which
the stage commands continue when run one at a time.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from shipml.errors import ShipmlError

StageStatus = Literal["passed", "failed", "skipped"]
RunStatus = Literal["running", "passed", "promoted", "stopped", "rolled_back"]
RECORD_FILE = "record.json"
LATEST_FILE = "latest"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class StageResult(BaseModel):
    """One stage: passed, failed (with the reason) or skipped (with why)."""

    name: str
    status: StageStatus
    started_at: str
    seconds: float
    artifacts: dict[str, str] = Field(default_factory=dict)  # path, sha256, image id, manifest hash...
    detail: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None  # one line: why it failed or was skipped


class Candidate(BaseModel):
    """The model this run ships, filled in stage by stage."""

    name: str
    version: int
    bundle: str | None = None
    bundle_sha256: str | None = None
    onnx_bundle: str | None = None
    onnx_sha256: str | None = None
    image: str | None = None
    image_id: str | None = None  # the image's content digest (sha256 of its config)
    manifest_sha256: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class RunRecord(BaseModel):
    """A whole run; ``status`` and ``reason`` say how it ended."""

    run_id: str
    commit: str
    started_at: str
    finished_at: str | None = None
    status: RunStatus = "running"
    stopped_at: str | None = None  # the stage that stopped the run
    reason: str | None = None
    candidate: Candidate
    deployed_before: dict[str, Any] | None = None  # the DeployedState the run compared with
    config: dict[str, Any] = Field(default_factory=dict)
    stages: list[StageResult] = Field(default_factory=list)
    path: Path | None = Field(None, exclude=True)

    @property
    def folder(self) -> Path:
        if self.path is None:
            raise ShipmlError("this run record has no folder")
        return self.path.parent

    def stage(self, name: str) -> StageResult | None:
        """The latest result of stage ``name`` (None if it has not run)."""
        return next((s for s in reversed(self.stages) if s.name == name), None)

    def passed(self, name: str) -> bool:
        found = self.stage(name)
        return found is not None and found.status == "passed"

    def add(self, result: StageResult) -> None:
        self.stages = [s for s in self.stages if s.name != result.name] + [result]

    def finish(self, status: RunStatus, stopped_at: str | None = None, reason: str | None = None) -> None:
        self.status, self.stopped_at, self.reason, self.finished_at = status, stopped_at, reason, now()

    def seconds(self) -> dict[str, float]:
        """Wall seconds per stage (the figure the README reports)."""
        return {s.name: round(s.seconds, 3) for s in self.stages}

    def summary(self) -> str:
        lines = [f"run {self.run_id} (commit {self.commit[:12]}): {self.status}"
                 + (f" at {self.stopped_at}: {self.reason}" if self.reason else "")]
        for s in self.stages:
            lines.append(f"  {s.name:<9} {s.status:<7} {s.seconds:7.2f} s" + (f"  {s.reason}" if s.reason else ""))
        return "\n".join(lines)

    def save(self, path: Path | None = None) -> Path:
        """Write atomically (a reader never sees half a record) and point ``latest`` at this run."""
        self.path = Path(path) if path is not None else self.path
        if self.path is None:
            raise ShipmlError("say where to save the run record")
        write_json_atomically(self.path, self.model_dump(mode="json"))
        latest = self.path.parent.parent / LATEST_FILE
        latest.write_text(self.path.parent.name + "\n")
        return self.path

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        """A record from its file or its run folder."""
        path = Path(path)
        if path.is_dir():
            path = path / RECORD_FILE
        try:
            record = cls.model_validate_json(path.read_text())
        except FileNotFoundError:
            raise ShipmlError(f"{path}: no run record (start a run with `shipml pipeline train`)") from None
        except ValueError as exc:
            raise ShipmlError(f"{path}: not a run record ({str(exc).splitlines()[0]})") from None
        record.path = path
        return record


def latest_run(runs_dir: Path) -> Path:
    """The folder of the newest run under ``runs_dir``."""
    try:
        name = (runs_dir / LATEST_FILE).read_text().strip()
    except FileNotFoundError:
        raise ShipmlError(f"no pipeline run under {runs_dir}: start one with `shipml pipeline train`") from None
    return runs_dir / name


def write_json_atomically(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
