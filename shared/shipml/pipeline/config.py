"""The pipeline's settings: one pydantic object, from defaults, a YAML/JSON file, then CLI flags.

Everything a run depends on is here and is written into its run record, so a record says exactly
what was asked. ``state_file`` is where "the version now deployed" lives between runs: the pipeline
reads it before the gates (the candidate is compared with it) and writes it only when it promotes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shipml.errors import ShipmlError

STAGES = ("train", "evaluate", "export", "build", "validate", "deploy", "smoke", "canary", "promote")
DEFAULT_CONFIG = Path("pipeline.yaml")


class Gates(BaseModel):
    """Bounds a candidate must meet on held-out data before anything is built."""

    model_config = ConfigDict(extra="forbid")

    auc_margin: float = Field(0.01, ge=0, le=1, description="ROC AUC may be at most this much below the deployed")
    min_auc: float = Field(0.70, ge=0, le=1, description="ROC AUC floor, also when nothing is deployed yet")
    max_brier: float = Field(0.05, gt=0, le=1, description="Brier score bound (mean squared error of p)")
    max_ece: float = Field(0.03, gt=0, le=1, description="expected calibration error bound (10 bins)")
    slice_column: str = Field("card_present", description="the feature whose slice is checked on its own")
    slice_value: Any = Field(False, description="the slice: rows where slice_column equals this")
    slice_auc_margin: float = Field(0.03, ge=0, le=1, description="slice ROC AUC may be this much below the deployed's")
    min_slice_auc: float = Field(0.65, ge=0, le=1, description="slice ROC AUC floor")
    min_slice_rows: int = Field(200, ge=10, description="fewer held-out rows in the slice: the gate fails (no verdict)")


class PipelineConfig(BaseModel):
    """A model's CD pipeline: what to train, the gates, where the image and the cluster are."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    workdir: Path = Field(Path("artifacts/pipeline"), description="runs, bundles and the build context")
    state_file: Path | None = Field(None, description="the deployed version (default: <workdir>/deployed.json)")
    model: str = Field("fraud-lr", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="model name in the repository")
    kind: Literal["lr", "hgb", "mlp"] = "lr"
    data: Path | None = Field(None, description="training data file (CSV/Parquet); none: generated")
    rows: int = Field(20_000, ge=500, le=50_000_000, description="generated training rows")
    seed: int = Field(0, ge=0)
    label_shuffle: float = Field(0.0, ge=0, le=1, description="share of labels shuffled (a bad model)")
    decision_threshold: float | None = Field(None, gt=0, lt=1, description="p(fraud) from which label is 1")
    holdout_rows: int = Field(20_000, ge=500, description="fresh held-out rows the gates score (seeded apart)")
    holdout_seed: int = Field(10_007, ge=0)
    gates: Gates = Field(default_factory=Gates)
    parity_rows: int = Field(2_000, ge=100, description="rows the ONNX parity check scores")
    parity_tolerance: float = Field(1e-5, gt=0)
    image_repository: str = Field("shipml-serving", pattern=r"^[a-z0-9][a-z0-9._/-]*$")
    tag_prefix: str = Field("", pattern=r"^[A-Za-z0-9_.-]*$", description="e.g. dev-pipeline- for experiments")
    no_cache: bool = Field(False, description="build without the layer cache (a cold build, for measuring)")
    base_image: str = Field("python:3.11-slim", description="already in the engine (never pulled)")
    cluster: Literal["none", "fake", "kind", "kubeconfig"] = Field(
        "fake", description="none: skip deploy; fake: `shipml cluster up --fake-nodes`; kind; kubeconfig")
    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str = Field("shipml", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    overlay: str = Field("canary", description="the overlay deploy applies (stable + canary Deployments)")
    node_port: int | None = Field(30080, ge=30000, le=32767, description="the Service's NodePort (kind maps "
                                  "30080 to localhost); none: the API server picks a free one")
    canary_replicas: int = Field(1, ge=1, le=10, description="canary pods beside the stable's: the split")
    rollout_timeout: int = Field(120, ge=10, le=1800)
    smoke_requests: int = Field(20, ge=1, le=10_000, description="requests the smoke test sends")
    canary_requests: int = Field(600, ge=20, le=100_000, description="most requests the canary analysis sends")
    # Two honest retrains of the lr model score the same traffic with a KS distance of 0.03-0.15 (measured
    # on 20,000 held-out rows), plus ~0.1 of sampling noise at 100 requests: 0.3 allows that and still
    # stops a constant or broken model (D near 1). Latency: 20 ms of slack on a shared 2-core machine.
    canary_bounds: dict[str, Any] = Field(
        default_factory=lambda: {"min_requests": 100, "max_score_shift": 0.3, "latency_slack_ms": 20.0},
        description="shipml.release.analysis.CanaryBounds fields")

    @model_validator(mode="after")
    def _cluster_needs_kubeconfig(self) -> PipelineConfig:
        if self.cluster == "kubeconfig" and self.kubeconfig is None:
            raise ValueError("cluster 'kubeconfig' needs kubeconfig: PATH")
        return self

    @property
    def state_path(self) -> Path:
        return self.state_file or self.workdir / "deployed.json"

    @property
    def runs_dir(self) -> Path:
        return self.workdir / "runs"

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> PipelineConfig:
        """Defaults, then the file (``pipeline.yaml`` when it exists and none is named), then ``overrides``
        (None values ignored). Any mistake is one ShipmlError line."""
        data: dict[str, Any] = {}
        if path is None and DEFAULT_CONFIG.is_file():
            path = DEFAULT_CONFIG
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise ShipmlError(f"{path}: no such pipeline config file")
            try:
                loaded = yaml.safe_load(path.read_text()) if path.suffix in (".yaml", ".yml") \
                    else json.loads(path.read_text())
            except (yaml.YAMLError, ValueError) as exc:
                raise ShipmlError(f"{path}: not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
            if not isinstance(loaded, dict):
                raise ShipmlError(f"{path}: a pipeline config is a mapping of settings")
            data.update(loaded)
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            elif value is not None:
                data[key] = value
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "config"
            source = f"{path}: " if path is not None else ""
            raise ShipmlError(f"{source}{where}: {first['msg']} ({len(exc.errors())} problem(s))") from None
