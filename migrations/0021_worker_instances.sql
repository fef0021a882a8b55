-- Several instances of each worker (docs/operations.md, "Running on several machines").
-- worker_instances: every running process of the control plane says it is alive (seen_at, each
-- second) and which decision domains it leads (the relay, a projection, provisioning, …: each a
-- PostgreSQL advisory lock held by its session, infra/leadership.py); /health lists them. A row
-- not seen for a few leases is an instance gone; instances remove their own row when they stop.
CREATE TABLE worker_instances (
    instance    text PRIMARY KEY,              -- PIPELINE_INSTANCE, else host:pid
    kind        text NOT NULL,                 -- relay | projections | handlers | notifications | web
    host        text NOT NULL,
    pid         integer NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz NOT NULL DEFAULT now(),
    leads       text[] NOT NULL DEFAULT '{}',  -- the domains whose lock this instance holds
    nats_ok     boolean NOT NULL DEFAULT true  -- its NATS connection is up
);

-- When the telemetry reactor last heard from each job's pod, for the provisioning leader's
-- watchdog (the two may run in different instances): written at most once a second per job.
CREATE TABLE pod_heartbeats (
    job_id    uuid PRIMARY KEY,
    heard_at  timestamptz NOT NULL
);
