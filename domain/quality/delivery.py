"""A job's delivery under the gate (docs/quality-validation.md): the suites it is evaluated on, which
evaluation counts, and the manager's override of a blocked adapter. Pure rules; the TrainingJob
aggregate records them as events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.aggregates.budget import PermissionDeniedError
from domain.job_metadata import InvalidJobError
from domain.quality.gate import LABELS, Outcome
from domain.values import ArtifactRef

OVERRIDE_JUSTIFICATION_MIN = 20
OVERRIDE_JUSTIFICATION_MAX = 2000
OVERRIDE_ROLES = ("manager", "admin")


@dataclass(frozen=True)
class SuiteRef:
    """An evaluation suite a job is scored on: its catalog id, its name (the uploaded file's) and
    its stored file."""

    suite_id: UUID
    name: str
    file: ArtifactRef

    def as_dict(self) -> dict[str, Any]:
        return {"suite_id": str(self.suite_id), "name": self.name, "file": self.file.as_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteRef:
        file = data["file"]
        return cls(UUID(str(data["suite_id"])), str(data["name"]),
                   file if isinstance(file, ArtifactRef) else ArtifactRef(**file))


def check_override(role: str, justification: str, outcome: str | None) -> str:
    """The cleaned justification of a manager's release of a blocked adapter; raises otherwise
    (the budget override's rules: a manager or admin, a written reason)."""
    if role not in OVERRIDE_ROLES:
        raise PermissionDeniedError("Only a manager or admin may release an adapter the quality gate blocked")
    if outcome != Outcome.BLOCK:
        raise InvalidJobError("Only an adapter the quality gate blocked can be released: this one is "
                              + (f"'{LABELS[Outcome(outcome)]}'" if outcome else "not evaluated"))
    text = " ".join(justification.split())
    if len(text) < OVERRIDE_JUSTIFICATION_MIN:
        raise InvalidJobError(f"Give a justification of at least {OVERRIDE_JUSTIFICATION_MIN} characters"
                              " for releasing a blocked adapter")
    return text[:OVERRIDE_JUSTIFICATION_MAX]


def block_reason(summary: dict[str, Any]) -> str:
    """What a refused download says: the gate's reasons, in the user's terms."""
    reasons = [str(r) for r in summary.get("reasons") or []]
    return ("The quality gate blocked delivery of this adapter: " + "; ".join(reasons or ["no reason recorded"])
            + ". A manager can release it with a justification on the job's Quality tab, or a new run that"
            " passes replaces it.")
