"""Evaluation suites (FR6.3.1, FR6.3.2): the catalog page, a client's upload of domain probes (CSV or
JSON, validated with the place of each problem: docs/quality-suites.md), and the same as JSON API
(`GET /api/suites`, `POST /api/suites` multipart `file`). Jobs name suites when they are created
(`probe_suite_ids`) or evaluated again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template

from domain.quality import MAX_SUITE_BYTES, SuiteFormatError
from projections.suites import list_suites
from web.auth import actor_of
from web.forms import redirect_with
from web.suite_catalog import SuiteTooLargeError, add_suite, shipped_suite

LIMIT = f"{MAX_SUITE_BYTES // (1024 * 1024)} MiB"


@dataclass
class SuiteUpload:
    file: UploadFile


def problems_of(exc: SuiteFormatError) -> list[dict[str, Any]]:
    return [{"place": p.place, "line": p.line, "field": p.field, "message": p.message} for p in exc.problems]


async def _read(upload: UploadFile) -> bytes:
    data = await upload.read(MAX_SUITE_BYTES + 1)
    if len(data) > MAX_SUITE_BYTES:
        raise SuiteTooLargeError(f"The file is over the {LIMIT} limit")
    return data


async def _page(request: Request, state: State, *, status_code: int = 200, **extra: Any) -> Template:
    await shipped_suite(state)  # FR6.3.1's suite is always in the catalog
    params = request.query_params
    context = {"suites": await list_suites(state.pool), "upload": None, "error": params.get("error"),
               "notice": params.get("notice"), "limit": LIMIT}
    return Template("suites.html", context=context | extra, status_code=status_code)


@get("/suites", media_type=MediaType.HTML)
async def suites_page(request: Request, state: State) -> Template:
    return await _page(request, state)


@post("/suites", media_type=MediaType.HTML)
async def upload_suite_form(request: Request, state: State) -> Response:
    """A valid suite joins the catalog; an invalid one is refused with each problem and its place."""
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _page(request, state, status_code=400, error="Choose a suite file (CSV or JSON)")
    try:
        suite = await add_suite(state.objects, state.store.app, await _read(upload), upload.filename,
                                actor_of(request).name)
    except SuiteTooLargeError as exc:
        return await _page(request, state, status_code=413, error=str(exc))
    except SuiteFormatError as exc:
        count = exc.problem_count
        return await _page(request, state, status_code=400,
                           error=f"{upload.filename} has {count} problem{'s' if count != 1 else ''}: nothing was"
                                 " added. Fix the file and upload it again.",
                           upload={"name": upload.filename, "problems": problems_of(exc),
                                   "more": count - len(exc.problems)})
    return redirect_with("/suites", notice=f"{suite.name} added: {suite.questions} questions in"
                                           f" {len(suite.categories)} categories.")


@get("/api/suites")
async def api_list_suites(state: State) -> list[dict[str, Any]]:
    await shipped_suite(state)
    return await list_suites(state.pool)


@post("/api/suites", status_code=201)
async def api_upload_suite(request: Request, state: State,
                           data: Annotated[SuiteUpload, Body(media_type=RequestEncodingType.MULTI_PART)]) -> Response:
    """201 with the suite; 400 with `problems` (each with its `place`) for an invalid one, nothing stored."""
    try:
        suite = await add_suite(state.objects, state.store.app, await _read(data.file), data.file.filename,
                                actor_of(request).name)
    except SuiteTooLargeError as exc:
        return Response({"status_code": 413, "detail": str(exc)}, status_code=413)
    except SuiteFormatError as exc:
        return Response({"status_code": 400, "detail": str(exc), "error": "SuiteFormatError",
                         "problem_count": exc.problem_count, "problems": problems_of(exc)}, status_code=400)
    return Response({"id": str(suite.id), "name": suite.name, "kind": suite.kind, "questions": suite.questions,
                     "categories": suite.categories, "file": suite.file.as_dict()}, status_code=201)


routes = [suites_page, upload_suite_form, api_list_suites, api_upload_suite]
