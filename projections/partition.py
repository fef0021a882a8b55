"""One share of a replay's aggregates: which projections read which topic (`Plan`), the store read
a page at a time (`pages`), and the rows a share's events make (`Partition`), each event checked as
`process_batch` checks it live (next → applied, at or below → skipped, ahead → the store lost one)
and decoded once for every read model that takes it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, Notification

from projections.base import Projection, Rebuilder, Rows
from projections.decoding import ReplayDecoder

END = 2**63 - 1  # the largest notification id

Row = tuple[int, int, int, str, bytes]
"""A stored event as read: (notification id, aggregate id as an int, version, topic, state). The
id as an int: a UUID costs several times more to pickle, hash and compare."""


@dataclass
class Plan:
    """Which projections read which topic of one application, and up to where; what each was given
    and its position (the largest notification id given, as `process_batch` writes it)."""

    projections: list[Projection]
    stops: list[int]
    routes: dict[str, list[int]]  # topic → the projections (by index) that read it
    filter: list[str]  # the topics to read (none: all)
    given: list[int]
    positions: list[int]

    @classmethod
    def of(cls, projections: list[Projection], application: str, until: Mapping[tuple[str, str], int],
           every_topic: bool) -> Plan:
        routes: dict[str, list[int]] = {}
        for index, projection in enumerate(projections):
            for topic in projection.topics:
                routes.setdefault(topic, []).append(index)
        return cls(projections, [until.get((p.name, application), END) for p in projections], routes,
                   [] if every_topic else sorted(routes), [0] * len(projections), [0] * len(projections))

    @property
    def stop(self) -> int:
        return max(self.stops)

    def add(self, given: Sequence[int], positions: Sequence[int]) -> None:
        """Adds a partition's figures."""
        self.given = [a + b for a, b in zip(self.given, given, strict=True)]
        self.positions = [max(a, b) for a, b in zip(self.positions, positions, strict=True)]


def pages(app: Application, plan: Plan, page: int) -> Iterator[Sequence[Notification]]:
    start = 1
    while batch := app.recorder.select_notifications(start, page, stop=plan.stop, topics=plan.filter):
        yield batch
        start = batch[-1].id + 1


def rows(batch: Sequence[Notification], plan: Plan) -> list[Row]:
    """The notifications of the topics replayed, as rows."""
    return [(n.id, n.originator_id.int, n.originator_version, n.topic, n.state)
            for n in batch if n.topic in plan.routes]


@dataclass
class Applied:
    """An aggregate's id and the version each projection has of it."""

    id: UUID
    versions: list[int]


class Partition:
    """Builds the rows of a share of the aggregates: each event checked as `process_batch` checks
    it, decoded once (projections/decoding.py) and fed to the rebuilder of every projection that
    takes it, with its payload's JSON text to those that ask (`takes_payloads`)."""

    def __init__(self, plan: Plan, mapper: Mapper) -> None:
        self.plan = plan
        self.decoder = ReplayDecoder(mapper)
        self.rebuilders: list[Rebuilder] = [p.rebuilder() for p in plan.projections]
        self.with_payloads = [rebuilder.takes_payloads for rebuilder in self.rebuilders]
        self.aggregates: dict[int, Applied] = {}
        self.given = [0] * len(plan.projections)
        self.positions = [0] * len(plan.projections)

    def feed(self, rows: Sequence[Row]) -> list[Rows]:
        due: list[list[tuple[Any, ...]]] = [[] for _ in self.rebuilders]
        routes, stops, given, positions = self.plan.routes, self.plan.stops, self.given, self.positions
        decode, with_payloads = self.decoder.decode, self.with_payloads
        for notification_id, key, version, topic, state in rows:  # the hot loop: kept flat
            aggregate = self.aggregates.get(key)
            if aggregate is None:
                aggregate = self.aggregates[key] = Applied(UUID(int=key), [0] * len(stops))
            takers = []
            for index in routes[topic]:
                if notification_id > stops[index]:
                    continue
                given[index] += 1
                positions[index] = notification_id  # ascending: the largest so far
                expected = aggregate.versions[index] + 1
                if version == expected:
                    aggregate.versions[index] = version
                    takers.append(index)
                elif version > expected:
                    name = self.plan.projections[index].name
                    raise RuntimeError(f"{name}: replay stopped at notification {notification_id}:"
                                       f" {aggregate.id} v{version} before v{expected}")
            if takers:  # else a duplicate for all: skipped, as live
                event, payload = decode(aggregate.id, version, topic, state)
                for index in takers:
                    due[index].append((notification_id, event, payload) if with_payloads[index] else
                                      (notification_id, event))
        for rebuilder, items in zip(self.rebuilders, due, strict=True):
            if items:
                rebuilder.feed(items)
        return self.take(final=False)

    def take(self, final: bool) -> list[Rows]:
        return [rows for rebuilder in self.rebuilders for rows in rebuilder.take(final)]
