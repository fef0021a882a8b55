"""What an evaluation costs (docs/quality-validation.md, "Cost"): the pod time to score the base model
and the adapter on the held-out conversations and the suites, from the same per-pair timing the
training estimate uses (domain/cost_model), so a re-evaluation is costed and budget-checked like
any job.

- A forward pass is a third of a training step (the backward pass costs about twice the forward).
- The held-out split is 20 % of the training pairs; each is scored by both models.
- A multiple-choice question is scored as four continuations by both models; with its choices it
  is about a quarter of a training pair's tokens.
- A re-evaluation pod starts and loads the base model first: the recovery overhead of the cost
  model (RECOVERY_HOURS)."""

from __future__ import annotations

from decimal import Decimal

from domain.cost_model.coefficients import DEFAULT_COEFFICIENTS, Coefficients
from domain.cost_model.estimate import RECOVERY_HOURS, SECONDS_PER_HOUR, VARIANCE
from domain.gpu import GpuOption

FORWARD_SHARE = Decimal(1) / 3
HELD_OUT_SHARE = Decimal("0.2")
MODELS = 2
CHOICES = 4
QUESTION_SHARE = Decimal("0.25")
ALGORITHM = "evaluation-1"


def evaluation_hours(preset: str, training_pairs: int, questions: int,
                     coefficients: Coefficients = DEFAULT_COEFFICIENTS) -> Decimal:
    """Scoring time alone (the evaluation stage of a training job)."""
    per_pair = coefficients.timing(preset).seconds_per_pair * FORWARD_SHARE
    held_out = Decimal(training_pairs) * HELD_OUT_SHARE * MODELS * per_pair
    choices = Decimal(questions) * CHOICES * MODELS * per_pair * QUESTION_SHARE
    return (held_out + choices) / SECONDS_PER_HOUR


def reevaluation_estimate(preset: str, training_pairs: int, questions: int, gpu: GpuOption,
                          coefficients: Coefficients = DEFAULT_COEFFICIENTS) -> dict[str, Decimal]:
    """A re-evaluation job's duration and cost range (its pod's start and model load included)."""
    hours = RECOVERY_HOURS + evaluation_hours(preset, training_pairs, questions, coefficients)
    cost = hours * gpu.hourly_rate
    return {"duration_hours": hours, "cost_min": cost * (1 - VARIANCE), "cost_max": cost * (1 + VARIANCE)}
