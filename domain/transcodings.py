"""How domain value types are stored in events (registered on every application's transcoder)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain.quality.delivery import SuiteRef
from domain.values import ArtifactRef


class DecimalAsStr(Transcoding):
    type = Decimal
    name = "decimal_str"

    def encode(self, obj: Decimal) -> str:
        return str(obj)

    def decode(self, data: str) -> Decimal:
        return Decimal(data)


class ArtifactRefAsDict(Transcoding):
    type = ArtifactRef
    name = "artifact_ref"

    def encode(self, obj: ArtifactRef) -> dict[str, Any]:
        return obj.as_dict()

    def decode(self, data: dict[str, Any]) -> ArtifactRef:
        return ArtifactRef(**data)


class SuiteRefAsDict(Transcoding):
    type = SuiteRef
    name = "suite_ref"

    def encode(self, obj: SuiteRef) -> dict[str, Any]:
        return {"suite_id": obj.suite_id, "name": obj.name, "file": obj.file}

    def decode(self, data: dict[str, Any]) -> SuiteRef:
        return SuiteRef(**data)


def register_domain_transcodings(transcoder: JSONTranscoder) -> None:
    for transcoding in (DecimalAsStr(), ArtifactRefAsDict(), SuiteRefAsDict()):
        transcoder.register(transcoding)
