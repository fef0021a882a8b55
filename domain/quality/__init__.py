"""Evaluation suites: their formats and one pure validator for each (docs/quality-suites.md)."""

from domain.quality.decoding import MAX_SUITE_BYTES
from domain.quality.model import (
    DEFAULT_THRESHOLDS,
    EI_CATEGORIES,
    EI_DIFFICULTIES,
    FORMAT_VERSION,
    KNOWLEDGE_DIFFICULTIES,
    LETTERS,
    MAX_CHARACTERISTICS,
    MAX_ITEMS,
    MIN_CHARACTERISTICS,
    Badge,
    Characteristic,
    EiSuite,
    KnowledgeSuite,
    Question,
    Rubric,
    RubricPrompt,
    Scenario,
    Thresholds,
)
from domain.quality.problems import MAX_PROBLEMS, Problem, SuiteFormatError
from domain.quality.suites import load_ei_suite, load_knowledge_suite, load_rubric

__all__ = [
    "DEFAULT_THRESHOLDS", "EI_CATEGORIES", "EI_DIFFICULTIES", "FORMAT_VERSION", "KNOWLEDGE_DIFFICULTIES", "LETTERS",
    "MAX_CHARACTERISTICS", "MAX_ITEMS", "MAX_PROBLEMS", "MAX_SUITE_BYTES", "MIN_CHARACTERISTICS", "Badge",
    "Characteristic", "EiSuite", "KnowledgeSuite", "Problem", "Question", "Rubric", "RubricPrompt", "Scenario",
    "SuiteFormatError", "Thresholds", "load_ei_suite", "load_knowledge_suite", "load_rubric",
]
