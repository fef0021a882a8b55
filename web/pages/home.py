"""The first page is the jobs list."""

from __future__ import annotations

from litestar import get
from litestar.response import Redirect


@get("/", sync_to_thread=False)
def index() -> Redirect:
    return Redirect("/jobs", status_code=303)


routes = [index]
