"""The jobs list's selection bar (FR2.3.1, FR5.1.1): Compare and Export CSV act on the ticked jobs
(Cancel is bulk_cancel.py). A form post, so it works without JavaScript; it answers with where to go."""

from __future__ import annotations

from urllib.parse import urlencode
from uuid import UUID

from litestar import MediaType, Request, post
from litestar.response import Redirect

from projections.job_search import MAX_PER_PAGE
from web.auth import local_path
from web.forms import redirect_with

COMPARED = (2, 4)  # /compare takes 2 to 4 jobs


@post("/jobs/selection", media_type=MediaType.HTML)
async def act_on_selection(request: Request) -> Redirect:
    """`action=compare` → the compare page of the ticked jobs; `action=export` → their CSV."""
    form = await request.form()
    back = local_path(str(form.get("next") or ""), "/jobs")
    back = back if back.startswith("/jobs") else "/jobs"
    selected = list(dict.fromkeys(str(v) for v in form.getall("job_id", []) if is_id(str(v))))
    action = str(form.get("action") or "")
    if action == "compare":
        low, high = COMPARED
        if not low <= len(selected) <= high:
            return redirect_with(back, error=f"Select {low} to {high} jobs to compare ({len(selected)} selected)")
        return Redirect("/compare?" + urlencode([("jobs", job) for job in selected]), status_code=303)
    if action == "export":
        if not selected:
            return redirect_with(back, error="Select the jobs to export")
        return Redirect("/jobs.csv?" + urlencode([("job", job) for job in selected[:MAX_PER_PAGE]]), status_code=303)
    return redirect_with(back, error="Choose what to do with the selected jobs: compare, export or cancel")


def is_id(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


routes = [act_on_selection]
