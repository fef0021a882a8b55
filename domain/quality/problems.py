"""Problems found in an evaluation suite, kept up to a cap, and the error that carries them."""

from __future__ import annotations

from dataclasses import dataclass

MAX_PROBLEMS = 100


@dataclass(frozen=True)
class Problem:
    """One problem. `line` is the file's line (JSON Lines, CSV; None inside a JSON document), `field` the
    field's name (`answer`, `choices.C`) or, in a JSON document, its path (`questions[3].answer`)."""

    line: int | None
    field: str | None
    message: str
    column: int | None = None

    @property
    def place(self) -> str:
        """`line 4: answer`, `line 3, column 17`, `questions[3].answer`, or `file`."""
        if self.line is None:
            return self.field or "file"
        where = f"line {self.line}, column {self.column}" if self.column is not None else f"line {self.line}"
        return f"{where}: {self.field}" if self.field else where


class ProblemLog:
    """Keeps the first `limit` problems in file order and only counts the rest."""

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


class SuiteFormatError(ValueError):
    """An evaluation suite, domain-probe upload or rubric failed validation; carries every problem (up to
    MAX_PROBLEMS) and how many more were left out."""

    def __init__(self, problems: tuple[Problem, ...], more_problems: int = 0) -> None:
        first = problems[0].message if problems else "unknown problem"
        super().__init__(f"Suite format error: {first}")
        self.problems = problems
        self.more_problems = more_problems

    @property
    def problem_count(self) -> int:
        return len(self.problems) + self.more_problems
