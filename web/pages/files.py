"""Training files (FR1.1.1): a searchable list with their metadata and readiness, and uploads with
every validation problem shown at its place in the file."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.response import Template

from domain.training_file.eligibility import MIN_CONVERSATIONS
from domain.training_file.stats import quality_indicator
from projections.catalog import list_files
from web.auth import actor_of
from web.errors import DOMAIN_ERRORS, message_of, status_of
from web.flows import add_uploaded_file
from web.forms import redirect_with

# FR1.1.1's dataset readiness indicators.
READY, PROCESSING, REVIEW = "✓ Ready for Training", "⏳ Processing", "⚠ Review Required"
READINESS = {"ready": READY, "processing": PROCESSING, "review": REVIEW}


@dataclass(frozen=True)
class Readiness:
    key: str
    label: str
    reason: str


def readiness(row: dict[str, Any]) -> Readiness:
    """Whether a job can be created from the file now, and why not (the tooltip)."""
    if row["status"] != "active":
        count = row["problem_count"]
        return Readiness("review", REVIEW, f"Failed validation with {count} problem{'s' if count != 1 else ''}:"
                                           " fix the file and upload it again")
    if row["conversation_count"] < MIN_CONVERSATIONS:
        return Readiness("review", REVIEW, f"Insufficient conversations: {row['conversation_count']} of the"
                                           f" {MIN_CONVERSATIONS} a training job needs")
    if row["active_jobs"] > 0:
        return Readiness("processing", PROCESSING, "In use by an active training job: a new job can use it"
                                                   " when that one ends")
    return Readiness("ready", READY, f"Valid, at least {MIN_CONVERSATIONS} conversations, not in use by an active job")


def size(n: int | None) -> str:
    if not n:
        return ""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def presented(row: dict[str, Any]) -> dict[str, Any]:
    stats = row["stats"] or {}
    quality = stats.get("quality") or {}
    score = Decimal(str(row["avg_quality"])) if row["avg_quality"] is not None else None
    return row | {
        "readiness": readiness(row), "quality": quality,
        "quality_indicator": quality_indicator(score) if score is not None else "",
        "size": size(stats.get("size_bytes") or (row["file"] or {}).get("size")),
        "reviewed": stats.get("human_reviewed_count"), "reviewed_percent": stats.get("human_reviewed_percent"),
        "distributions": [(title, stats.get(key) or []) for title, key in (
            ("Personas", "personas"), ("Emotional arcs", "emotional_arcs"), ("Topics", "topics"))],
    }


@dataclass
class FileFilters:
    q: str = ""
    readiness: str = ""
    min_conversations: str = ""
    max_conversations: str = ""
    min_quality: str = ""
    max_quality: str = ""

    @property
    def narrowed(self) -> bool:
        return any(vars(self).values())


def _number(text: str, what: str, problems: list[str]) -> Decimal | None:
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value < 0:
        problems.append(f"{what} must be a number, like {'50' if 'onversation' in what else '4.0'} (got “{text}”)")
        return None
    return value


def matching(rows: list[dict[str, Any]], f: FileFilters, problems: list[str]) -> list[dict[str, Any]]:
    """FR1.1.1's search: by name, conversation count range and quality score range, and readiness."""
    low_c = _number(f.min_conversations, "Conversations from", problems)
    high_c = _number(f.max_conversations, "Conversations to", problems)
    low_q = _number(f.min_quality, "Quality from", problems)
    high_q = _number(f.max_quality, "Quality to", problems)
    words = f.q.lower().split()
    if f.readiness and f.readiness not in READINESS:
        problems.append(f"Unknown readiness “{f.readiness}”")
    out = []
    for row in rows:
        quality = Decimal(str(row["avg_quality"])) if row["avg_quality"] is not None else None
        names = " ".join([row["name"], *(row.get("aliases") or [])]).lower()  # a file is found by each of its names
        if words and not all(w in names for w in words):
            continue
        if f.readiness in READINESS and row["readiness"].key != f.readiness:
            continue
        if (low_c is not None and row["conversation_count"] < low_c) or \
                (high_c is not None and row["conversation_count"] > high_c):
            continue
        if (low_q is not None or high_q is not None) and quality is None:
            continue
        if (low_q is not None and quality < low_q) or (high_q is not None and quality > high_q):
            continue
        out.append(row)
    return out


async def _page(request: Request, state: State, *, status_code: int = 200, **extra: Any) -> Template:
    params = request.query_params
    f = FileFilters(**{name: str(params.get(name) or "").strip()[:100] for name in FileFilters.__dataclass_fields__})
    problems: list[str] = []
    every = [presented(row) for row in await list_files(state.pool)]
    shown = matching(every, f, problems)
    context = {"files": shown, "total": len(every), "ready_count": sum(r["readiness"].key == "ready" for r in every),
               "filters": f, "problems": problems, "readiness_choices": READINESS, "upload": None,
               "min_conversations": MIN_CONVERSATIONS, "error": params.get("error"), "notice": params.get("notice")}
    return Template("files.html", context=context | extra, status_code=status_code)


@get("/files", media_type=MediaType.HTML)
async def files_page(request: Request, state: State) -> Template:
    return await _page(request, state)


@post("/files", media_type=MediaType.HTML)
async def upload_file_form(request: Request, state: State) -> Response:
    """Validates and adds the file. A valid one: back to the list. An invalid one is catalogued too
    (as ⚠ Review Required); the page lists each problem with its place in the file."""
    form = await request.form()
    upload, name = form.get("file"), str(form.get("name") or "").strip()
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _page(request, state, status_code=400, error="Choose a training file")
    try:
        added = await add_uploaded_file(state, upload, name or None, actor_of(request))
    except DOMAIN_ERRORS as exc:
        return await _page(request, state, status_code=status_of(exc), error=message_of(exc))
    if not added.report.ok:
        report = added.report
        count = report.problem_count
        failed = (f"{added.name} failed validation with {count} problem{'s' if count != 1 else ''}: it is listed as"
                  f" {REVIEW}. Fix the file and upload it again.")
        return await _page(
            request, state, status_code=400, error=" ".join(filter(None, (added.already_catalogued, failed))),
            upload={"name": added.name, "problems": [(p.place, p.message) for p in report.problems],
                    "more": report.more_problems})
    stats = added.stats
    notice = added.already_catalogued or (f"{added.name} added: {stats.conversation_count} conversations,"
                                          f" {stats.training_pair_count} training pairs.")
    if stats.conversation_count < MIN_CONVERSATIONS:
        notice += f" Insufficient conversations: a training job needs at least {MIN_CONVERSATIONS}."
    return redirect_with("/files", notice=notice)


routes = [files_page, upload_file_form]
