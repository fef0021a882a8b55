"""The budget dashboard's limit controls (FR7.2.2): a manager sets a month's limit, anyone asks for
a higher one, a manager other than the requester decides; a manager turns "Block new jobs when the
budget is exceeded" on or off (FR7.2.1). A refusal shows the dashboard again with
the form as sent and the domain's message; a success goes back to the month with a notice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from uuid import UUID

from litestar import MediaType, Request, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Response, Template

from domain.aggregates.budget import InvalidBudgetCommandError, PermissionDeniedError, UnknownRequestError
from domain.applications import ConcurrencyConflictError
from domain.budget_month import budget_month
from domain.money import usd
from web.auth import actor_of, require_manager
from web.budget_dashboard_view import dashboard_context
from web.budget_form import FormError, parse_amount, parse_month
from web.clock import utcnow
from web.forms import redirect_with

FIELDS = ("month", "new_limit", "justification", "decision", "reason", "block")
REFUSALS: dict[type[Exception], int] = {InvalidBudgetCommandError: 400, PermissionDeniedError: 403,
                                        UnknownRequestError: 404, ConcurrencyConflictError: 409}
Command = Callable[[dict[str, str], str], str]  # (form values, month) → the notice


@post("/budget/limit", media_type=MediaType.HTML, guards=[require_manager])
async def change_limit(request: Request, state: State) -> Response:
    """A manager or admin sets the month's limit at once, with a justification."""
    actor = actor_of(request)

    def command(values: dict[str, str], month: str) -> str:
        new_limit = parse_amount(values["new_limit"])
        old = limit_of(state, month)
        state.store.app.change_limit(month, new_limit, actor.name, actor.role, values["justification"], utcnow())
        return changed(old, new_limit)

    return await run_command(request, state, "limit", command)


@post("/budget/requests", media_type=MediaType.HTML)
async def request_increase(request: Request, state: State) -> Response:
    """Anyone may ask for a higher limit; a manager other than the requester decides."""
    actor = actor_of(request)

    def command(values: dict[str, str], month: str) -> str:
        new_limit = parse_amount(values["new_limit"])
        state.store.app.request_limit_increase(month, new_limit, values["justification"], actor.name, utcnow())
        return f"Limit increase to {usd(new_limit)} requested: pending approval by a manager"

    return await run_command(request, state, "request", command)


@post("/budget/requests/{request_id:uuid}", media_type=MediaType.HTML, guards=[require_manager])
async def decide_request(request: Request, state: State, request_id: FromPath[UUID]) -> Response:
    """Approves (the new limit applies at once) or denies a pending request."""
    actor = actor_of(request)

    def command(values: dict[str, str], month: str) -> str:
        if values["decision"] not in ("approve", "deny"):
            raise FormError("Choose approve or deny")
        approve = values["decision"] == "approve"
        old = limit_of(state, month)
        state.store.app.decide_limit_increase(month, request_id, approve, actor.name, actor.role, utcnow(),
                                              values["reason"])
        return changed(old, limit_of(state, month)) if approve else "Limit increase request denied"

    return await run_command(request, state, f"decide-{request_id}", command)


@post("/budget/blocking", media_type=MediaType.HTML, guards=[require_manager])
async def change_blocking(request: Request, state: State) -> Response:
    """FR7.2.1 Budget Controls: a manager turns "Block new jobs when the budget is exceeded" on or off."""
    actor = actor_of(request)

    def command(values: dict[str, str], month: str) -> str:
        if values["block"] not in ("on", "off"):
            raise FormError("Choose on or off")
        block = values["block"] == "on"
        state.store.app.set_budget_blocking(month, block, actor.name, actor.role, values["justification"], utcnow())
        return ("New jobs are blocked when the budget is exceeded" if block
                else "New jobs are no longer blocked when the budget is exceeded")

    return await run_command(request, state, "blocking", command)


async def run_command(request: Request, state: State, which: str, command: Command) -> Response:
    """Runs the command on the form's values in a thread (the application is synchronous)."""
    form = await request.form()
    values = {key: str(form.get(key) or "") for key in FIELDS}
    try:
        month = parse_month(values["month"], budget_month(utcnow(), state.settings.budget.time_zone))
    except FormError as exc:
        return Template("error.html", context={"title": "Budget", "message": str(exc)}, status_code=400)
    try:
        notice = await asyncio.to_thread(command, values, month)
    except (FormError, *REFUSALS) as exc:
        return await refused(request, state, month, which, values, exc)
    return redirect_with(f"/budget?month={month}", notice=notice)


async def refused(request: Request, state: State, month: str, which: str, values: dict[str, str],
                  exc: Exception) -> Response:
    """The dashboard again with the form as sent and the message beside the field it concerns
    (issue #23: not above the page, a screen away from the form)."""
    status = next((code for cls, code in REFUSALS.items() if isinstance(exc, cls)), 400)
    message = str(exc.args[0]) if exc.args else str(exc)
    context = await dashboard_context(state, actor_of(request), month, form={"which": which, **values},
                                      form_error={"which": which, "field": field_of(message), "message": message})
    if which.startswith("decide-") and not any(f"decide-{r['request_id']}" == which for r in context["pending"]):
        context |= {"error": message, "form_error": None}  # its form is not on the page (not in the read model yet)
    return Template("budget.html", context=context, status_code=status)


def field_of(message: str) -> str | None:
    """Which field of the limit forms a refusal is about (None: the form as a whole)."""
    lowered = message.lower()
    if "justification" in lowered:
        return "justification"
    if "limit" in lowered or "dollars" in lowered:
        return "new_limit"
    return None


def limit_of(state: State, month: str) -> Decimal:
    budget = state.store.app.budget(month)
    return budget.limit if budget is not None else state.settings.budget.default_limit


def changed(old: Decimal, new: Decimal) -> str:
    if new == old:
        return f"Budget limit kept at {usd(new)}"
    return f"Budget limit {'increased' if new > old else 'lowered'} from {usd(old)} to {usd(new)}"


routes = [change_limit, request_increase, decide_request, change_blocking]
