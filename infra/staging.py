"""Staging a job's inputs into its own bucket before a pod starts: the training file (and, for a
resumed job, the checkpoint it starts from) are copied there, so the pod's credentials need reach
no other bucket (infra/natsauth.py). Copies are skipped when already there with that digest."""

from __future__ import annotations

import tempfile
from pathlib import Path

from nats.js.errors import NotFoundError

from domain.values import ArtifactRef
from infra import bus
from infra.objectstore import ObjectStore, hex_digest


async def stage(objects: ObjectStore, job_id: str, refs: list[ArtifactRef]) -> list[ArtifactRef]:
    bucket = await bus.ensure_job_bucket(objects.js, job_id)
    return [await _copy(objects, ref, bucket) for ref in refs]


async def _copy(objects: ObjectStore, ref: ArtifactRef, bucket: str) -> ArtifactRef:
    if ref.bucket == bucket:
        return ref
    name = f"staged/{ref.bucket}/{ref.name}"
    try:
        info = await (await objects.js.object_store(bucket)).get_info(name)
        if info.size == ref.size and info.digest is not None and hex_digest(info.digest) == ref.sha256:
            return ArtifactRef(bucket, name, ref.sha256, ref.size)
    except NotFoundError:
        pass
    with tempfile.TemporaryDirectory(prefix="stage-") as tmp:
        path = await objects.get_file(ref, Path(tmp) / "object")  # checks the digest on the way
        return await objects.put_file(bucket, name, path)
