"""FR4.1.2 adapter storage: where each completed job's adapter lives, its size, when it was
uploaded, how often it was downloaded (the adapter or the deployment package), and whether it was
deleted — read from the event log read model (the jobs' Completed, AdapterDeleted and
MetricsExported events), so it needs no table of its own."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from projections.pool import rows

DOWNLOADS = ("adapter", "deployment-package")
ADAPTERS = """
SELECT c.job_id, j.name, j.created_by, c.payload->'adapter'->>'bucket' AS bucket,
       c.payload->'adapter'->>'name' AS object, (c.payload->'adapter'->>'size')::bigint AS size,
       c.at AS uploaded_at, d.actor AS deleted_by, d.payload->>'reason' AS deleted_reason, d.at AS deleted_at,
       (SELECT count(*) FROM event_log x WHERE x.job_id = c.job_id AND x.topic = 'TrainingJob.MetricsExported'
          AND x.payload->>'kind' = ANY(%(downloads)s)) AS downloads
FROM event_log c JOIN jobs j ON j.id = c.job_id
LEFT JOIN event_log d ON d.job_id = c.job_id AND d.topic = 'TrainingJob.AdapterDeleted'
WHERE c.topic = 'TrainingJob.Completed' AND (%(job)s::uuid IS NULL OR c.job_id = %(job)s)
ORDER BY d.at IS NOT NULL, (c.payload->'adapter'->>'size')::bigint DESC, c.at, c.job_id"""


async def adapters(pool: AsyncConnectionPool, job_id: UUID | None = None) -> list[dict[str, Any]]:
    """Stored adapters first, largest first; then the deleted ones."""
    return await rows(pool, ADAPTERS, {"job": job_id, "downloads": list(DOWNLOADS)})
