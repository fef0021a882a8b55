"""Evaluation suites (FR6.3.1, FR6.3.2, FR6.2.1, FR6.4.1, FR6.4.2): the catalog page, a client's upload of
domain probes (CSV or JSON) or of a brand-voice rubric (JSON, or typed into a form), each validated with
the place of each problem (docs/quality-suites.md), and the same as JSON API (`GET /api/suites`,
`POST /api/suites` multipart `file` and `kind`, `POST /api/rubrics` with the rubric document as the
body). Jobs name suites when they are created (`probe_suite_ids`, `rubric_id`) or evaluated again."""

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
from web.rubric_form import LEVELS, ROWS, form_place, rubric_from_form
from web.suite_catalog import SHIPPED_EI, SHIPPED_RUBRIC, SuiteTooLargeError, add_rubric, add_suite, shipped_suite

LIMIT = f"{MAX_SUITE_BYTES // (1024 * 1024)} MiB"


@dataclass
class SuiteUpload:
    file: UploadFile
    kind: str = "probes"  # or "rubric" (a brand-voice rubric, JSON)


async def _add(state: State, data: bytes, filename: str | None, kind: str, who: str) -> Any:
    if kind == "rubric":
        return await add_rubric(state.objects, state.store.app, data, filename, who)
    if kind != "probes":
        raise ValueError(f"unknown suite kind {kind!r}")  # the callers check the kinds
    return await add_suite(state.objects, state.store.app, data, filename, who)


async def ensure_shipped(state: State) -> None:
    """FR6.3.1's knowledge suite, FR6.2.1's EI scenarios and FR6.4.1's rubric are always in the catalog."""
    for path in (None, SHIPPED_EI, SHIPPED_RUBRIC):
        await (shipped_suite(state) if path is None else shipped_suite(state, path))


def problems_of(exc: SuiteFormatError) -> list[dict[str, Any]]:
    return [{"place": p.place, "line": p.line, "field": p.field, "message": p.message} for p in exc.problems]


async def _read(upload: UploadFile) -> bytes:
    data = await upload.read(MAX_SUITE_BYTES + 1)
    if len(data) > MAX_SUITE_BYTES:
        raise SuiteTooLargeError(f"The file is over the {LIMIT} limit")
    return data


async def _page(request: Request, state: State, *, status_code: int = 200, **extra: Any) -> Template:
    await ensure_shipped(state)
    params = request.query_params
    context = {"suites": await list_suites(state.pool), "upload": None, "error": params.get("error"),
               "notice": params.get("notice"), "limit": LIMIT, "rows": ROWS, "levels": LEVELS,
               "rubric_form": {"rows": [{} for _ in range(ROWS)], "name": ""}}
    return Template("suites.html", context=context | extra, status_code=status_code)


@get("/suites", media_type=MediaType.HTML)
async def suites_page(request: Request, state: State) -> Template:
    return await _page(request, state)


@post("/suites", media_type=MediaType.HTML)
async def upload_suite_form(request: Request, state: State) -> Response:
    """A valid suite joins the catalog; an invalid one is refused with each problem and its place."""
    form = await request.form()
    upload = form.get("file")
    kind = "rubric" if form.get("kind") == "rubric" else "probes"
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _page(request, state, status_code=400, error="Choose a suite file (CSV or JSON)")
    try:
        suite = await _add(state, await _read(upload), upload.filename, kind, actor_of(request).name)
    except SuiteTooLargeError as exc:
        return await _page(request, state, status_code=413, error=str(exc))
    except SuiteFormatError as exc:
        count = exc.problem_count
        return await _page(request, state, status_code=400,
                           error=f"{upload.filename} has {count} problem{'s' if count != 1 else ''}: nothing was"
                                 " added. Fix the file and upload it again.",
                           upload={"name": upload.filename, "problems": problems_of(exc),
                                   "more": count - len(exc.problems)})
    return redirect_with("/suites", notice=added(suite))


def added(suite: Any) -> str:
    if suite.kind == "rubric":
        return (f"{suite.name} added: {len(suite.categories)} characteristics, {suite.questions} prompts. Choose it"
                " as a new job's brand voice rubric.")
    return f"{suite.name} added: {suite.questions} questions in {len(suite.categories)} categories."


@post("/suites/rubrics", media_type=MediaType.HTML)
async def rubric_form(request: Request, state: State) -> Response:
    """FR6.4.2: a rubric typed into the form, validated by the same rules as an upload; each problem is told
    with its place in the form ("Characteristic 3: level 5"), and the form comes back as typed."""
    form = await request.form()
    data, rows, rows_of = rubric_from_form(form)
    try:
        suite = await add_rubric(state.objects, state.store.app, data, "rubric.json", actor_of(request).name)
    except SuiteFormatError as exc:
        count = exc.problem_count
        problems = [p | {"place": form_place(p["field"] or "", rows_of)} for p in problems_of(exc)]
        return await _page(request, state, status_code=400,
                           error=f"The rubric has {count} problem{'s' if count != 1 else ''}: nothing was added.",
                           upload={"name": "the rubric form", "problems": problems, "more": count - len(problems)},
                           rubric_form={"rows": rows, "name": str(form.get("name") or "")})
    return redirect_with("/suites", notice=added(suite))


@get("/api/suites")
async def api_list_suites(state: State) -> list[dict[str, Any]]:
    await ensure_shipped(state)
    return await list_suites(state.pool)


@post("/api/suites", status_code=201)
async def api_upload_suite(request: Request, state: State,
                           data: Annotated[SuiteUpload, Body(media_type=RequestEncodingType.MULTI_PART)]) -> Response:
    """201 with the suite; 400 with `problems` (each with its `place`) for an invalid one, nothing stored.
    `kind`: "probes" (default) or "rubric"."""
    if data.kind not in ("probes", "rubric"):
        return Response({"status_code": 400, "detail": f"kind must be probes or rubric, not {data.kind[:40]!r}",
                         "error": "SuiteFormatError"}, status_code=400)
    return await _api_added(request, state, await _read(data.file), data.file.filename, data.kind)


@post("/api/rubrics", status_code=201)
async def api_add_rubric(request: Request, state: State) -> Response:
    """FR6.4.2: a brand-voice rubric, its JSON document as the request body (docs/quality-suites.md)."""
    body = await request.body()
    if len(body) > MAX_SUITE_BYTES:
        return Response({"status_code": 413, "detail": f"The rubric is over the {LIMIT} limit"}, status_code=413)
    return await _api_added(request, state, body, "rubric.json", "rubric")


async def _api_added(request: Request, state: State, data: bytes, filename: str | None, kind: str) -> Response:
    try:
        suite = await _add(state, data, filename, kind, actor_of(request).name)
    except SuiteTooLargeError as exc:
        return Response({"status_code": 413, "detail": str(exc)}, status_code=413)
    except SuiteFormatError as exc:
        return Response({"status_code": 400, "detail": str(exc), "error": "SuiteFormatError",
                         "problem_count": exc.problem_count, "problems": problems_of(exc)}, status_code=400)
    return Response({"id": str(suite.id), "name": suite.name, "kind": suite.kind, "questions": suite.questions,
                     "categories": suite.categories, "file": suite.file.as_dict()}, status_code=201)


routes = [suites_page, upload_suite_form, rubric_form, api_list_suites, api_upload_suite, api_add_rubric]
