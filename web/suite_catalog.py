"""Adding an evaluation suite (FR6.3.2 domain probes, FR6.4.2 a client's brand-voice rubric; the shipped
FR6.3.1 knowledge suite, FR6.2.1 EI scenarios and FR6.4.1 Elena Morales rubric): validate (every problem
with its place, docs/quality-suites.md), store the bytes in the object store's `files` bucket like a
training file, register it in the suite catalog (ProbeSuite). Only a valid suite is stored: an invalid
upload is answered with its problems and leaves nothing behind."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

from litestar.datastructures import State

from domain.aggregates.probe_suite import ProbeSuite
from domain.applications import Pipeline
from domain.job_metadata import InvalidJobError
from domain.quality import MAX_SUITE_BYTES, load_ei_suite, load_knowledge_suite, load_rubric
from domain.quality.delivery import SuiteRef
from domain.quality.generations import rubric_dict
from infra.objectstore import ObjectStore
from web.catalog import FILES_BUCKET, safe_name

SUITES_DIR = Path(__file__).resolve().parents[1] / "samples" / "suites"
SHIPPED = SUITES_DIR / "financial-knowledge.jsonl"
SHIPPED_EI = SUITES_DIR / "emotional-intelligence.jsonl"
SHIPPED_RUBRIC = SUITES_DIR / "brand-voice-elena-morales.json"
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
    loader = load_ei_suite if kind == "ei" else load_knowledge_suite
    suite = await asyncio.to_thread(loader, data, name)
    digest = hashlib.sha256(data).hexdigest()
    ref = await objects.put_fileobj(FILES_BUCKET, f"{digest[:16]}/{name}", io.BytesIO(data))
    return await asyncio.to_thread(app.register_suite, suite, kind, ref, registered_by, datetime.now(timezone.utc))


async def shipped_suite(state: State, path: Path = SHIPPED) -> ProbeSuite:
    """A shipped suite, stored and catalogued on first use: FR6.3.1's 100 financial questions (default),
    FR6.2.1's 50 EI scenarios (SHIPPED_EI) or FR6.4.1's Elena Morales rubric (SHIPPED_RUBRIC)."""
    if path.name not in _shipped:
        _shipped[path.name] = await asyncio.to_thread(path.read_bytes)
    data = _shipped[path.name]
    app = state.store.app
    found = await asyncio.to_thread(app.suite, ProbeSuite.id_for(hashlib.sha256(data).hexdigest()))
    if found is not None:
        return found
    if path == SHIPPED_RUBRIC:
        return await add_rubric(state.objects, app, data, path.name, SYSTEM)
    return await add_suite(state.objects, app, data, path.name, SYSTEM,
                           kind="ei" if path == SHIPPED_EI else "knowledge")


async def add_rubric(objects: ObjectStore, app: Pipeline, data: bytes, filename: str | None,
                     registered_by: str) -> ProbeSuite:
    """A brand-voice rubric (FR6.4.2), validated by `load_rubric` (raises SuiteFormatError with each problem's
    place). One without prompts is stored with the shipped rubric's 30 (docs/quality-suites.md): what the pod
    replies to; its characteristics and thresholds are the client's, unchanged."""
    if len(data) > MAX_SUITE_BYTES:
        raise SuiteTooLargeError(f"The file is {len(data) / 1024 / 1024:.0f} MiB, over the "
                                 f"{MAX_SUITE_BYTES // (1024 * 1024)} MiB limit")
    rubric = await asyncio.to_thread(load_rubric, data)
    if not rubric.prompts:
        shipped = await asyncio.to_thread(load_rubric, await asyncio.to_thread(SHIPPED_RUBRIC.read_bytes))
        body = rubric_dict(rubric) | {"prompts": [{"id": p.id, "persona": p.persona, "topic": p.topic,
                                                   "prompt": p.prompt} for p in shipped.prompts]}
        data = json.dumps(body, indent=2, ensure_ascii=False).encode()
        rubric = await asyncio.to_thread(load_rubric, data)
    name = safe_name(filename or "rubric.json")
    digest = hashlib.sha256(data).hexdigest()
    ref = await objects.put_fileobj(FILES_BUCKET, f"{digest[:16]}/{name}", io.BytesIO(data))
    return await asyncio.to_thread(app.register_suite, rubric, "rubric", ref, registered_by, datetime.now(timezone.utc))


MAX_PROBE_SUITES = 10
NOT_PROBES = {"ei": ("the EI scenarios", "emotional_intelligence"), "rubric": ("a brand-voice rubric", "rubric_id")}


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
    for n, suite in enumerate(chosen):
        if suite.kind in NOT_PROBES:
            what, field = NOT_PROBES[suite.kind]
            raise InvalidJobError(f"probe_suite_ids[{n}]: {suite.name} is {what}, not multiple-choice questions:"
                                  f" name it as {field}")
    shipped = await shipped_suite(state) if knowledge or any(s.kind == "knowledge" for s in chosen) else None
    probes = [s.ref for s in chosen if shipped is None or s.id != shipped.id]
    return (shipped.ref if shipped else None), probes


async def judged_suites(state: State, emotional_intelligence: bool = True, brand_voice: bool = True,
                        rubric_id: Any = None) -> tuple[SuiteRef | None, SuiteRef | None]:
    """What a new job's pod generates replies for (FR6.2.1, FR6.4.1): the shipped EI scenarios unless left
    out, and a rubric — the one named (`rubric_id`, a rubric in the catalog), else Elena Morales' — unless
    brand voice is left out."""
    ei = await shipped_suite(state, SHIPPED_EI) if emotional_intelligence else None
    rubric = None
    if rubric_id not in (None, ""):
        try:
            wanted = rubric_id if isinstance(rubric_id, UUID) else UUID(str(rubric_id).strip())
        except ValueError:
            raise InvalidJobError(f"rubric_id is not a rubric id: {str(rubric_id)[:80]!r}") from None
        rubric = await asyncio.to_thread(state.store.app.suite, wanted)
        if rubric is None or rubric.kind != "rubric":
            raise InvalidJobError(f"rubric_id: there is no brand-voice rubric {wanted} (see /suites)")
    elif brand_voice:
        rubric = await shipped_suite(state, SHIPPED_RUBRIC)
    return (ei.ref if ei else None), (rubric.ref if rubric else None)
