"""Value objects shared by aggregates, events and adapters."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ArtifactRef:
    """Where a file lives in the object store; events carry this, never the bytes."""

    bucket: str
    name: str
    sha256: str
    size: int

    def __post_init__(self) -> None:
        if not self.bucket or not self.name:
            raise ValueError("artifact bucket and name must not be empty")
        if not _SHA256.match(self.sha256):
            raise ValueError("artifact sha256 must be 64 lowercase hex digits")
        if self.size < 0:
            raise ValueError("artifact size must not be negative")

    def as_dict(self) -> dict[str, object]:
        return {"bucket": self.bucket, "name": self.name, "sha256": self.sha256, "size": self.size}
