"""Domain refusals → HTTP answers, in one place: a clear message, nothing changed."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotFoundException
from litestar.response import Template

from domain.aggregates.budget import BudgetExceededError, InvalidBudgetCommandError, PermissionDeniedError
from domain.aggregates.catalog_file import InvalidCatalogNameError
from domain.aggregates.job_sharing import SharingNotFoundError
from domain.aggregates.template import TemplateNotAllowedError, TemplateNotFoundError
from domain.aggregates.training_job import IllegalTransitionError
from domain.applications import ConcurrencyConflictError, JobNotFoundError, TrainingFileNotFoundError
from domain.cost_model import InvalidEstimateInputError
from domain.gpu_memory.job_check import InsufficientGpuMemoryError
from domain.job_metadata import InvalidJobError
from domain.presets import InsufficientVramError, PresetLockedError, UnknownPresetError
from domain.training_file import IneligibleTrainingFileError, IneligibleValidationFileError
from infra.objectstore import ArtifactMissingError
from web.catalog import TrainingFileTooLargeError
from web.flows import QueueFullError, SpotNotOfferedError

STATUS: dict[type[Exception], int] = {
    InvalidJobError: 400, InvalidBudgetCommandError: 400, IneligibleTrainingFileError: 400,
    IneligibleValidationFileError: 400,
    PresetLockedError: 400, UnknownPresetError: 400, InsufficientVramError: 400,
    InvalidEstimateInputError: 400, ArtifactMissingError: 400, InvalidCatalogNameError: 400, PermissionDeniedError: 403,
    JobNotFoundError: 404, TrainingFileNotFoundError: 404, BudgetExceededError: 409,
    IllegalTransitionError: 409, ConcurrencyConflictError: 409, QueueFullError: 409, TrainingFileTooLargeError: 413,
    TemplateNotFoundError: 404, SharingNotFoundError: 404, TemplateNotAllowedError: 409,  # FR5.2.2, FR8.1.2
    InsufficientGpuMemoryError: 400, SpotNotOfferedError: 400,  # issue #16: pre-flight, the provider's tiers
}
DOMAIN_ERRORS = tuple(STATUS)


def status_of(exc: Exception) -> int:
    return next(code for cls, code in STATUS.items() if isinstance(exc, cls))


def message_of(exc: Exception) -> str:
    return str(exc.args[0]) if isinstance(exc, LookupError) and exc.args else str(exc)


def wants_json(request: Request) -> bool:
    """API callers and scripts get JSON; a browser (Accept: text/html) gets a page."""
    return request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", "")


def refusal(request: Request, status: int, detail: str, title: str = "Refused") -> Response:
    """A refusal as the caller reads it: `{"status_code", "detail"}`, or the site's page saying it."""
    if wants_json(request):
        return Response({"status_code": status, "detail": detail}, status_code=status, media_type=MediaType.JSON)
    return Template("error.html", context={"title": title, "message": detail}, status_code=status)


def not_found(request: Request, exc: NotFoundException) -> Response:
    """An unknown address or a missing thing: the API keeps its JSON, a browser gets the 404 page."""
    if wants_json(request):
        return Response({"status_code": 404, "detail": exc.detail}, status_code=404, media_type=MediaType.JSON)
    detail = exc.detail if exc.detail and exc.detail != "Not Found" else f"There is no page at {request.url.path}."
    return Template("error.html", context={"title": "Page not found", "message": detail, "not_found": True},
                    status_code=404)


def unstorable_value(request: Request, exc: Exception) -> Response:
    """The last resort when a value reached PostgreSQL that it cannot hold (the checks of
    web/request_checks.py and the domain's refuse them first, with their place)."""
    return refusal(request, 400, "A value in this request cannot be kept: a number too large, or text with a"
                                 " character that cannot be stored. Check the values sent and try again.",
                   "Invalid input")


def domain_error_response(request: Request, exc: Exception) -> Response:
    body: dict[str, object] = {"status_code": status_of(exc), "detail": message_of(exc),
                               "error": type(exc).__name__}
    if getattr(exc, "job_id", None):
        body["job_id"] = str(exc.job_id)
    if isinstance(exc, BudgetExceededError):
        body |= {"figures": exc.figures, "estimated_cost": str(exc.estimated),
                 "remaining_budget": str(exc.remaining), "shortfall": str(exc.shortfall)}
    return Response(body, status_code=status_of(exc), media_type=MediaType.JSON)


log = logging.getLogger("web")


def log_unexpected(exc: Exception, scope: Any) -> None:
    """An exception no handler turns into an answer is a 500: say which request and why in the log,
    with the traceback (Litestar logs none with debug off). Refusals the user caused are not errors."""
    if isinstance(exc, (HTTPException, psycopg.DataError, *DOMAIN_ERRORS)):
        return
    log.error("%s %s failed", scope.get("method", "?"), scope.get("path", "?"), exc_info=exc)
