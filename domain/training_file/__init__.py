"""The training file: its format, its one validator and its statistics (docs/training-file-format.md)."""

from domain.training_file.eligibility import (
    MIN_CONVERSATIONS,
    VALIDATION_FILE_NOT_FOUND,
    IneligibleTrainingFileError,
    IneligibleValidationFileError,
    Refusal,
    check_eligibility,
    check_validation_file,
)
from domain.training_file.model import (
    FORMAT_VERSION,
    MAX_FILE_BYTES,
    MAX_PROBLEMS,
    OPENAI_CHAT_FORMAT,
    PIPELINE_FORMAT,
    QUALITY_DIMENSIONS,
    Conversation,
    Quality,
    TrainingFile,
    TrainingPair,
)
from domain.training_file.problems import DatasetFormatError, Problem, ValidationReport
from domain.training_file.stats import (
    HIGH_QUALITY,
    REVIEW,
    QualityAverages,
    Share,
    TrainingFileStats,
    quality_indicator,
    summarize,
)
from domain.training_file.validation import load, validate

__all__ = [
    "FORMAT_VERSION", "HIGH_QUALITY", "MAX_FILE_BYTES", "MAX_PROBLEMS", "MIN_CONVERSATIONS", "OPENAI_CHAT_FORMAT",
    "PIPELINE_FORMAT", "QUALITY_DIMENSIONS", "VALIDATION_FILE_NOT_FOUND",
    "REVIEW", "Conversation", "DatasetFormatError", "IneligibleTrainingFileError",
    "IneligibleValidationFileError", "Problem", "Quality",
    "QualityAverages", "Refusal", "Share", "TrainingFile", "TrainingFileStats", "TrainingPair", "ValidationReport",
    "check_eligibility", "check_validation_file", "load", "quality_indicator", "summarize", "validate",
]
