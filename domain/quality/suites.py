"""The three loaders: bytes in, a typed suite out, or SuiteFormatError with every problem (no I/O)."""

from __future__ import annotations

from typing import TypeVar

from domain.quality.ei import read_ei
from domain.quality.knowledge import read_knowledge
from domain.quality.model import EiSuite, KnowledgeSuite, Rubric
from domain.quality.problems import ProblemLog, SuiteFormatError
from domain.quality.rubric import read_rubric

T = TypeVar("T")


def load_knowledge_suite(data: bytes, name: str) -> KnowledgeSuite:
    """A multiple-choice suite or a client's domain probes (FR6.3.1, FR6.3.2). `name` is the file's name:
    it names the suite, and `.csv` means CSV (`.json`, `.jsonl`, `.ndjson` mean JSON; else the text tells)."""
    log = ProblemLog()
    return _checked(log, read_knowledge(data, name, log))


def load_ei_suite(data: bytes, name: str) -> EiSuite:
    """Emotional-intelligence scenarios (FR6.2.1), as JSON Lines or JSON; `name` names the suite."""
    log = ProblemLog()
    return _checked(log, read_ei(data, name, log))


def load_rubric(data: bytes) -> Rubric:
    """A brand-voice rubric (FR6.4.1, or a client's own of 5-15 characteristics, FR6.4.2), as JSON."""
    log = ProblemLog()
    return _checked(log, read_rubric(data, log))


def _checked(log: ProblemLog, suite: T | None) -> T:
    if log or suite is None:
        raise SuiteFormatError(tuple(log.kept), log.more)
    return suite
