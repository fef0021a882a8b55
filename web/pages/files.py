"""Training files (FR1.1.1): the catalog and uploads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar import MediaType, Request, get, post
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from web import queries
from web.auth import actor_of
from web.errors import DOMAIN_ERRORS, message_of
from web.flows import add_uploaded_file
from web.forms import redirect_with


@dataclass
class FileForm:
    file: UploadFile
    name: str = ""


@get("/files", media_type=MediaType.HTML)
async def files_page(state: State, error: str | None = None, notice: str | None = None) -> Template:
    return Template("files.html", context={"files": await queries.list_files(state.pool), "error": error,
                                           "notice": notice})


@post("/files", media_type=MediaType.HTML)
async def upload_file_form(request: Request, state: State,
                           data: Annotated[FileForm, Body(media_type=RequestEncodingType.MULTI_PART)]) -> Redirect:
    if not data.file.filename:
        return redirect_with("/files", error="Choose a training file")
    try:
        added = await add_uploaded_file(state, data.file, data.name or None, actor_of(request))
    except DOMAIN_ERRORS as exc:
        return redirect_with("/files", error=message_of(exc))
    if not added.report.ok:
        return redirect_with("/files", error=f"{added.name}: {added.report.first_problem.message}")
    return redirect_with("/files", notice=f"{added.name} added: {added.stats.conversation_count} conversations")


routes = [files_page, upload_file_form]
