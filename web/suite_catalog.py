"""Adding an evaluation suite (FR6.3.2 domain probes; the shipped FR6.3.1 knowledge suite): validate
(every problem with its place, docs/quality-suites.md), store the bytes in the object store's `files`
bucket like a training file, register it in the suite catalog (ProbeSuite). Only a valid suite is
stored: an invalid upload is answered with its problems and leaves nothing behind."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

from litestar.datastructures import State

from domain.aggregates.probe_suite import ProbeSuite
from domain.applications import Pipeline
from domain.job_metadata import InvalidJobError
from domain.quality import MAX_SUITE_BYTES, load_knowledge_suite
from domain.quality.delivery import SuiteRef
from infra.objectstore import ObjectStore
from web.catalog import FILES_BUCKET, safe_name

SHIPPED = Path(__file__).resolve().parents[1] / "samples" / "suites" / "financial-knowledge.jsonl"
SYSTEM = "system"
_shipped: dict[str, bytes] = {}


class SuiteTooLargeError(ValueError):
    """Larger than the validator reads; refused before reading it all."""


async def add_suite(objects: ObjectStore, app: Pipeline, data: bytes, filename: str | None, registered_by: str,
                    kind: str = "probes") -> ProbeSuite:
    """Raises SuiteFormatError (with every problem's place) or SuiteTooLargeError."""
    if len(data) > MAX_SUITE_BYTES:
        raise SuiteTooLargeError(f"The file is {len(data) / 1024 / 1024:.0f} MiB, over the "
                                 f"{MAX_SUITE_BYTES // (1024 * 1024)} MiB limit")
    name = safe_name(filename or "probes.csv")
    suite = await asyncio.to_thread(load_knowledge_suite, data, name)
    digest = hashlib.sha256(data).hexdigest()
    ref = await objects.put_fileobj(FILES_BUCKET, f"{digest[:16]}/{name}", io.BytesIO(data))
    return await asyncio.to_thread(app.register_suite, suite, kind, ref, registered_by, datetime.now(timezone.utc))


async def shipped_suite(state: State) -> ProbeSuite:
    """FR6.3.1's 100 financial questions, stored and catalogued on first use."""
    if "data" not in _shipped:
        _shipped["data"] = await asyncio.to_thread(SHIPPED.read_bytes)
    data = _shipped["data"]
    app = state.store.app
    found = await asyncio.to_thread(app.suite, ProbeSuite.id_for(hashlib.sha256(data).hexdigest()))
    return found or await add_suite(state.objects, app, data, SHIPPED.name, SYSTEM, kind="knowledge")


MAX_PROBE_SUITES = 10


def parse_ids(values: Sequence[Any]) -> list[UUID]:
    """Suite ids as sent (strings or UUIDs); a malformed one is refused with its place."""
    ids = []
    for n, value in enumerate(values):
        try:
            ids.append(value if isinstance(value, UUID) else UUID(str(value).strip()))
        except ValueError:
            raise InvalidJobError(f"probe_suite_ids[{n}] is not a suite id: {str(value)[:80]!r}") from None
    return list(dict.fromkeys(ids))


async def probe_suites(state: State, ids: Sequence[UUID]) -> list[ProbeSuite]:
    """The catalogued suites named; an unknown id is refused with its place."""
    if len(ids) > MAX_PROBE_SUITES:
        raise InvalidJobError(f"At most {MAX_PROBE_SUITES} probe suites per job (got {len(ids)})")
    found = []
    for n, suite_id in enumerate(ids):
        suite = await asyncio.to_thread(state.store.app.suite, suite_id)
        if suite is None:
            raise InvalidJobError(f"probe_suite_ids[{n}]: there is no evaluation suite {suite_id} (see /suites)")
        found.append(suite)
    return found


async def job_suites(state: State, probe_ids: Sequence[Any], knowledge: bool = True
                     ) -> tuple[SuiteRef | None, list[SuiteRef]]:
    """What a new job's pod evaluates: the shipped knowledge suite (FR6.3.1) unless left out, and the
    client probes named (the shipped suite named among them counts once, as the knowledge suite)."""
    chosen = await probe_suites(state, parse_ids(probe_ids))
    shipped = await shipped_suite(state) if knowledge or any(s.kind == "knowledge" for s in chosen) else None
    probes = [s.ref for s in chosen if shipped is None or s.id != shipped.id]
    return (shipped.ref if shipped else None), probes
