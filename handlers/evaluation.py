"""The evaluation stage's results as the telemetry reactor records them (docs/quality-validation.md):
the `completed` message names the item-level results object in the job's bucket; it is read back
(digest checked), parsed, and its figures computed by the domain (`summary`), so the control plane
never trusts figures a pod states. A results object that is missing, damaged or malformed becomes
an evaluation failure note, never a made-up score; the job completes all the same."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from nats.js.errors import NotFoundError

from domain.quality.results import ResultsFormatError, parse, summary
from domain.values import ArtifactRef
from infra.objectstore import ArtifactCorruptError, ArtifactMissingError, ObjectStore

ReadObject = Callable[[ArtifactRef], bytes]
"""The bytes of an object-store object, its digest checked (raises ArtifactMissingError / ArtifactCorruptError)."""

PROGRESS_EVERY_S = 10.0
MAX_RESULTS_BYTES = 64 * 1024 * 1024  # 2,000 questions × a few suites and the held-out split: a few MiB


async def fetch_bytes(objects: ObjectStore, ref: ArtifactRef) -> bytes:
    """A results object's bytes, its digest checked; a missing bucket is a missing object."""
    if ref.size > MAX_RESULTS_BYTES:
        raise ArtifactCorruptError(f"object {ref.bucket}/{ref.name} is {ref.size:,} bytes, more than results hold")
    with tempfile.TemporaryDirectory(prefix="results-") as tmp:
        try:
            path = await objects.get_file(ref, Path(tmp) / "results.json")
        except NotFoundError:
            raise ArtifactMissingError(f"no object {ref.bucket}/{ref.name}") from None
        return path.read_bytes()


@dataclass(frozen=True)
class Evaluation:
    """What a `completed` message's results come to: a reference and its figures, or why there are none."""

    results: ArtifactRef | None
    summary: dict[str, Any] | None
    failure: str | None

    def record(self, job: Any, attempt: int, at: datetime) -> None:
        if self.summary is not None and self.results is not None:
            job.record_evaluation(self.results, self.summary, attempt, at)
        elif self.failure is not None:
            job.evaluation_failed(self.failure, self.results, attempt, at)

    def record_for_original(self, original: Any, attempt: int, at: datetime, evaluated_by: UUID) -> None:
        """A re-evaluation's figures count for the job whose adapter it scored."""
        if self.summary is not None and self.results is not None:
            original.record_evaluation(self.results, self.summary, attempt, at, evaluated_by=evaluated_by)


def read_evaluation(data: dict[str, Any], job_id: str, attempt: int, read_object: ReadObject | None
                    ) -> Evaluation | None:
    """None when the message names no results (an agent without the evaluation stage)."""
    named = data.get("evaluation")
    if named is None:
        return None
    try:
        ref = ArtifactRef(**named)
    except (TypeError, ValueError) as exc:
        return Evaluation(None, None, f"the evaluation results reference is malformed ({exc})")
    if read_object is None:
        return Evaluation(ref, None, "this worker cannot read the object store")
    try:
        results = parse(read_object(ref))
    except ArtifactMissingError:
        return Evaluation(ref, None, f"the results object {ref.name} is missing from the object store")
    except ArtifactCorruptError:
        return Evaluation(ref, None, f"the results object {ref.name} does not match its checksum")
    except ResultsFormatError as exc:
        return Evaluation(ref, None, str(exc))
    if (results.job_id, results.attempt) != (job_id, attempt):
        return Evaluation(ref, None, f"the results object is for job {results.job_id} attempt {results.attempt},"
                                     f" not this job's attempt {attempt}")
    try:
        return Evaluation(ref, summary(results), None)
    except (ValueError, ArithmeticError) as exc:  # e.g. a suite answered by nobody
        return Evaluation(ref, None, f"the evaluation results cannot be scored: {exc}")


# --- the job spec's evaluation part (PIPELINE_JOB_CONFIG; docs/gpu-agent.md) ----------------------

def evaluation_inputs(job: Any) -> list[ArtifactRef]:
    """What the pod reads for its evaluation, to be staged into the job's bucket: the knowledge
    suite, the probe suites, the EI scenarios and the brand-voice rubric (FR6.2.1, FR6.4.1), and for a
    re-evaluation the adapter it scores."""
    suites = ([job.knowledge_suite] if job.knowledge_suite else []) + list(job.probe_suites)
    suites += [s for s in (getattr(job, "ei_suite", None), getattr(job, "rubric", None)) if s is not None]
    return [s.file for s in suites] + ([job.evaluates_adapter] if job.evaluates_adapter else [])


def evaluation_spec(job: Any, staged: list[ArtifactRef]) -> dict[str, Any]:
    """`staged`: evaluation_inputs(job) as staged, in that order. `{"evaluation": {"knowledge": ref |
    None, "probes": [ref, …], "ei"?: ref, "rubric"?: ref}}`, and for a re-evaluation
    `"mode": "evaluate"` with the `"adapter"`."""
    refs = iter(staged)
    knowledge = next(refs).as_dict() if job.knowledge_suite else None
    probes = [next(refs).as_dict() for _ in job.probe_suites]
    spec: dict[str, Any] = {"evaluation": {"knowledge": knowledge, "probes": probes}}
    for key, attribute in (("ei", "ei_suite"), ("rubric", "rubric")):  # named only when the job has them
        if getattr(job, attribute, None):
            spec["evaluation"][key] = next(refs).as_dict()
    if job.evaluates_adapter:
        spec |= {"mode": "evaluate", "adapter": next(refs).as_dict()}
    return spec
