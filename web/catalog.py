"""Adding a training file: validate, summarize, store the bytes, register it in the catalog."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from uuid import UUID

from domain.applications import Pipeline
from domain.training_file import MAX_FILE_BYTES, TrainingFileStats, ValidationReport, summarize, validate
from infra.objectstore import ObjectStore

FILES_BUCKET = "files"


@dataclass(frozen=True)
class AddedFile:
    file_id: UUID
    name: str
    report: ValidationReport
    stats: TrainingFileStats | None


class TrainingFileTooLargeError(ValueError):
    """Larger than the validator accepts; refused before reading it into memory."""


def safe_name(filename: str | None) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._ -]+", "_", Path(filename or "training-file").name).strip("._ ")
    return cleaned[:100] or "training-file"


async def add_training_file(objects: ObjectStore, app: Pipeline, path: Path, name: str | None,
                            registered_by: str) -> AddedFile:
    """An invalid file is registered too (status `invalid`, with its problems), so the user sees
    exactly what to fix; only valid files are eligible for jobs."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise TrainingFileTooLargeError(f"Training file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    data = await asyncio.to_thread(path.read_bytes)
    report = await asyncio.to_thread(validate, data)
    stats = await asyncio.to_thread(summarize, data) if report.ok else None
    display = safe_name(name or (stats.name if stats and stats.name else None) or path.name)
    digest = hashlib.sha256(data).hexdigest()
    ref = await objects.put_file(FILES_BUCKET, f"{digest[:16]}/{safe_name(path.name)}", path)
    file_id = await asyncio.to_thread(app.register_training_file, display, ref, report, stats, registered_by,
                                      datetime.now(timezone.utc))
    return AddedFile(file_id, display, report, stats)
