"""The admin API's bodies (pydantic: validated on the way in, documented in the OpenAPI)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shipml.release.analysis import CanaryBounds, Verdict

State = Literal["none", "running", "promoted", "aborted", "rolled_back"]

class RolloutRequest(BaseModel):
    """Start a rollout: which version is the candidate, against which stable, how."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"candidate": 2, "policy": "canary", "share": 0.1, "bounds": {"min_requests": 100}}]})

    candidate: int = Field(ge=0, description="the new version (already loaded from the repository)")
    stable: int | None = Field(None, ge=0, description="the version to compare with (default: the one serving now, "
                                 "or the highest below the candidate when the candidate serves already)")
    policy: Literal["canary", "shadow"] = Field("canary", description="canary: a share answers; shadow: scores aside")
    share: float = Field(0.1, gt=0.0, le=0.5, description="canary: share of requests the candidate answers")
    bounds: CanaryBounds | None = Field(None, description="analysis bounds (default: from the server's settings)")
    auto: bool = Field(True, description="promote or abort automatically (false: observe; decide by hand)")

    @field_validator("candidate", "stable", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        if isinstance(value, bool):  # pydantic would read true as version 1
            raise ValueError("a version number, not true/false")
        return value


class ShadowPair(BaseModel):
    """One request scored by both versions in shadow mode (first row's positive-class score)."""

    request_id: str
    rows: int
    stable_score: float
    candidate_score: float
    same_label: bool


class RolloutEvent(BaseModel):
    """How a past rollout ended."""

    state: State
    policy: str
    stable: int
    candidate: int
    reason: str
    candidate_requests: int
    candidate_client_errors: int
    ended_at: float


class WorkerCounts(BaseModel):
    """One worker's part of a rollout (``shipml serve --workers N``: the analysis adds them up)."""

    pid: int
    stable_requests: int
    candidate_requests: int


class RolloutStatus(BaseModel):
    """A model's rollout: what runs, what the analysis says, how past ones ended."""

    model: str
    state: State
    serving: int | None = Field(None, description="version requests without a version get (besides the canary)")
    policy: Literal["canary", "shadow"] | None = None
    share: float | None = None
    stable: int | None = None
    candidate: int | None = None
    auto: bool = True
    bounds: CanaryBounds | None = None
    verdict: Verdict | None = None
    reason: str | None = Field(None, description="why it was promoted, aborted or rolled back")
    candidate_client_errors: int = Field(0, description="failed candidate answers clients received (canary)")
    shadow_compared: int = 0
    shadow_dropped: int = Field(0, description="shadow comparisons skipped because the candidate lagged behind")
    shadow_label_disagreements: int = 0
    shadow_mean_abs_diff: float | None = None
    recent_shadow: list[ShadowPair] = Field(default_factory=list, description="the last 200 shadow comparisons")
    started_at: float | None = None
    ended_at: float | None = None
    history: list[RolloutEvent] = Field(default_factory=list)
    worker: int | None = Field(None, description="with several workers: the process id of the one answering")
    workers: list[WorkerCounts] = Field(default_factory=list, description="with several workers: each one's "
                                        "requests in this rollout (the counts above are their sum)")
