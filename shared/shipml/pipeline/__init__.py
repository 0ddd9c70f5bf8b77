"""A model's CD pipeline, every stage real: train -> evaluate (quality gates against the deployed version)
-> export (ONNX, parity gate) -> build (the serving image, by digest) -> validate (manifests) -> deploy
(canary beside the stable) -> smoke (real requests) -> canary (automated analysis) -> promote, or an
automatic rollback.

One module per concern: ``config`` (PipelineConfig), ``record`` (the run record), ``state`` (the deployed
version between runs), ``gates`` (pure verdicts), ``image``, ``release`` (Kubernetes), ``smoke``,
``canary``, ``stages`` (one function per stage), ``run`` (chaining, rollback). ``shipml pipeline`` is the CLI.
"""

from shipml.pipeline.config import STAGES, Gates, PipelineConfig
from shipml.pipeline.record import Candidate, RunRecord, StageResult
from shipml.pipeline.state import DeployedState, load_state

__all__ = ["STAGES", "Candidate", "DeployedState", "Gates", "PipelineConfig", "RunRecord", "StageResult",
           "load_state", "run_pipeline", "run_stage", "start_run"]


def __getattr__(name: str):  # the runner imports the heavy stages lazily
    if name in ("run_pipeline", "run_stage", "start_run"):
        from shipml.pipeline import run

        return getattr(run, name)
    raise AttributeError(name)
