"""Checkpoints: Trainer's checkpoint directory, packed into one tar (written to a temporary name
and renamed, so a half-written archive never looks complete) and uploaded to the object store by a
background thread, so training does not wait for the network. When uploads fall behind (NATS
down), only the newest waiting checkpoint is uploaded."""

from __future__ import annotations

import os
import shutil
import tarfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from domain.values import ArtifactRef
from gpu_agent.publisher import Publisher
from infra.bus import job_bucket
from infra.objectstore import ObjectStore, checkpoint_name


def pack(directory: Path, archive: Path) -> Path:
    part = archive.with_name(archive.name + ".part")
    with tarfile.open(part, "w") as tar:
        tar.add(directory, arcname=directory.name)
    part.replace(archive)
    return archive


def unpack(archive: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        names = {Path(m.name).parts[0] for m in tar.getmembers()}
        tar.extractall(into, filter="data")
    (top,) = names
    return into / top


class CheckpointUploader:
    def __init__(self, publisher: Publisher, objects: ObjectStore, job_id: str, work_dir: Path,
                 attempt: int = 1) -> None:
        self.publisher, self.objects, self.job_id, self.work_dir = publisher, objects, job_id, work_dir
        self.attempt = attempt
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="checkpoint-upload")
        self.latest: tuple[int, ArtifactRef] | None = None
        self.lock = threading.Lock()
        self.futures: list[Future] = []
        self.submitted = 0

    def submit(self, step: int, directory: str) -> None:
        """Called in the training thread right after Trainer wrote the checkpoint: hard-links it
        into a staging folder (instant; Trainer may delete its own copy at the next save), and
        leaves packing and uploading to the background thread."""
        staged = self.work_dir / "staged" / f"checkpoint-{step}"
        shutil.copytree(directory, staged, copy_function=os.link, dirs_exist_ok=True)
        self.submitted = step
        self.futures.append(self.executor.submit(self._upload, step, staged))

    def _upload(self, step: int, directory: Path) -> None:
        if step < self.submitted:  # a newer checkpoint is queued (e.g. after an outage): skip this one
            shutil.rmtree(directory, ignore_errors=True)
            return
        archive = pack(directory, self.work_dir / f"checkpoint-step-{step}.tar")
        shutil.rmtree(directory, ignore_errors=True)
        name = checkpoint_name(self.job_id, self.attempt, step)
        ref = self.publisher.call_retrying(lambda: self.objects.put_file(job_bucket(self.job_id), name, archive),
                                           f"upload of {name}")
        archive.unlink(missing_ok=True)
        with self.lock:
            if self.latest is None or step > self.latest[0]:
                self.latest = (step, ref)
        self.publisher.emit("checkpoint", {"step": step, "checkpoint": ref.as_dict()})

    def wait(self, timeout: float | None = None) -> None:
        """Waits for every submitted upload; re-raises an upload's error."""
        for future in list(self.futures):
            future.result(timeout)
