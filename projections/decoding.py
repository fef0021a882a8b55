"""A replay's decoder: a stored event back to the domain event the application's mapper makes, and
the event's payload as the event log stores it (`projections.json.payload_json`), from one parse of
the stored JSON. A rebuild decodes every event of the store; this is its largest cost after the
reading, and the mapper's way (a Python hook for every JSON object) plus a second encoding for the
log's payload cost about twice as much (bench/README.md, "Read-model rebuild").

The quick road takes what nearly every event is: top-level fields that are JSON values or one of
the transcoder's marked values for a time, an amount or an id (`{"_type_":"datetime_iso",
"_data_":"…"}`). Anything else (a value object, a nested marked value, a NaN loss, a compressed or
encrypted store, a class version) takes the mapper's road, and `payload_json` makes the payload:
the two roads give equal events and equal payloads (tests/unit/test_replay_decoding.py)."""

from __future__ import annotations

import json
import json.scanner
import math
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent
from eventsourcing.utils import resolve_topic

# The transcoder's marked values the quick road turns back, and how each reads in a payload.
# The payload's text is `plain`'s of the value read back (isoformat, str), not the stored text: the
# same for what the transcoder wrote, and right too for a hand-made row ("Z", " 1", hex ids).
_MARKED: dict[str, tuple[Callable[[str], Any], Callable[[Any], str]]] = {
    "datetime_iso": (datetime.fromisoformat, datetime.isoformat),
    "decimal_str": (Decimal, str),
    "uuid_hex": (UUID, str),
}
# No hook, and the scanner itself (C): `json.loads` adds two regular-expression calls around it.
_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[attr-defined]


_SAMPLES = {"datetime_iso": "2026-11-25T10:00:00.5+01:00", "decimal_str": "2.490", "uuid_hex": "0" * 31 + "7"}


def _reads_alike(transcoder: JSONTranscoder, name: str) -> bool:
    transcoding = transcoder.names.get(name)
    if transcoding is None:
        return False
    value, expected = transcoding.decode(_SAMPLES[name]), _MARKED[name][0](_SAMPLES[name])
    return type(value) is type(expected) and value == expected and str(value) == str(expected)


class ReplayDecoder:
    def __init__(self, mapper: Mapper) -> None:
        self.mapper = mapper
        # The quick road reads the JSON the stock transcoder writes, and nothing transformed, with
        # the marked values its transcodings read as the quick road does.
        self.quick = type(mapper.transcoder) is JSONTranscoder and not mapper.cipher and not mapper.compressor \
            and all(_reads_alike(mapper.transcoder, name) for name in _MARKED)
        self.classes: dict[str, type] = {}

    def decode(self, originator_id: UUID, version: int, topic: str, state: bytes) -> tuple[Any, str | None]:
        """(the domain event, its payload as JSON text, or None when it took the mapper's road)."""
        if self.quick:
            try:
                decoded = self._quick(originator_id, version, topic, state)
            except Exception:  # noqa: BLE001 - a damaged state: the mapper's road says what and where
                decoded = None
            if decoded is not None:
                return decoded
        return self.mapper.to_domain_event(StoredEvent(originator_id, version, topic, state)), None

    def _quick(self, originator_id: UUID, version: int, topic: str, state: bytes) -> tuple[Any, str] | None:
        cls = self.classes.get(topic)
        if cls is None:
            cls = resolve_topic(topic)
            if getattr(cls, "class_version", 1) != 1:  # upcasting: the mapper's business
                return None
            self.classes[topic] = cls
        text = state.decode()
        try:
            fields, end = _scan(text, 0)
        except StopIteration:  # not JSON: the mapper says so
            return None
        if end != len(text) or type(fields) is not dict:
            return None
        marked = 0
        for name, value in fields.items():
            if type(value) is dict:
                kind, data = value.get("_type_"), value.get("_data_")
                conversions = _MARKED.get(kind)  # type: ignore[arg-type]
                if len(value) != 2 or conversions is None or type(data) is not str or '"' in data or "\\" in data:
                    return None
                to_value, as_payload = conversions
                fields[name] = converted = to_value(data)
                # Inside a JSON string every quote is escaped: this text is only ever a marked value.
                text = text.replace(f'{{"_type_":"{kind}","_data_":"{data}"}}', f'"{as_payload(converted)}"')
                marked += 1
            elif type(value) is float and not math.isfinite(value):  # 1e400 in a hand-made row
                return None
        # Marked values below the top (in a list, a dict) would stay marked in `fields` but be
        # replaced in the text; with non-finite floats (`payload_json` writes them as text: JSON
        # cannot hold them) they take the long road. A false alarm in free text only costs time.
        if marked and state.count(b'{"_type_":') != marked or '"_type_"' in text \
                or "NaN" in text or "Infinity" in text or "class_version" in fields:
            return None
        fields["originator_id"] = originator_id
        fields["originator_version"] = version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", fields)
        return event, text
