"""The blind review page (FR6.2.1 "Human Evaluation", FR6.4.1 "Human evaluators"): a reviewer scores both
models' replies to each EI scenario and brand-voice prompt 1-5 on each characteristic, shown as Response 1
and Response 2 in the item's recorded random order — nothing on the page (or in its HTML) says which is the
baseline. Saved as QualityReview.PersonScored events with the reviewer's name; progress per part ("12 of 50
scored"); several reviewers' scores are averaged on the Quality tab, their disagreement shown there."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from domain.quality.generations import EI, PART_TITLES, TRAINED_FIRST, Generated, Generations, blind_order, shown_pair
from domain.quality.scores import SCORES
from projections.job_detail import read_job
from web.auth import actor_of
from web.clock import utcnow
from web.errors import DOMAIN_ERRORS, message_of, status_of
from web.forms import redirect_with
from web.quality_results import ResultsUnavailableError, item_results
from web.quality_review import review_of, score


async def _reviewable(state: State, job_id: UUID) -> tuple[dict[str, Any], Any, Generations]:
    detail = await read_job(state.pool, job_id, utcnow())
    if detail is None:
        raise NotFoundException(f"no training job {job_id} (it may still be on its way to the read model)")
    job = detail["job"]
    if not job.get("evaluation"):
        raise NotFoundException("This job has no evaluation: there are no replies to review")
    try:
        results = await item_results(state, job["evaluation"])
    except ResultsUnavailableError as exc:
        raise NotFoundException(str(exc)) from None
    if results.generations is None or not results.generations.parts:
        raise NotFoundException("This job's evaluation generated no replies to review (emotional intelligence and "
                                "brand voice were not part of it)")
    return job, results, results.generations


def _item_view(generations: Generations, item: Generated, order: str, mine: tuple[dict, dict] | None
               ) -> dict[str, Any]:
    first, second = shown_pair(item, order)
    given: tuple[dict[str, int], dict[str, int]] = ({}, {})
    if mine is not None:  # the reviewer's earlier scores, back in the order shown
        baseline, trained = mine
        given = (trained, baseline) if order == TRAINED_FIRST else (baseline, trained)
    return {"key": item.key, "id": item.id, "part": item.part, "title": PART_TITLES[item.part], "prompt": item.prompt,
            "persona": item.persona, "arc": item.emotional_arc, "topic": item.topic,
            "notes": item.reference_notes if item.part == EI else "", "responses": [first, second],
            "given": [given[0], given[1]],
            "characteristics": [{"id": c.id, "name": c.name, "description": c.description,
                                 "anchors": sorted(c.scoring.items())}
                                for c in generations.characteristics(item.part)]}


@get("/jobs/{job_id:uuid}/replies", media_type=MediaType.HTML)
async def review_page(request: Request, state: State, job_id: FromPath[UUID], item: FromQuery[str] = "") -> Template:
    job, results, generations = await _reviewable(state, job_id)
    reviewer = actor_of(request).name
    review = await review_of(state, job)
    people = review.people if review is not None else {}
    items = list(generations.all_items())
    mine = {g.key for g in items if reviewer in people.get(g.key, {})}
    chosen = next((g for g in items if g.key == item), None) or next((g for g in items if g.key not in mine), items[0])
    # the order the review recorded when it opened (the same draw, from the results' digest, before it has)
    order = review.orders[chosen.key] if review is not None else blind_order(
        job["evaluation"]["results"]["sha256"], chosen.key)
    progress = [{"title": PART_TITLES[p], "total": len(generations.items(p)),
                 "mine": sum(g.key in mine for g in generations.items(p)),
                 "anyone": sum(bool(people.get(g.key)) for g in generations.items(p))} for p in generations.parts]
    context = {"job": job, "item": _item_view(generations, chosen, order, people.get(chosen.key, {}).get(reviewer)),
               "progress": progress, "reviewer": reviewer, "scores": SCORES,
               "items": [{"key": g.key, "id": g.id, "part": PART_TITLES[g.part], "done": g.key in mine,
                          "current": g.key == chosen.key} for g in items],
               "reviewers": sorted(review.reviewers) if review is not None else [],
               "notice": request.query_params.get("notice"), "error": request.query_params.get("error")}
    return Template("replies.html", context=context)


@post("/jobs/{job_id:uuid}/replies", media_type=MediaType.HTML)
async def review_form(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    """One item's scores; then the reviewer's next unscored item."""
    actor = actor_of(request)
    if not await asyncio.to_thread(state.store.app.can_view_job, job_id, actor.name, actor.role):
        raise PermissionDeniedException("You cannot see this job, so you cannot review it")
    job, results, generations = await _reviewable(state, job_id)
    form = await request.form()
    key = str(form.get("item") or "")
    item = next((g for g in generations.all_items() if g.key == key), None)
    if item is None:
        return redirect_with(f"/jobs/{job_id}/replies", error=f"There is no item {key[:80]!r} to score")
    names = [c.id for c in generations.characteristics(item.part)]
    first, second = ({n: _score(form.get(f"{side}.{n}")) for n in names} for side in ("first", "second"))
    try:
        review = await score(state, job, results, actor.name, key, first, second)
    except DOMAIN_ERRORS as exc:
        return redirect_with(f"/jobs/{job_id}/replies?item={key}", error=message_of(exc)) if status_of(exc) < 500 \
            else Response(message_of(exc), status_code=status_of(exc))
    mine = set(review.scored_by(actor.name))
    part_items = generations.items(item.part)
    done = sum(g.key in mine for g in part_items)
    following = next((g for g in generations.all_items() if g.key not in mine), None)
    notice = f"Saved: {done} of {len(part_items)} {PART_TITLES[item.part].lower()} items scored by you."
    if following is None:
        return redirect_with(f"/jobs/{job_id}?tab=quality", notice=notice + " Every item is scored: thank you.")
    return redirect_with(f"/jobs/{job_id}/replies?item={following.key}", notice=notice)


def _score(value: Any) -> Any:
    """A radio button's value as a whole number; anything else goes to the domain's check as sent."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() else text or None


routes = [review_page, review_form]
