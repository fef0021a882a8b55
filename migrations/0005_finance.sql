-- Finance read models (FR7.2.1, FR7.3.1, FR7.3.2, FR5.1.2, FR8.1.1). Money is exact `numeric`
-- (no scale): amounts are rounded to cents only when shown or exported (docs/read-models.md).

-- `budgets`: one row per Budget aggregate (a team's calendar month), `version` = last applied.
CREATE TABLE budgets (
    id            uuid PRIMARY KEY,               -- Budget.id_for(team, month)
    team          text NOT NULL,
    month         text NOT NULL,                  -- YYYY-MM in the team's time zone
    monthly_limit numeric NOT NULL,
    grace_percent numeric NOT NULL,
    spent         numeric NOT NULL DEFAULT 0,     -- charges: the Budget's `charged`
    reserved      numeric NOT NULL DEFAULT 0,     -- outstanding reservations of jobs not yet ended
    opened_at     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       bigint NOT NULL,
    UNIQUE (team, month)
);

-- Per job and budget: its reservation, what of it is still outstanding, its spend, the release.
CREATE TABLE budget_jobs (
    budget_id   uuid NOT NULL,
    job_id      uuid NOT NULL,
    reserved    numeric NOT NULL DEFAULT 0,
    outstanding numeric NOT NULL DEFAULT 0,
    spent       numeric NOT NULL DEFAULT 0,       -- the job's cumulative spend charged here
    released    numeric NOT NULL DEFAULT 0,
    overridden  boolean NOT NULL DEFAULT false,
    reserved_at timestamptz,
    released_at timestamptz,
    PRIMARY KEY (budget_id, job_id)
);
CREATE INDEX budget_jobs_job_idx ON budget_jobs (job_id);

-- Every charge with its own time: the daily accumulation is grouped by day in the team's time
-- zone when read, so the read model does not depend on a setting.
CREATE TABLE budget_spend (
    budget_id uuid NOT NULL,
    version   bigint NOT NULL,
    job_id    uuid NOT NULL,
    amount    numeric NOT NULL,
    job_total numeric NOT NULL,
    at        timestamptz NOT NULL,
    PRIMARY KEY (budget_id, version)
);

CREATE TABLE budget_thresholds (
    budget_id     uuid NOT NULL,
    percent       integer NOT NULL,
    spent         numeric NOT NULL,
    monthly_limit numeric NOT NULL,
    at            timestamptz NOT NULL,
    PRIMARY KEY (budget_id, percent)
);

-- Overrides, limit-increase requests and decisions, limit changes: who, why, when (FR7.2.2).
CREATE TABLE budget_decisions (
    budget_id     uuid NOT NULL,
    version       bigint NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('override', 'limit_increase_requested',
                      'limit_increase_approved', 'limit_increase_denied', 'limit_changed')),
    job_id        uuid,
    request_id    uuid,
    amount        numeric,                        -- override: the reservation let through
    over_by       numeric,                        -- override: committed beyond the limit
    old_limit     numeric,
    new_limit     numeric,
    actor         text NOT NULL,
    justification text NOT NULL,                  -- a decision's reason
    at            timestamptz NOT NULL,
    PRIMARY KEY (budget_id, version)
);

-- `job_costs`: per training job, its pod lifetimes and the cost ledger's split, exact.
CREATE TABLE job_costs (
    job_id         uuid PRIMARY KEY,
    name           text NOT NULL,
    status         text NOT NULL,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL,
    client         text,
    project        text,
    preset         text,
    gpu_tier       text,                          -- of the latest pod attempt
    gpu_type       text,
    attempt        integer NOT NULL DEFAULT 0,
    current_pod    text,
    pods           jsonb NOT NULL DEFAULT '[]',   -- PodLifetime per pod, in start order
    hourly_rates   numeric[] NOT NULL DEFAULT '{}',
    pod_seconds    numeric NOT NULL DEFAULT 0,
    useful_seconds numeric NOT NULL DEFAULT 0,
    lost_seconds   numeric NOT NULL DEFAULT 0,
    setup_seconds  numeric NOT NULL DEFAULT 0,
    useful_cost    numeric NOT NULL DEFAULT 0,
    lost_cost      numeric NOT NULL DEFAULT 0,
    setup_cost     numeric NOT NULL DEFAULT 0,
    total_cost     numeric NOT NULL DEFAULT 0,
    interruptions  integer NOT NULL DEFAULT 0,
    failure_type   text,
    final_loss     double precision,
    started_at     timestamptz,                   -- the first pod's start
    ended_at       timestamptz,                   -- completed, failed or cancelled
    as_of          timestamptz NOT NULL,          -- latest event time: running pods are costed up to it
    version        bigint NOT NULL
);

-- A job's cost with the budget month it is charged to (the month of its reservation); month and
-- team are NULL for a job that never started. Exports and analytics read this.
CREATE VIEW job_finance AS
SELECT c.*, b.team, b.month, bj.spent AS charged
FROM job_costs c
LEFT JOIN budget_jobs bj ON bj.job_id = c.job_id
LEFT JOIN budgets b ON b.id = bj.budget_id;
