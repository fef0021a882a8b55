"""Who may look at one job (FR8.1.2): a guard on every GET under /jobs/{id} and /api/jobs/{id}.

A private job (the default) opens for its creator, managers and admins; a team job for everyone
signed in; a public one also at /training-jobs/{id} without signing in (web/pages/public_job.py).
What other members still see of a private job is its row in the lists, the queue, the budget and
the finance reports (name, creator, status, cost): the budget counts every job, and "John is
already training this dataset" must stay visible (docs/web.md, "Job sharing"). What they may do to
it (cancel it from the jobs list, say) keeps its own rules: the guard is about looking."""

from __future__ import annotations

import asyncio
import re
from uuid import UUID

from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers import BaseRouteHandler

from domain.applications import JobNotFoundError
from web.auth import actor_of

JOB_PATH = re.compile(r"^/(?:api/)?jobs/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
                      r"(?:/|\.|$)")
LOOKING = {"GET", "HEAD"}


def private_message(owner: str) -> str:
    return f"This job is private to {owner}: ask them (or a manager) to share it with the team."


async def check_job_access(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if connection.scope.get("method", "GET") not in LOOKING:
        return
    found = JOB_PATH.match(connection.scope.get("path", ""))
    if found is None:
        return
    actor = actor_of(connection)
    app = connection.app.state.store.app
    try:
        allowed = await asyncio.to_thread(app.can_view_job, UUID(found.group(1)), actor.name, actor.role)
    except JobNotFoundError:
        return  # the route says there is no such job
    if not allowed:
        owner = (await asyncio.to_thread(app.get_job, UUID(found.group(1)))).created_by
        raise PermissionDeniedException(private_message(owner))
