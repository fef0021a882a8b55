-- Event log read model (FR2.1.3): one row per TrainingJob or Budget event. `job_id` is the job
-- the event concerns (a job's own events, budget reservations, spend and releases); NULL for
-- team-level budget events, kept so the Budget aggregate's versions have no gaps.
CREATE TABLE event_log (
    originator_id      uuid NOT NULL,
    originator_version bigint NOT NULL,
    notification_id    bigint NOT NULL,
    job_id             uuid,
    topic              text NOT NULL,
    category           text NOT NULL CHECK (category IN ('status', 'metrics', 'warning', 'error')),
    message            text NOT NULL,
    actor              text,
    payload            jsonb NOT NULL,
    at                 timestamptz NOT NULL,
    PRIMARY KEY (originator_id, originator_version)
);
CREATE INDEX event_log_job_idx ON event_log (job_id, notification_id);

-- Metric history (FR2.1.1, FR4.2.1) written from the TELEMETRY stream, not the event store: one
-- row per job and training step; an evaluation at a step is merged into that step's row.
-- `attempt` is the pod attempt that wrote the row: a resumed attempt re-trains steps past its
-- checkpoint, and its figures replace the older attempt's.
CREATE TABLE job_metrics (
    job_id        uuid NOT NULL,
    step          integer NOT NULL,
    attempt       integer NOT NULL,
    epoch         double precision,
    loss          double precision,
    eval_loss     double precision,
    perplexity    double precision,
    learning_rate double precision,
    grad_norm     double precision,
    tokens_per_s  double precision,
    gpu_util      double precision,
    gpu_memory_gb double precision,
    at            timestamptz NOT NULL,
    PRIMARY KEY (job_id, step)
);
