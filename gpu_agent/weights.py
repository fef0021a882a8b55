"""The base model's weights, fetched before they load (issue #16): from the hub into HF_HOME, which on
RunPod is a network volume that later pods of any job reuse, with the pod's HF_TOKEN (huggingface_hub
reads it from the environment; it is never logged or reported). Timed on its own, so the download is
its own line of the setup cost; `cached` says the volume already held every file."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TINY = "tiny"
# Meta's repositories also carry the original checkpoint (original/*.pth, as large again): not needed.
IGNORED = ["original/*", "*.pth", "*.pt", "*.gguf", "*.msgpack", "*.h5", "*.onnx"]


@dataclass(frozen=True)
class Download:
    model: str
    seconds: float
    size_bytes: int  # the snapshot on disk
    fetched_bytes: int  # what this pod downloaded (0: all cached)

    @property
    def cached(self) -> bool:
        return self.fetched_bytes == 0

    def report(self) -> dict[str, Any]:
        """What the model loading stage's telemetry carries (handlers/telemetry.py `model_download`)."""
        return {"model": self.model, "seconds": round(self.seconds, 3), "size_bytes": self.size_bytes,
                "cached": self.cached}

    def describe(self) -> str:
        gb = self.size_bytes / 1e9
        if self.cached:
            return f"{self.model}: {gb:.1f} GB found in the cache ({self.seconds:.1f} s)"
        rate = self.fetched_bytes / 1e6 / self.seconds if self.seconds else 0.0
        return f"{self.model}: {self.fetched_bytes / 1e9:.1f} of {gb:.1f} GB downloaded in {self.seconds:.1f} s " \
               f"({rate:.0f} MB/s)"


def needs_fetch(model_id: str) -> bool:
    """A hub id: not the tiny test model, not a local directory."""
    return model_id != TINY and not Path(model_id).is_dir()


def fetch(model_id: str, clock: Callable[[], float] = time.monotonic) -> Download:
    """Every file of the model's current revision (but the IGNORED ones) in the hub cache."""
    from huggingface_hub import constants, snapshot_download

    repo = Path(constants.HF_HUB_CACHE) / f"models--{model_id.replace('/', '--')}"
    before = _blob_bytes(repo)
    started = clock()
    snapshot = Path(snapshot_download(model_id, ignore_patterns=IGNORED))
    seconds = clock() - started
    size = sum(f.stat().st_size for f in snapshot.rglob("*") if f.is_file())  # links resolved: the blobs' sizes
    return Download(model_id, seconds, size, max(0, _blob_bytes(repo) - before))


def _blob_bytes(repo: Path) -> int:
    blobs = repo / "blobs"
    if not blobs.is_dir():
        return 0
    return sum(entry.stat().st_size for entry in os.scandir(blobs) if entry.is_file())
