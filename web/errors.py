"""Domain refusals → HTTP answers, in one place: a clear message, nothing changed."""

from __future__ import annotations

from litestar import MediaType, Request, Response

from domain.aggregates.budget import BudgetExceededError, InvalidBudgetCommandError, PermissionDeniedError
from domain.aggregates.training_job import IllegalTransitionError
from domain.applications import ConcurrencyConflictError, JobNotFoundError, TrainingFileNotFoundError
from domain.cost_model import InvalidEstimateInputError
from domain.job_metadata import InvalidJobError
from domain.presets import InsufficientVramError, PresetLockedError, UnknownPresetError
from domain.training_file import IneligibleTrainingFileError
from infra.objectstore import ArtifactMissingError
from web.catalog import TrainingFileTooLargeError
from web.flows import QueueFullError

STATUS: dict[type[Exception], int] = {
    InvalidJobError: 400, InvalidBudgetCommandError: 400, IneligibleTrainingFileError: 400,
    PresetLockedError: 400, UnknownPresetError: 400, InsufficientVramError: 400,
    InvalidEstimateInputError: 400, ArtifactMissingError: 400, PermissionDeniedError: 403,
    JobNotFoundError: 404, TrainingFileNotFoundError: 404, BudgetExceededError: 409,
    IllegalTransitionError: 409, ConcurrencyConflictError: 409, QueueFullError: 409, TrainingFileTooLargeError: 413,
}
DOMAIN_ERRORS = tuple(STATUS)


def status_of(exc: Exception) -> int:
    return next(code for cls, code in STATUS.items() if isinstance(exc, cls))


def message_of(exc: Exception) -> str:
    return str(exc.args[0]) if isinstance(exc, LookupError) and exc.args else str(exc)


def domain_error_response(request: Request, exc: Exception) -> Response:
    body: dict[str, object] = {"status_code": status_of(exc), "detail": message_of(exc),
                               "error": type(exc).__name__}
    if getattr(exc, "job_id", None):
        body["job_id"] = str(exc.job_id)
    if isinstance(exc, BudgetExceededError):
        body |= {"figures": exc.figures, "estimated_cost": str(exc.estimated),
                 "remaining_budget": str(exc.remaining), "shortfall": str(exc.shortfall)}
    return Response(body, status_code=status_of(exc), media_type=MediaType.JSON)
