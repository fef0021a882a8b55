"""`/v1/files`: the training-file catalog as OpenAI's file objects. An upload goes through the
catalog (web/catalog.py): validated in either format, stored, registered; an invalid file is
registered too (the pages list it with its problems) and the upload answers 400 naming the first
problem's place."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Request, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import File

from domain.aggregates.catalog_file import CatalogFile
from infra.objectstore import ArtifactCorruptError, ArtifactMissingError
from projections.cursor_pages import files_page
from web.auth import actor_of
from web.catalog import AddedFile, safe_name
from web.flows import add_uploaded_file
from web.openai_api.errors import OpenAIError, not_found
from web.openai_api.lists import envelope, unknown_cursor, uuid_cursor

PURPOSE = "fine-tune"


def file_object(entry: dict[str, Any]) -> dict[str, Any]:
    """`entry`: a training_files row, or the aggregate's fields under the same names."""
    stats, problems = entry["stats"] or {}, entry["problems"] or []
    return {
        "object": "file", "id": str(entry["id"]), "bytes": int(entry["file"]["size"]),
        "created_at": int(entry["registered_at"].timestamp()), "filename": entry["name"], "purpose": PURPOSE,
        "status": "processed" if entry["status"] == "active" else "error", "expires_at": None,
        "status_details": "; ".join(problems[:3]) or None,
        # ours
        "format": stats.get("format", "pipeline") if stats else None,
        "conversation_count": stats.get("conversation_count", 0), "training_pair_count":
        stats.get("training_pair_count", 0), "problem_count": entry["problem_count"],
    }


def entry_fields(entry: CatalogFile) -> dict[str, Any]:
    return {"id": entry.id, "name": entry.name, "status": entry.status, "file": entry.file.as_dict(),
            "stats": entry.stats, "problems": entry.problems, "problem_count": entry.problem_count,
            "registered_at": entry.registered_at}


async def catalogued(state: State, file_id: str) -> CatalogFile:
    """The catalog entry (the aggregate: an upload's id answers at once, before the read model)."""
    try:
        entry = await asyncio.to_thread(state.store.app.catalog_file, UUID(file_id))
    except ValueError:
        entry = None
    if entry is None:
        raise not_found("file", file_id, "file_id")
    return entry


@post("/files", status_code=200)
async def create_file(request: Request, state: State,
                      data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
                      ) -> dict[str, Any]:
    """Multipart fields `file` and `purpose` (fine-tune), as `client.files.create` sends them."""
    purpose, upload = data.get("purpose"), data.get("file")
    if purpose != PURPOSE:
        raise OpenAIError(400, f"purpose must be '{PURPOSE}' (got {purpose!r}): the catalog holds training"
                               " files only", "purpose", "invalid_purpose")
    if not isinstance(upload, UploadFile):
        raise OpenAIError(400, "Send the training file as the multipart field 'file'", "file", "missing_file")
    if any(key.startswith("expires_after") for key in data):
        raise OpenAIError(400, "Catalogued training files do not expire: leave expires_after out", "expires_after",
                          "not_supported")
    added = await add_uploaded_file(state, upload, None, actor_of(request))
    if not added.report.ok:
        raise refusal(added)
    entry = await catalogued(state, str(added.file_id))
    return file_object(entry_fields(entry))


def refusal(added: AddedFile) -> OpenAIError:
    report = added.report
    first = report.problems[0]
    count = report.problem_count
    return OpenAIError(
        400, f"{added.name} failed validation with {count} problem{'s' if count != 1 else ''}; the first, at"
             f" {first.place}: {first.message}", "file", "invalid_training_file", file_id=str(added.file_id),
        problem_count=count, problems=[{"place": p.place, "message": p.message} for p in report.problems])


@get("/files")
async def list_files(state: State, after: FromQuery[str | None] = None,
                     limit: Annotated[int, QueryParameter(ge=1, le=10000)] = 10000,
                     order: FromQuery[Literal["asc", "desc"]] = "desc",
                     purpose: FromQuery[str | None] = None) -> dict[str, Any]:
    if purpose not in (None, PURPOSE):
        return envelope([], False)  # the catalog holds fine-tuning files only
    page = await files_page(state.pool, after=uuid_cursor(after, "file"), limit=limit, ascending=order == "asc")
    if page is None:
        raise unknown_cursor(str(after), "file")
    return envelope([file_object(row) for row in page.items], page.has_more)


@get("/files/{file_id:str}")
async def retrieve_file(state: State, file_id: FromPath[str]) -> dict[str, Any]:
    return file_object(entry_fields(await catalogued(state, file_id)))


@get("/files/{file_id:str}/content")
async def file_content(state: State, file_id: FromPath[str]) -> File:
    """The stored bytes, exactly as uploaded (digest checked on the way out of the object store)."""
    entry = await catalogued(state, file_id)
    spool = Path(tempfile.mkdtemp(prefix="file-content-"))
    try:
        path = await state.objects.get_file(entry.file, spool / "content")
    except (ArtifactMissingError, ArtifactCorruptError) as exc:
        shutil.rmtree(spool, ignore_errors=True)
        raise OpenAIError(404, f"The stored bytes of file '{file_id}' are unavailable: {exc}", "file_id",
                          "file_content_missing") from None
    return File(path, filename=safe_name(entry.name), media_type="application/octet-stream",
                background=BackgroundTask(shutil.rmtree, spool, ignore_errors=True))


routes = [create_file, list_files, retrieve_file, file_content]
