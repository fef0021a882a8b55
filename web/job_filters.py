"""The jobs list's filters (FR2.3.1, FR5.2.1): the query string ⇄ what the filter form shows and
the JobSearch it makes, with a message for each value left out."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from projections.job_quality import QUALITY_FILTERS, QUALITY_LABELS
from projections.job_search import JobSearch
from web.forms import split_tags
from web.job_format import GPU_TIERS, PRESET_TITLES, STATUS_LABELS
from web.query_params import day, dollars, every, one

PER_PAGE_CHOICES = (25, 50, 100)  # FR2.3.1
DEFAULT_PER_PAGE = 25
SORTS = {"created_at": "Created date", "started_at": "Started", "duration": "Duration", "cost": "Cost",
         "status": "Status", "created_by": "Creator", "name": "Job name", "relevance": "Relevance"}
# The spec's status filter (FR2.3.1); "not_started" is ours: drafts not yet queued.
STATUS_FILTERS = {"active": "Active", "queued": "Queued", "completed": "Completed", "failed": "Failed",
                  "cancelled": "Cancelled", "not_started": "Not started"}
STATUS_EXPANDS = {"not_started": ["pending_configuration", "configured"]}
PERIODS = {"7d": ("Last 7 days", 7), "30d": ("Last 30 days", 30), "90d": ("Last 90 days", 90)}
# FR2.3.1 (<$50, $50-100, >$100) and FR5.2.1 ($100-200, >$200): lower bound inclusive, upper exclusive.
COST_BANDS: dict[str, tuple[str, Decimal | None, Decimal | None]] = {
    "lt50": ("Under $50", None, Decimal(50)), "50-100": ("$50–$100", Decimal(50), Decimal(100)),
    "100-200": ("$100–$200", Decimal(100), Decimal(200)), "gt100": ("Over $100", Decimal(100), None),
    "gt200": ("Over $200", Decimal(200), None)}
TEXT_FIELDS = ("q", "preset", "gpu_tier", "created_by", "client", "project", "tags", "period", "date_from",
               "date_to", "cost", "cost_min", "cost_max", "quality")


@dataclass
class Filters:
    """What the filter form shows (the raw values), and the query strings of links keeping them."""

    status: list[str] = field(default_factory=list)
    q: str = ""
    preset: str = ""
    gpu_tier: str = ""
    created_by: str = ""
    client: str = ""
    project: str = ""
    tags: str = ""
    period: str = ""
    date_from: str = ""
    date_to: str = ""
    cost: str = ""
    cost_min: str = ""
    cost_max: str = ""
    quality: str = ""  # the delivery gate's outcome (projections/job_quality.py QUALITY_FILTERS)
    sort: str = "created_at"
    order: str = "desc"
    per_page: int = DEFAULT_PER_PAGE
    page: int = 1

    def pairs(self, **changes: Any) -> list[tuple[str, str]]:
        values = replace(self, **changes)
        out = [("status", s) for s in values.status]
        out += [(name, getattr(values, name)) for name in TEXT_FIELDS if getattr(values, name)]
        if (values.sort, values.order) != ("created_at", "desc"):
            out += [("sort", values.sort), ("order", values.order)]
        if values.per_page != DEFAULT_PER_PAGE:
            out.append(("per_page", str(values.per_page)))
        if values.page != 1:
            out.append(("page", str(values.page)))
        return out

    def query(self, **changes: Any) -> str:
        """`?…` keeping every filter, with `changes` applied (a sort link goes back to page 1)."""
        encoded = urlencode(self.pairs(**changes))
        return f"?{encoded}" if encoded else "?"

    def sort_query(self, key: str) -> str:
        order = ("asc" if self.order == "desc" else "desc") if self.sort == key else \
            ("asc" if key in ("name", "status", "created_by") else "desc")
        return self.query(sort=key, order=order, page=1)

    @property
    def in_use(self) -> int:
        """How many of the folded settings (every filter but the search, the sort, the page size) are
        not their default: the jobs list shows them unfolded when any is."""
        return len({name for name, _ in self.pairs(page=1)} - {"q", "order"})  # a sort is its key and order

    @property
    def narrowed(self) -> bool:
        return bool(self.pairs(sort="created_at", order="desc", per_page=DEFAULT_PER_PAGE, page=1))


def read_filters(params: Any, now: datetime) -> tuple[Filters, JobSearch, list[str]]:
    """The filters in a query string, the search they make, and what was wrong in them (left out)."""
    errors: list[str] = []
    f = Filters(**{name: one(params, name) for name in TEXT_FIELDS})
    f.status = _statuses(params, errors)
    _check_choices(f, errors)
    _read_order(f, params, errors)
    _read_paging(f, params, errors)
    created_from, created_to = _created_range(f, now, errors)
    cost_from, cost_to = _cost_range(f, errors)
    statuses = [s for value in f.status for s in STATUS_EXPANDS.get(value, [value])]
    search = JobSearch(status=statuses, preset=f.preset or None, gpu_tier=f.gpu_tier or None,
                       created_by=f.created_by or None, client=f.client or None, project=f.project or None,
                       tags=tuple(t.lower() for t in split_tags(f.tags)), text=f.q or None,
                       created_from=created_from, created_to=created_to, cost_from=cost_from, cost_to=cost_to,
                       quality=f.quality or None, sort=f.sort, descending=f.order == "desc", page=f.page,
                       per_page=f.per_page, now=now)
    return f, search, errors


def _statuses(params: Any, errors: list[str]) -> list[str]:
    known = []
    for value in every(params, "status"):
        if value in STATUS_FILTERS or value in STATUS_LABELS:
            known.append(value)
        else:
            errors.append(f"Unknown status “{value}”")
    return list(dict.fromkeys(known))


def _check_choices(f: Filters, errors: list[str]) -> None:
    if f.preset and f.preset not in PRESET_TITLES:
        errors.append(f"Unknown preset “{f.preset}”: choose Conservative, Balanced or Aggressive")
        f.preset = ""
    if f.quality and f.quality not in QUALITY_FILTERS:
        errors.append(f"Unknown quality outcome “{f.quality}”: choose {', '.join(QUALITY_LABELS.values())}")
        f.quality = ""
    if f.gpu_tier and f.gpu_tier not in GPU_TIERS:
        errors.append(f"Unknown GPU type “{f.gpu_tier}”: choose Spot or On-demand")
        f.gpu_tier = ""


def _read_order(f: Filters, params: Any, errors: list[str]) -> None:
    f.sort, f.order = one(params, "sort") or "created_at", one(params, "order") or "desc"
    if f.sort not in SORTS:
        errors.append(f"Jobs can be sorted by {', '.join(v.lower() for v in SORTS.values())}")
        f.sort = "created_at"
    if f.sort == "relevance" and not f.q:
        f.sort = "created_at"
    if f.order not in ("asc", "desc"):
        f.order = "desc"


def _read_paging(f: Filters, params: Any, errors: list[str]) -> None:
    choices = {str(n) for n in PER_PAGE_CHOICES}
    per_page = one(params, "per_page")
    if per_page and per_page not in choices:
        errors.append("Show 25, 50 or 100 jobs per page")
    f.per_page = int(per_page) if per_page in choices else DEFAULT_PER_PAGE
    page = one(params, "page")
    f.page = int(page) if page.isdigit() and 0 < int(page) < 1_000_000 else 1


def _created_range(f: Filters, now: datetime, errors: list[str]) -> tuple[datetime | None, datetime | None]:
    """A period (the last N days), else the dates given: from the first day's start to the last's end."""
    if f.period in PERIODS:
        return now - timedelta(days=PERIODS[f.period][1]), None
    start, end = day(f.date_from, errors), day(f.date_to, errors)
    f.period = "custom" if (f.date_from or f.date_to) else ""
    if start and end and start > end:
        errors.append("The start date must be on or before the end date")
        return None, None
    return (datetime.combine(start, time(), timezone.utc) if start else None,
            datetime.combine(end + timedelta(days=1), time(), timezone.utc) if end else None)


def _cost_range(f: Filters, errors: list[str]) -> tuple[Decimal | None, Decimal | None]:
    """A cost band, else the amounts given."""
    if f.cost in COST_BANDS:
        _, low, high = COST_BANDS[f.cost]
        return low, high
    low, high = dollars(f.cost_min, errors), dollars(f.cost_max, errors)
    f.cost = "custom" if (f.cost_min or f.cost_max) else ""
    if low is not None and high is not None and low > high:
        errors.append("The lowest cost must not be above the highest")
        return None, None
    return low, high
