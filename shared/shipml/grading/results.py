"""What grading produces: one result per question and per submission (plain dataclasses, no logic)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

QUESTION_STATUSES = ("pass", "fail", "error", "timeout", "not_run", "kernel_died", "exited")
SUBMISSION_STATUSES = ("ok", "tampered", "timeout", "exited", "kernel_died", "invalid", "wrong_lab", "ambiguous",
                       "grader_error")


@dataclass
class QuestionResult:
    id: str
    title: str
    status: str
    points: float
    max_points: float
    message: str = ""
    hint: str = ""
    hidden: bool = False


@dataclass
class SubmissionResult:
    student: str
    lab: str
    status: str
    detail: str = ""
    questions: list[QuestionResult] = field(default_factory=list)
    hidden: list[QuestionResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(q.points for q in self.questions + self.hidden)

    @property
    def max_total(self) -> float:
        return sum(q.max_points for q in self.questions + self.hidden)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total, "max_total": self.max_total}
