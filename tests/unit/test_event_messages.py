"""Every job and budget event has its own event-log sentence and a known category."""

from domain.aggregates.budget import Budget
from domain.aggregates.training_job import TrainingJob
from projections.event_messages import CATEGORIES, ERRORS, MESSAGES, METRICS, WARNINGS


def event_classes(aggregate: type) -> set[type]:
    return {value for name, value in vars(aggregate).items()
            if isinstance(value, type) and issubclass(value, aggregate.Event) and name != "Event"}


def test_every_job_budget_sharing_and_template_event_class_has_a_sentence() -> None:
    from domain.aggregates.job_sharing import JobSharing
    from domain.aggregates.template import ConfigurationTemplate

    assert (event_classes(TrainingJob) | event_classes(Budget) | event_classes(JobSharing)
            | event_classes(ConfigurationTemplate)) == set(MESSAGES)


def test_the_categories_are_disjoint_and_known() -> None:
    assert not (ERRORS & WARNINGS or ERRORS & METRICS or WARNINGS & METRICS)
    assert set(MESSAGES) >= (ERRORS | WARNINGS | METRICS)
    assert CATEGORIES == ("status", "metrics", "warning", "error")


def test_the_actor_is_the_first_person_field_an_event_names() -> None:
    """`actor_of` reads only the person fields each class declares (found once per class): the same
    answer as asking every event for every field."""
    from projections.event_messages import ACTOR_FIELDS, actor_of
    from tests.unit.test_stored_form import budget_events, full_life_events

    events = full_life_events() + budget_events()
    for event in events:
        expected = next((getattr(event, name) for name in ACTOR_FIELDS if getattr(event, name, None)), None)
        assert actor_of(event) == expected, type(event).__qualname__
    assert {actor_of(e) for e in events} >= {"alice", "bob", "carol"}
