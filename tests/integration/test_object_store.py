"""The NATS Object Store behind our interface: chunked both ways, digests checked."""

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from domain.values import ArtifactRef
from infra import bus
from infra.objectstore import ArtifactCorruptError, ArtifactMissingError, ObjectStore


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
