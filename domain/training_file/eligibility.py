"""check_eligibility(): may a job be created from this training file (FR1.1.1)?"""

from __future__ import annotations

from enum import StrEnum

MIN_CONVERSATIONS = 50
VALIDATION_FILE_NOT_FOUND = "Validation file not found"
ENRICHMENT_COMPLETED = "completed"


class Refusal(StrEnum):
    """Each value is the exact message the spec asks for (FR1.1.1), except IN_USE and INVALID (ours)."""

    NOT_FOUND = "Training file not found"
    STORAGE_MISSING = "Storage file missing"
    NOT_ENRICHED = "Training file not enriched"
    INVALID = "Training file failed validation"
    INSUFFICIENT_CONVERSATIONS = "Insufficient conversations"
    IN_USE = "Training file is in use by an active job"


def check_eligibility(
    *, found: bool, stored: bool, enrichment_status: str, first_problem: str | None,
    conversation_count: int, in_use: bool,
) -> None:
    """Raises IneligibleTrainingFileError with the first refusal, checked in the order listed in Refusal.

    `first_problem` is the first ValidationReport problem's message, None when the file is valid.
    """
    if not found:
        raise IneligibleTrainingFileError(Refusal.NOT_FOUND)
    if not stored:
        raise IneligibleTrainingFileError(Refusal.STORAGE_MISSING)
    if enrichment_status != ENRICHMENT_COMPLETED:
        raise IneligibleTrainingFileError(Refusal.NOT_ENRICHED)
    if first_problem is not None:
        raise IneligibleTrainingFileError(Refusal.INVALID, first_problem)
    if conversation_count < MIN_CONVERSATIONS:
        raise IneligibleTrainingFileError(Refusal.INSUFFICIENT_CONVERSATIONS)
    if in_use:
        raise IneligibleTrainingFileError(Refusal.IN_USE)


def check_validation_file(*, first_problem: str | None, conversation_count: int) -> None:
    """May a catalogued file be a job's validation file (OpenAI's `validation_file`)? Valid and holding
    a conversation; unlike a training file it may be small and in use by other jobs."""
    if first_problem is not None:
        raise IneligibleValidationFileError(f"Validation file failed validation: {first_problem}")
    if conversation_count < 1:
        raise IneligibleValidationFileError("Validation file holds no conversations")


class IneligibleTrainingFileError(ValueError):
    """A job cannot be created from the training file; str() is the message to show."""

    def __init__(self, refusal: Refusal, detail: str | None = None) -> None:
        super().__init__(f"{refusal.value}: {detail}" if detail else refusal.value)
        self.refusal = refusal
        self.detail = detail


class IneligibleValidationFileError(ValueError):
    """The file named as a job's validation file cannot be one; str() is the message to show."""
