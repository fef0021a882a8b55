"""Adding a training file: validate, summarize, store the bytes, register it in the catalog."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from uuid import UUID

from domain.aggregates.catalog_file import NAME_MAX, Registration, check_name
from domain.applications import Pipeline
from domain.training_file import MAX_FILE_BYTES, TrainingFileStats, ValidationReport, summarize, validate
from infra.objectstore import ObjectStore

FILES_BUCKET = "files"
MIB = 1024 * 1024


@dataclass(frozen=True)
class AddedFile:
    file_id: UUID
    name: str
    report: ValidationReport
    stats: TrainingFileStats | None
    registration: Registration | None = None  # None only where no catalog entry was asked for

    @property
    def already_catalogued(self) -> str | None:
        """The sentence when these bytes were in the catalog already (under `name`)."""
        return self.registration.already_catalogued() if self.registration else None


class TrainingFileTooLargeError(ValueError):
    """Larger than the validator accepts; refused before reading it into memory."""

    @classmethod
    def of(cls, name: str, size: int | None = None) -> TrainingFileTooLargeError:
        limit = f"the {MAX_FILE_BYTES // MIB} MiB limit for training files"
        return cls(f"{name} is over {limit}" if size is None else f"{name} is {size / MIB:.1f} MiB, over {limit}")


def safe_name(filename: str | None) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._ -]+", "_", Path(filename or "training-file").name).strip("._ ")
    return cleaned[:100] or "training-file"


def display_name(given: str | None, derived: str) -> str:
    """The catalog's name: the one given, whole (the domain refuses one too long, with its length),
    else the file's own name or its file name, cut to fit."""
    if given and (given := " ".join(given.split())):
        return given
    return " ".join(derived.split())[:NAME_MAX].strip() or "training-file"


def check_file(path: Path, name: str | None) -> None:
    """What can be refused before reading the file: its size (TrainingFileTooLargeError) and the
    name given (InvalidCatalogNameError), so the CLI says so before any server starts."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise TrainingFileTooLargeError.of(path.name, path.stat().st_size)
    if name is not None:
        check_name(display_name(name, ""))


async def add_training_file(objects: ObjectStore, app: Pipeline, path: Path, name: str | None,
                            registered_by: str) -> AddedFile:
    """An invalid file is registered too (status `invalid`, with its problems), so the user sees
    exactly what to fix; only valid files are eligible for jobs."""
    check_file(path, name)
    data = await asyncio.to_thread(path.read_bytes)
    report = await asyncio.to_thread(validate, data)
    stats = await asyncio.to_thread(summarize, data) if report.ok else None
    display = display_name(name, (stats.name if stats and stats.name else None) or path.name)
    digest = hashlib.sha256(data).hexdigest()
    ref = await objects.put_file(FILES_BUCKET, f"{digest[:16]}/{safe_name(path.name)}", path)
    registered = await asyncio.to_thread(app.add_to_catalog, display, ref, report, stats, registered_by,
                                         datetime.now(timezone.utc))
    return AddedFile(registered.file_id, registered.name, report, stats, registered)
