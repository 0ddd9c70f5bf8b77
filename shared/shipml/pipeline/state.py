"""The version now deployed: one JSON file that survives between runs (``PipelineConfig.state_path``).

The gates compare every candidate with it; only ``promote`` writes it, so a stopped or rolled-back
run leaves it exactly as it was. The stable Deployment carries the same facts as annotations
(``shipml.io/bundle-sha256``, ``shipml.io/image-id``), so the cluster can be checked against the file.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from shipml.errors import ShipmlError
from shipml.pipeline.record import write_json_atomically


class DeployedState(BaseModel):
    """What runs as the stable version, and the held-out figures it was promoted with."""

    model: str
    version: int
    bundle: str  # the scikit-learn bundle folder (kept under the workdir): the gates re-score it
    bundle_sha256: str
    onnx_sha256: str | None = None
    image: str
    image_id: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    run_id: str
    promoted_at: str


def load_state(path: Path) -> DeployedState | None:
    """The deployed version, or None when nothing was promoted yet (no file)."""
    try:
        return DeployedState.model_validate_json(Path(path).read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ShipmlError(f"{path}: not a deployed-state file ({str(exc).splitlines()[0]}); "
                          "fix or remove it (removing it means nothing is deployed)") from None


def save_state(path: Path, state: DeployedState) -> None:
    write_json_atomically(Path(path), state.model_dump(mode="json"))
