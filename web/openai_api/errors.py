"""Errors as OpenAI's API writes them, `{"error": {"message", "type", "param", "code"}}`, with the status
codes the `openai` client turns into its typed exceptions (400 BadRequestError, 401, 403, 404, 409
ConflictError, 422, 429 RateLimitError, 5xx). Every refusal is deterministic, so each carries
`x-should-retry: false`: the client would otherwise send a refused POST again (on 409, 429, 5xx)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

import psycopg
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.exceptions.responses import create_exception_response

from domain.aggregates.budget import BudgetExceededError
from domain.job_metadata import InvalidLabelsError, InvalidSuffixError
from domain.preset_choice import HyperparameterError
from domain.presets import PresetLockedError, UnknownPresetError
from domain.training_file import IneligibleTrainingFileError, IneligibleValidationFileError
from web import request_checks
from web.catalog import TrainingFileTooLargeError
from web.errors import DOMAIN_ERRORS, message_of, status_of
from web.flows import QueueFullError

log = logging.getLogger("web.openai_api")
PREFIX = "/v1"
TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "invalid_request_error", 409: "invalid_request_error", 413: "invalid_request_error",
         429: "rate_limit_error"}
# Where a domain refusal points in a create request (`param`), and its code.
PARAMS: dict[type[Exception], tuple[str | None, str]] = {
    IneligibleTrainingFileError: ("training_file", "invalid_training_file"),
    IneligibleValidationFileError: ("validation_file", "invalid_validation_file"),
    InvalidLabelsError: ("metadata", "invalid_metadata"), InvalidSuffixError: ("suffix", "invalid_suffix"),
    PresetLockedError: ("preset", "preset_locked"), UnknownPresetError: ("preset", "unknown_preset"),
    BudgetExceededError: (None, "budget_exceeded"), QueueFullError: (None, "queue_full"),
    TrainingFileTooLargeError: ("file", "file_too_large"),
}


class OpenAIError(Exception):
    """A refusal written as OpenAI writes it; `extra` goes into the error object too."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.extra = status, message, param, code, extra


def not_found(what: str, value: str, param: str) -> OpenAIError:
    return OpenAIError(404, f"No {what} with id '{value}'", param, f"{param.removesuffix('_id')}_not_found")


def error_response(request: Request, exc: Exception) -> Response:
    """Every exception a /v1 route raises, as OpenAI's error object."""
    error = as_openai_error(exc, request)
    body = {"message": error.message, "type": TYPES.get(error.status, "server_error" if error.status >= 500
                                                       else "invalid_request_error"),
            "param": error.param, "code": error.code, **error.extra}
    headers = {"x-should-retry": "false", "x-request-id": f"req_{secrets.token_hex(12)}"}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="lora-pipeline"'
    return Response({"error": body}, status_code=error.status, headers=headers, media_type=MediaType.JSON)


def as_openai_error(exc: Exception, request: Request) -> OpenAIError:
    if isinstance(exc, OpenAIError):
        return exc
    if isinstance(exc, HyperparameterError):
        return OpenAIError(400, str(exc), f"hyperparameters.{exc.field}", "invalid_hyperparameters")
    if isinstance(exc, DOMAIN_ERRORS):
        param, code = next((v for cls, v in PARAMS.items() if isinstance(exc, cls)), (None, None))
        extra: dict[str, Any] = {"job_id": str(exc.job_id)} if getattr(exc, "job_id", None) else {}
        if isinstance(exc, BudgetExceededError):
            extra |= {"figures": exc.figures, "estimated_cost": str(exc.estimated),
                      "remaining_budget": str(exc.remaining), "shortfall": str(exc.shortfall)}
        status = 429 if isinstance(exc, QueueFullError) else status_of(exc)
        return OpenAIError(status, message_of(exc), param, code or type(exc).__name__, **extra)
    if isinstance(exc, ValidationException):
        return _validation(exc)
    if isinstance(exc, NotAuthorizedException):
        return OpenAIError(401, f"{exc.detail}: send an API token (`pipeline users token NAME`) as"
                                " `Authorization: Bearer lpt_…`", None, "invalid_api_key")
    if isinstance(exc, PermissionDeniedException):
        return OpenAIError(403, exc.detail, None, "permission_denied")
    if isinstance(exc, NotFoundException):
        return OpenAIError(404, f"Unknown request URL: {request.method} {request.url.path}", None, "unknown_url")
    if isinstance(exc, MethodNotAllowedException):
        return OpenAIError(405, f"{request.method} is not supported on {request.url.path}", None,
                           "method_not_supported")
    if isinstance(exc, HTTPException):
        return OpenAIError(exc.status_code, exc.detail, None, None)
    if isinstance(exc, psycopg.DataError):
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return OpenAIError(400, f"Invalid input: {reason}", None, "invalid_input")
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return OpenAIError(500, "The server had an error while processing your request", None, "server_error")


def _validation(exc: ValidationException) -> OpenAIError:
    """Litestar's validation error (a body or query value of the wrong shape), naming the field."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    first = problems[0] if problems and isinstance(problems[0], dict) else {}
    # pydantic names the member of a union that failed (`gpu_tier.literal['spot','on_demand']`): the field is before it
    key = ".".join(part for part in str(first.get("key") or "").split(".") if "[" not in part) or None
    message = str(first.get("message") or exc.detail)
    return OpenAIError(400, f"Invalid '{key}': {message}" if key else message, key, "invalid_value")


HANDLED = (Exception, HTTPException, ValidationException, NotAuthorizedException, PermissionDeniedException,
           NotFoundException, psycopg.DataError, *DOMAIN_ERRORS)
# The /v1 router's handlers: one per class the app maps too (the most specific class wins).
HANDLERS = {cls: error_response for cls in HANDLED}


def under_v1(fallback: Callable[[Request, Any], Response] | None = None) -> Callable[[Request, Any], Response]:
    """An app-level handler for 404 and 405 raised before a route is found (a router's handlers do
    not apply yet): OpenAI's shape under /v1, `fallback`'s (or Litestar's own) elsewhere."""

    def handle(request: Request, exc: Exception) -> Response:
        if request.url.path == PREFIX or request.url.path.startswith(PREFIX + "/"):
            return error_response(request, exc)
        return fallback(request, exc) if fallback is not None else create_exception_response(request, exc)

    return handle


async def check_input(request: Request) -> Response | None:
    """The app's checks of unusable input (web/request_checks.py) for /v1 routes, their refusal
    written as OpenAI's error (a router's before_request replaces the app's)."""
    refused = await request_checks.refuse_unusable_input(request)
    if refused is None:
        return None
    detail = refused.content.get("detail") if isinstance(refused.content, dict) else None
    return error_response(request, OpenAIError(refused.status_code, str(detail or "Invalid input"), None,
                                               "invalid_input"))
