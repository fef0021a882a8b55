"""What completed jobs measured of their training speed, for the cost model's refit (FR1.2.1 refinement,
domain/cost_model/refit.py): per job, the useful tokens its optimizer steps trained and the seconds they took
(the metric history, projections/metrics.py), with its preset and pair-epochs (the jobs read model and its
Created and Configured events in the event log). docs/cost-model.md, "Refit"."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from psycopg_pool import AsyncConnectionPool

from domain.cost_model import ThroughputSample
from projections.pool import rows

WINDOW_DAYS = 90  # FR1.2.1's accuracy window: recent jobs, on today's software and cards

# A step row's useful tokens are tokens_per_s × step_time_s (the agent divides one by the other). A job counts
# when every one of its steps has both figures (a history cut short would make it look faster, or shorter),
# when it trained from step 0 (a resumed job's pair-epochs overstate what its pods trained), and when it ran
# on the GPU being estimated: throughput is a property of the card, the same on spot and on-demand.
SAMPLES = """
WITH done AS (
    SELECT id, preset, total_steps FROM jobs
    WHERE status = 'completed' AND resumed_from IS NULL AND preset IS NOT NULL AND gpu_type = %(gpu_type)s
      AND total_steps > 0 AND ended_at > now() - make_interval(days => %(days)s)
), steps AS (
    SELECT m.job_id, sum(m.tokens_per_s * m.step_time_s) AS tokens, sum(m.step_time_s) AS seconds,
           count(*) AS measured
    FROM job_metrics m JOIN done ON done.id = m.job_id
    WHERE m.tokens_per_s IS NOT NULL AND m.step_time_s IS NOT NULL
    GROUP BY m.job_id
), pairs AS (
    SELECT DISTINCT ON (job_id, topic) job_id, topic, payload
    FROM event_log WHERE job_id IN (SELECT id FROM done)
      AND topic IN ('TrainingJob.Created', 'TrainingJob.Configured')
    ORDER BY job_id, topic, notification_id DESC
)
SELECT done.preset, steps.tokens, steps.seconds,
       (created.payload ->> 'pair_count')::numeric
       * (configured.payload -> 'hyperparameters' ->> 'num_train_epochs')::numeric AS pair_epochs
FROM done
JOIN steps ON steps.job_id = done.id AND steps.measured >= done.total_steps
JOIN pairs created ON created.job_id = done.id AND created.topic = 'TrainingJob.Created'
JOIN pairs configured ON configured.job_id = done.id AND configured.topic = 'TrainingJob.Configured'
WHERE steps.tokens > 0 AND steps.seconds > 0
ORDER BY done.id"""
# Changes whenever a job completes: the cache of the refit (web/job_history.py) is keyed on it.
COMPLETED = "SELECT count(*) AS jobs, max(ended_at) AS latest FROM jobs WHERE status = 'completed'"


async def samples(pool: AsyncConnectionPool, gpu_type: str, days: int = WINDOW_DAYS) -> list[ThroughputSample]:
    """One sample per completed job of the last `days` on `gpu_type` with a whole step history."""
    found = await rows(pool, SAMPLES, {"gpu_type": gpu_type, "days": days})
    return [ThroughputSample(r["preset"], int(r["pair_epochs"]), Decimal(str(r["tokens"])),
                             Decimal(str(r["seconds"]))) for r in found if r["pair_epochs"] and r["pair_epochs"] > 0]


async def completed_marker(pool: AsyncConnectionPool) -> tuple[int, datetime | None]:
    """(completed jobs, the latest completion): cheap, and different once another job completes."""
    found = (await rows(pool, COMPLETED))[0]
    return int(found["jobs"]), found["latest"]
