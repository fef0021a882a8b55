"""Problems found in a training file, collected into one bounded report."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.training_file.model import MAX_PROBLEMS, TrainingFile


@dataclass(frozen=True)
class Problem:
    """One problem; `place` is a JSON path (`conversations[3].training_pairs[0]`) or a line."""

    place: str
    message: str
    conversation_id: str | None = None
    conversation_number: int | None = None
    pair_number: int | None = None


@dataclass(frozen=True)
class ValidationReport:
    """The first MAX_PROBLEMS problems in file order, and how many more were left out."""

    problems: tuple[Problem, ...]
    more_problems: int = 0
    training_file: TrainingFile | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    @property
    def problem_count(self) -> int:
        return len(self.problems) + self.more_problems


class ProblemLog:
    """Keeps the first `limit` problems and only counts the rest, so a huge bad file stays cheap."""

    def __init__(self, limit: int = MAX_PROBLEMS) -> None:
        self.limit = limit
        self.kept: list[Problem] = []
        self.more = 0

    def add(self, problem: Problem) -> None:
        if len(self.kept) < self.limit:
            self.kept.append(problem)
        else:
            self.more += 1

    def __bool__(self) -> bool:
        return bool(self.kept)

    def report(self, training_file: TrainingFile | None = None) -> ValidationReport:
        return ValidationReport(tuple(self.kept), self.more, None if self.kept else training_file)


class DatasetFormatError(ValueError):
    """The training file failed validation (FR3.1.2); carries the whole report."""

    def __init__(self, report: ValidationReport) -> None:
        first = report.first_problem
        super().__init__(f"Dataset format error: {first.message if first else 'unknown problem'}")
        self.report = report
