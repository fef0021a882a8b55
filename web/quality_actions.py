"""The quality commands pages and the JSON API share: pick the suites a job is evaluated on, release
a blocked adapter, evaluate a completed job again (docs/quality-validation.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from litestar.datastructures import State

from domain.job_metadata import InvalidJobError
from web.clock import utcnow
from web.flows import Actor, check_queue
from web.suite_catalog import parse_ids, probe_suites


async def reevaluate(state: State, actor: Actor, job_id: UUID, suite_ids: Sequence[Any],
                     override_justification: str | None = None) -> tuple[UUID, list[str]]:
    """A re-evaluation job of `job_id`'s adapter on the suites named (the knowledge suite only when
    named), queued with its budget reservation."""
    chosen = await probe_suites(state, parse_ids(suite_ids))
    knowledge = next((s for s in chosen if s.kind == "knowledge"), None)
    ei = next((s for s in chosen if s.kind == "ei"), None)
    rubrics = [s for s in chosen if s.kind == "rubric"]
    if len(rubrics) > 1:
        raise InvalidJobError("Choose at most one brand-voice rubric to evaluate against")
    probes = [s for s in chosen if s.kind == "probes"]
    await check_queue(state)
    return await asyncio.to_thread(
        state.store.app.reevaluate_job, job_id, knowledge=knowledge.ref if knowledge else None,
        probes=[s.ref for s in probes], questions=sum(s.questions for s in [*probes, *([knowledge] if knowledge
                                                                                      else [])]),
        actor=actor.name, role=actor.role, at=utcnow(), override_justification=override_justification or None,
        ei=ei.ref if ei else None, rubric=rubrics[0].ref if rubrics else None)


async def override(state: State, actor: Actor, job_id: UUID, justification: str) -> None:
    await asyncio.to_thread(state.store.app.override_delivery, job_id, actor=actor.name, role=actor.role,
                            justification=justification, at=utcnow())
