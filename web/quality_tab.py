"""The Quality tab's data (web/quality_view.py shapes it): the job's row, its item-level results from
the object store, its suites' question texts, the suites a re-evaluation may use, and what the
signed-in person may do (release a blocked adapter: managers; evaluate again: a completed job)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from litestar import Request
from litestar.datastructures import State

from domain.job_status import JobStatus
from domain.quality.results import EvaluationResults
from domain.retries import quality_fix
from projections.suites import list_suites, suites_named
from web.auth import actor_of
from web.quality_judged import judged_context
from web.quality_results import ResultsUnavailableError, item_results, suite_questions
from web.quality_review import review_of
from web.quality_view import quality_context


async def results_of(state: State, job: dict[str, Any]) -> tuple[EvaluationResults | None, str | None]:
    """(results, why not): None without an evaluation, or when its object is unreadable."""
    if not job.get("evaluation"):
        return None, None
    try:
        return await item_results(state, job["evaluation"]), None
    except ResultsUnavailableError as exc:
        return None, str(exc)


async def question_texts(state: State, job: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Suite name → question id → text, for the suites the job was evaluated on."""
    suites = job.get("suites") or {}
    named = [suites["knowledge"]] if suites.get("knowledge") else []
    ids = [UUID(s["id"]) for s in named + list(suites.get("probes") or [])]
    return {row["name"]: await suite_questions(state, row) for row in await suites_named(state.pool, ids)}


async def quality_tab(request: Request, state: State, job: dict[str, Any]) -> dict[str, Any]:
    results, unavailable = await results_of(state, job)
    texts = await question_texts(state, job) if results is not None else {}
    actor = actor_of(request)
    context = quality_context(job, results, unavailable, texts)
    context["can_override"] = actor.role in ("manager", "admin")
    context["can_reevaluate"] = job["status"] == JobStatus.COMPLETED and not job.get("evaluates")
    if context["can_reevaluate"]:
        context["suite_choices"] = await list_suites(state.pool)
    generations = results.generations if results is not None else None
    context["judged"] = judged_context(generations, await review_of(state, job) if generations else None,
                                       actor.name, state.settings.judge.configured)
    context["judged_summary"] = (job.get("evaluation") or {}).get("summary", {}).get("judged") or []
    context["judging_cost"] = job.get("judging_cost")
    context["retry_fix"] = await retry_fix(state, job)
    return {"quality": context}


async def retry_fix(state: State, job: dict[str, Any]) -> str | None:
    """FR6.2.2's corrective action as a retry with a suggested fix (domain/retries.py `quality_fix`)."""
    judged = ((job.get("evaluation") or {}).get("summary") or {}).get("judged") or []
    if job["status"] != JobStatus.COMPLETED or not any((s.get("regressions") or {}).get("count") for s in judged):
        return None
    plan = quality_fix(await asyncio.to_thread(state.store.app.get_job, UUID(str(job["id"]))))
    return None if plan is None else plan.message + " Changes: " + "; ".join(c.describe() for c in plan.changes)
