"""The NATS Object Store behind our interface: chunked both ways, digests checked."""

import asyncio
import hashlib
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from domain.values import ArtifactRef
from infra import bus
from infra.objectstore import (
    ArtifactCorruptError,
    ArtifactMissingError,
    ObjectStore,
    checkpoint_name,
    newest_checkpoint,
)


def run(coro):
    return asyncio.run(coro)


async def with_store(url: str, body):
    nc = await bus.connect(url, "test")
    try:
        js = nc.jetstream()
        await bus.declare(js)
        return await body(ObjectStore(js))
    finally:
        await nc.close()


def test_a_file_goes_in_and_comes_back_byte_for_byte_with_its_digest(nats_server, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))

    async def body(store: ObjectStore):
        ref = await store.put_file("checkpoints", "job/step-100.bin", source)
        await store.check(ref)
        back = await store.get_file(ref, tmp_path / "back.bin")
        return ref, back

    ref, back = run(with_store(nats_server.url, body))
    assert ref.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert ref.size == source.stat().st_size
    assert back.read_bytes() == source.read_bytes()


def test_a_reference_with_another_digest_or_a_missing_object_is_refused(nats_server, tmp_path: Path) -> None:
    source = tmp_path / "small.json"
    source.write_text('{"conversations": []}')

    async def body(store: ObjectStore):
        ref = await store.put_file("files", "small.json", source)
        forged = ArtifactRef(ref.bucket, ref.name, "0" * 64, ref.size)
        with pytest.raises(ArtifactMissingError):
            await store.check(forged)
        with pytest.raises(ArtifactCorruptError):
            await store.get_file(forged, tmp_path / "out.json")
        assert not (tmp_path / "out.json").exists()
        with pytest.raises(ArtifactMissingError):
            await store.check(ArtifactRef("files", "nope.json", ref.sha256, ref.size))

    run(with_store(nats_server.url, body))


def test_the_newest_whole_checkpoint_an_attempt_stored_is_found_by_listing_its_jobs_bucket(
        nats_server, tmp_path: Path) -> None:
    job = "5b0c6f0e-0000-4000-8000-000000000001"
    before = datetime.now(timezone.utc) - timedelta(seconds=1)

    async def body(store: ObjectStore):
        nobody = await newest_checkpoint(store, job, 1)  # no bucket yet
        bucket = await bus.ensure_job_bucket(store.js, job)
        empty = await newest_checkpoint(store, job, 1)
        refs = {}
        for attempt, step in [(1, 5), (1, 10), (1, 15), (2, 20), (1, 9)]:
            path = tmp_path / f"{attempt}-{step}.tar"
            path.write_bytes(os.urandom(1000 + step))
            refs[attempt, step] = await store.put_file(bucket, checkpoint_name(job, attempt, step), path)
        (tmp_path / "adapter.tar").write_bytes(b"adapter")
        await store.put_file(bucket, f"{job}/attempt-1/adapter.tar", tmp_path / "adapter.tar")
        await store.delete(refs[1, 15])  # removed (retention): not a checkpoint to resume from
        return nobody, empty, refs, await newest_checkpoint(store, job, 1), await newest_checkpoint(store, job, 3)

    nobody, empty, refs, found, none_of_attempt_3 = run(with_store(nats_server.url, body))
    assert nobody is None and empty is None and none_of_attempt_3 is None
    assert found is not None and found.step == 10 and found.ref == refs[1, 10]
    assert before <= found.stored_at <= datetime.now(timezone.utc) + timedelta(seconds=1)
