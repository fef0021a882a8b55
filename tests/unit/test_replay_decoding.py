"""The replay's decoder (projections/decoding.py) gives what the mapper and `payload_json` give, for
every event class and for the values that must take the long road."""

import json
import math
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from domain.applications import Pipeline
from domain.job_status import JobStatus
from projections.decoding import ReplayDecoder
from projections.json import payload_json
from tests.factories import T0, configured_job, new_job
from tests.unit.test_stored_form import budget_events, full_life_events


@pytest.fixture(scope="module")
def app() -> Pipeline:
    return Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def decoded(app: Pipeline, event) -> tuple[object, str | None]:
    stored = app.mapper.to_stored_event(event)
    return ReplayDecoder(app.mapper).decode(stored.originator_id, stored.originator_version, stored.topic,
                                            stored.state)


def same_json(a: str, b: str) -> bool:
    """Equal as jsonb would hold them: the same values, whatever the spacing and key order."""
    return json.loads(a) == json.loads(b)


def edge_events() -> list:
    """Values that test the quick road's limits."""
    job = configured_job()
    job.add_note('quote " backslash \\ tab \t newline \n {"_type_":"datetime_iso","_data_":"x"} NaN ünïcødé ✓',
                 "alice", T0)
    job.rename("Infinity and beyond", T0)
    job.queue(T0)
    attempt = job.start_provisioning("spot", T0)
    job.pod_started("pod-1", attempt, Decimal("2.49"), T0)
    job.change_stage(JobStatus.TRAINING, attempt, T0)
    job.record_progress(1, 10, 0.1, float("nan"), attempt, T0 + timedelta(seconds=1))  # a diverged loss
    job.record_progress(2, 10, 0.2, float("inf"), attempt, T0 + timedelta(seconds=2))
    job.record_progress(3, 10, 0.3, None, attempt, T0 + timedelta(seconds=3))
    job.record_progress(4, 10, 0.4, 1e-07, attempt, T0)  # `at` may equal another time in the event
    events = job.collect_events()
    other = new_job()
    other.update_metadata(description="tags and a client", tags=["alpha", "beta-2"], client="Ačme", project=None, at=T0)
    return events + other.collect_events()


CASES = full_life_events() + budget_events() + edge_events()


@pytest.mark.parametrize("event", CASES, ids=lambda e: type(e).__qualname__)
def test_the_replay_decoder_gives_the_mappers_event_and_the_logs_payload(app: Pipeline, event) -> None:
    expected = app.mapper.to_domain_event(app.mapper.to_stored_event(event))
    got, payload = decoded(app, event)
    assert type(got) is type(expected)
    assert set(vars(got)) == set(vars(expected))
    for name, value in vars(expected).items():  # NaN is not equal to itself: compared as text
        assert type(vars(got)[name]) is type(value), name
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(vars(got)[name])
        else:
            assert vars(got)[name] == value, name
    if payload is not None:
        assert same_json(payload, payload_json(expected))


def test_most_events_take_the_quick_road_and_the_others_the_mappers(app: Pipeline) -> None:
    """The quick road is taken for what the store is mostly made of (progress, spend), and refused
    for value objects, nested marked values (the hyperparameters), non-finite floats and text that
    looks like a marked value."""
    quick = {type(e).__qualname__ for e in CASES if decoded(app, e)[1] is not None}
    assert {"TrainingJob.ProgressRecorded", "TrainingJob.StageChanged", "Budget.SpendRecorded",
            "Budget.Reserved", "TrainingJob.PodStarted"} <= quick
    long_road = [e for e in CASES if decoded(app, e)[1] is None]
    assert {type(e).__qualname__ for e in long_road} >= {"TrainingJob.CheckpointSaved", "TrainingJob.Completed",
                                                          "TrainingJob.Configured", "TrainingJob.NoteAdded",
                                                          "TrainingJob.Renamed"}
    losses = [e.loss for e in long_road if type(e).__qualname__ == "TrainingJob.ProgressRecorded"]
    assert len(losses) == 2 and all(not math.isfinite(loss) for loss in losses)


def test_ids_in_a_payload_read_as_the_log_writes_them(app: Pipeline) -> None:
    """The store keeps an id as hex; the log's payload as the usual hyphenated text."""
    spend = next(e for e in budget_events() if type(e).__qualname__ == "Budget.SpendRecorded")
    event, payload = decoded(app, spend)
    assert payload is not None and json.loads(payload)["job_id"] == str(spend.job_id)
    assert event.job_id == spend.job_id and isinstance(event.job_id, uuid.UUID)


def test_a_store_that_is_not_the_stock_json_takes_the_mappers_road() -> None:
    app = Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo",
                        "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"})
    event = budget_events()[0]
    assert ReplayDecoder(app.mapper).quick is False
    got, payload = decoded(app, event)
    assert got == event and payload is None


def test_a_replay_makes_young_collections_rarer_and_puts_the_threshold_back() -> None:
    import gc

    from projections.base import rarer_collections

    before = gc.get_threshold()
    with rarer_collections():
        assert gc.get_threshold() == (max(50_000, before[0]), *before[1:])
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), rarer_collections():
        raise RuntimeError("a replay that fails")
    assert gc.get_threshold() == before


def test_a_transcoding_that_reads_a_marked_value_otherwise_takes_the_mappers_road() -> None:
    from datetime import datetime

    from eventsourcing.persistence import Transcoding

    class LocalTimes(Transcoding):  # an application that reads its times its own way
        type = datetime
        name = "datetime_iso"

        def encode(self, obj: datetime) -> str:
            return obj.isoformat()

        def decode(self, data: str) -> datetime:
            return datetime.fromisoformat(data).replace(tzinfo=None)

    app = Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    assert ReplayDecoder(app.mapper).quick is True
    app.mapper.transcoder.register(LocalTimes())
    assert ReplayDecoder(app.mapper).quick is False


def test_hand_made_or_damaged_states_read_as_the_mapper_reads_them(app: Pipeline) -> None:
    """Rows the transcoder never writes (a hand-made fix, a damaged copy): the payload follows the
    value read back, and what cannot be read is the mapper's error, naming the event."""
    from eventsourcing.persistence import MapperDeserialisationError

    decoder = ReplayDecoder(app.mapper)
    job = uuid.uuid4()
    zulu = b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00Z"},"step":1,"total_steps":2,' \
           b'"epoch":0.5,"loss":1e400,"at":{"_type_":"datetime_iso","_data_":"2026-01-01T00:00:00Z"}}'
    event, payload = decoder.decode(job, 7, "TrainingJob.ProgressRecorded", zulu)
    assert payload is None and math.isinf(event.loss)  # too large for a float: the long road
    fixed = zulu.replace(b"1e400", b"0.5")
    event, payload = decoder.decode(job, 7, "TrainingJob.ProgressRecorded", fixed)
    assert same_json(payload, payload_json(event)) and json.loads(payload)["at"] == "2026-01-01T00:00:00+00:00"
    for damaged in (b'{"step":1', b'\xff{}', b'{"at":{"_type_":"datetime_iso","_data_":"not a time"}}'):
        with pytest.raises(MapperDeserialisationError, match="TrainingJob.ProgressRecorded"):
            decoder.decode(job, 7, "TrainingJob.ProgressRecorded", damaged)
