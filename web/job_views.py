"""Read-only job views of the JSON API: the job detail (FR2.1.1, FR2.1.2, FR3.2.1)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from projections.job_detail import read_detail


@get("/api/jobs/{job_id:uuid}/detail")
async def api_job_detail(state: State, job_id: FromPath[UUID]) -> dict[str, Any]:
    """Progress, stage timeline, cost tracker, interruptions and the jobs retried or resumed from it."""
    detail = await read_detail(state.pool, job_id)
    if detail is None:
        raise NotFoundException(f"no training job {job_id} (it may still be on its way to the read model)")
    return detail
