"""Every job and budget event has its own event-log sentence and a known category."""

from domain.aggregates.budget import Budget
from domain.aggregates.training_job import TrainingJob
from projections.event_messages import CATEGORIES, ERRORS, MESSAGES, METRICS, WARNINGS


def event_classes(aggregate: type) -> set[type]:
    return {value for name, value in vars(aggregate).items()
            if isinstance(value, type) and issubclass(value, aggregate.Event) and name != "Event"}


def test_every_job_and_budget_event_class_has_a_sentence() -> None:
    assert event_classes(TrainingJob) | event_classes(Budget) == set(MESSAGES)


def test_the_categories_are_disjoint_and_known() -> None:
    assert not (ERRORS & WARNINGS or ERRORS & METRICS or WARNINGS & METRICS)
    assert (ERRORS | WARNINGS | METRICS) <= set(MESSAGES)
    assert CATEGORIES == ("status", "metrics", "warning", "error")
