-- Jobs list and job detail (FR2.3.1, FR2.1.1, FR2.1.2): what the list filters, sorts and searches
-- on, and the stage timeline and interruptions of the detail page. Everything is folded from the
-- job's own events by projections/job_state.py. Rows projected before this migration get the
-- defaults: `pipeline projections rebuild jobs` fills them in.
ALTER TABLE jobs
    ADD COLUMN file_name                text NOT NULL DEFAULT '',
    ADD COLUMN description              text NOT NULL DEFAULT '',
    ADD COLUMN tags                     jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN client                   text,
    ADD COLUMN project                  text,
    ADD COLUMN notes                    jsonb NOT NULL DEFAULT '[]',    -- [{at, author, text}] in order
    -- Name (A), description and tags (B), notes (C); written with the row by the projection.
    ADD COLUMN search                   tsvector NOT NULL DEFAULT '',
    ADD COLUMN retry_of                 uuid,
    ADD COLUMN retry_number             integer NOT NULL DEFAULT 0,
    ADD COLUMN resumed_from             uuid,
    ADD COLUMN gpu_type                 text,
    ADD COLUMN hourly_rate              numeric,
    ADD COLUMN estimated_duration_hours numeric,
    ADD COLUMN attempt                  integer NOT NULL DEFAULT 0,
    -- Cost so far, exact (domain/cost_ledger.py): `cost` is the ledger's total at `cost_as_of`
    -- (the latest event that touched a pod); pods still running add `running_rate` per hour after it.
    ADD COLUMN current_pod              text,                           -- the current attempt's pod
    ADD COLUMN pods                     jsonb NOT NULL DEFAULT '[]',    -- PodLifetime per pod, in start order
    ADD COLUMN cost                     numeric NOT NULL DEFAULT 0,
    ADD COLUMN cost_as_of               timestamptz,
    ADD COLUMN running_rate             numeric NOT NULL DEFAULT 0,
    ADD COLUMN started_at               timestamptz,                    -- the first pod's start
    ADD COLUMN ended_at                 timestamptz,                    -- completed, failed or cancelled
    ADD COLUMN step                     integer NOT NULL DEFAULT 0,
    ADD COLUMN total_steps              integer NOT NULL DEFAULT 0,
    ADD COLUMN epoch                    double precision,
    ADD COLUMN loss                     double precision,
    ADD COLUMN validation_loss          double precision,
    ADD COLUMN final_loss               double precision,
    ADD COLUMN checkpoint_step          integer NOT NULL DEFAULT 0,
    ADD COLUMN interruptions            integer NOT NULL DEFAULT 0,
    ADD COLUMN downtime_seconds         numeric NOT NULL DEFAULT 0,
    ADD COLUMN failure_type             text,
    ADD COLUMN failure_message          text,
    ADD COLUMN progress_percent         numeric GENERATED ALWAYS AS (
        CASE WHEN status = 'completed' THEN 100
             WHEN total_steps > 0 THEN round(100.0 * LEAST(step, total_steps) / total_steps, 1)
             ELSE 0 END) STORED;

CREATE INDEX jobs_search_idx ON jobs USING gin (search);
CREATE INDEX jobs_tags_idx ON jobs USING gin (tags jsonb_path_ops);
CREATE INDEX jobs_created_by_idx ON jobs (created_by, created_at DESC);
CREATE INDEX jobs_retry_of_idx ON jobs (retry_of) WHERE retry_of IS NOT NULL;
CREATE INDEX jobs_resumed_from_idx ON jobs (resumed_from) WHERE resumed_from IS NOT NULL;

-- The stage timeline (FR2.1.2): one row per pod attempt and stage (provisioning, then the agent's
-- four stages), `outcome` once it ended: completed, interrupted, failed or cancelled.
CREATE TABLE job_stages (
    job_id            uuid NOT NULL,
    attempt           integer NOT NULL,
    stage             text NOT NULL,
    started_at        timestamptz NOT NULL,
    ended_at          timestamptz,
    outcome           text,
    estimated_seconds numeric,                    -- the stage's share of the job's estimate
    PRIMARY KEY (job_id, attempt, stage)
);

-- Interruptions (FR3.2.1) in order: where and why, the recovery, and when training resumed.
CREATE TABLE job_interruptions (
    job_id              uuid NOT NULL,
    number              integer NOT NULL,         -- 1, 2, … per job
    attempt             integer NOT NULL,
    step                integer NOT NULL,
    reason              text NOT NULL,
    at                  timestamptz NOT NULL,
    recovery_started_at timestamptz,
    recovery_attempt    integer,
    checkpoint_step     integer,                  -- the checkpoint the recovery resumes from
    resumed_at          timestamptz,
    downtime_seconds    numeric,                  -- from this interruption to the resumed training
    PRIMARY KEY (job_id, number)
);
