"""The OpenAI-compatible fine-tuning API under /v1 (docs/web.md, "OpenAI-compatible API"): what the
official `openai` client's `files` and `fine_tuning.jobs` call, in OpenAI's shapes, on our catalog,
jobs, budgets and read models. API tokens only (`Authorization: Bearer lpt_…`), so no CSRF."""

from __future__ import annotations

from litestar import Router
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler

from web.auth import Auth
from web.openai_api import files, jobs
from web.openai_api.errors import HANDLERS, PREFIX, check_input, under_v1

__all__ = ["router", "under_v1"]


def token_only(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """A guard: the API key is one of our API tokens; a browser session does not reach /v1."""
    auth = connection.scope.get("auth")
    if not isinstance(auth, Auth) or auth.via != "token":
        raise NotAuthorizedException("The OpenAI-compatible API takes API tokens only")


router = Router(path=PREFIX, route_handlers=[*files.routes, *jobs.routes], guards=[token_only],
                exception_handlers=HANDLERS, before_request=check_input, include_in_schema=False)
