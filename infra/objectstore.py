"""Files (training files, checkpoints, adapters) in the NATS JetStream Object Store."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from io import BufferedIOBase
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.api import ObjectMeta, ObjectMetaOptions
from nats.js.errors import NotFoundError

from domain.values import ArtifactRef
from infra.bus import job_bucket

CHUNK_SIZE = 128 * 1024  # below the server's max_payload; one chunk in memory at a time


class ArtifactMissingError(LookupError):
    """No object with that reference exists (or its digest differs)."""


class ArtifactCorruptError(ValueError):
    """The bytes read back do not match the reference's digest or size."""


class ObjectStore:
    """Streams files in and out in chunks; every reference carries a SHA-256 digest."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def put_file(self, bucket: str, name: str, path: Path) -> ArtifactRef:
        with open(path, "rb") as source:
            return await self.put_fileobj(bucket, name, source)

    async def put_fileobj(self, bucket: str, name: str, source: BufferedIOBase) -> ArtifactRef:
        """Reads `source` chunk by chunk (in a thread) into the bucket; returns its reference."""
        store = await self.js.object_store(bucket)
        meta = ObjectMeta(name=name, options=ObjectMetaOptions(max_chunk_size=CHUNK_SIZE))
        info = await store.put(name, source, meta=meta)
        if info.digest is None or info.size is None:  # nats-py types them optional; a stored object has both
            raise ArtifactCorruptError(f"object {bucket}/{name} was stored without a digest or size")
        return ArtifactRef(bucket, name, hex_digest(info.digest), info.size)

    async def get_file(self, ref: ArtifactRef, path: Path) -> Path:
        """Writes the object to `path` chunk by chunk and checks its digest and size."""
        store = await self.js.object_store(ref.bucket)
        part = path.with_name(path.name + ".part")
        try:
            with open(part, "wb") as sink:
                await store.get(ref.name, writeinto=sink)
        except NotFoundError:
            part.unlink(missing_ok=True)
            raise ArtifactMissingError(f"no object {ref.bucket}/{ref.name}") from None
        if part.stat().st_size != ref.size or _file_sha256(part) != ref.sha256:
            part.unlink()
            raise ArtifactCorruptError(f"object {ref.bucket}/{ref.name} does not match its reference")
        part.replace(path)
        return path

    async def check(self, ref: ArtifactRef) -> None:
        """Raises ArtifactMissingError unless the object exists with that digest and size."""
        try:
            info = await (await self.js.object_store(ref.bucket)).get_info(ref.name)
        except NotFoundError:
            raise ArtifactMissingError(f"no object {ref.bucket}/{ref.name}") from None
        if info.size != ref.size or info.digest is None or hex_digest(info.digest) != ref.sha256:
            raise ArtifactMissingError(f"object {ref.bucket}/{ref.name} has another digest or size")

    async def delete(self, ref: ArtifactRef) -> bool:
        """Removes the object and its chunks; False when it was not there (deleted before)."""
        try:
            await (await self.js.object_store(ref.bucket)).delete(ref.name)
        except NotFoundError:
            return False
        return True


def checkpoint_name(job_id: str, attempt: int, step: int) -> str:
    """Where a pod uploads its checkpoint of `step`. The attempt in the name: a stale pod of an older
    attempt can never overwrite the checkpoint a newer attempt resumes from."""
    return f"{job_id}/attempt-{attempt}/checkpoint-step-{step}.tar"


@dataclass(frozen=True)
class StoredCheckpoint:
    step: int
    ref: ArtifactRef
    stored_at: datetime  # when its last chunk was written (the NATS server's clock)


async def newest_checkpoint(objects: ObjectStore, job_id: str, attempt: int) -> StoredCheckpoint | None:
    """The newest checkpoint `attempt`'s pod finished uploading, whether or not its telemetry has been
    read yet: an object is listed only once its last chunk is stored, so what is listed is whole."""
    try:
        store = await objects.js.object_store(job_bucket(job_id))
        infos = await store.list(ignore_deletes=True)
    except NotFoundError:  # no bucket yet, or nothing in it
        return None
    prefix = checkpoint_name(job_id, attempt, 0).removesuffix("0.tar")
    found: list[StoredCheckpoint] = []
    for info in infos:
        step = info.name.removeprefix(prefix).removesuffix(".tar")
        if info.name.startswith(prefix) and step.isdigit() and not info.deleted and info.digest and info.size:
            ref = ArtifactRef(job_bucket(job_id), info.name, hex_digest(info.digest), info.size)
            found.append(StoredCheckpoint(int(step), ref, _parse_mtime(info.mtime)))
    return max(found, key=lambda checkpoint: checkpoint.step, default=None)


def _parse_mtime(mtime: str | None) -> datetime:
    """NATS writes UTC with nanoseconds (`2026-12-07T12:00:00.123456789Z`); Python reads microseconds."""
    if not mtime:
        return datetime.now(timezone.utc)
    whole, _, fraction = mtime.removesuffix("Z").partition(".")
    return datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}").replace(tzinfo=timezone.utc)


def hex_digest(nats_digest: str) -> str:
    """NATS writes `SHA-256=<base64url>`; references use lowercase hex."""
    encoded = nats_digest.split("=", 1)[1]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).hex()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
