-- Configuration templates (FR5.2.2): one row per template (deleted ones kept, flagged), and which
-- jobs were started from each (their outcomes, costs and losses come from job_finance at read time).
CREATE TABLE templates (
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    description     text NOT NULL,
    preset          text NOT NULL,
    hyperparameters jsonb NOT NULL,
    overrides       jsonb NOT NULL,
    gpu_tier        text NOT NULL,
    visibility      text NOT NULL,             -- private | team
    tags            jsonb NOT NULL,
    created_by      text NOT NULL,
    source_job_id   uuid,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    deleted         boolean NOT NULL DEFAULT false,
    version         bigint NOT NULL
);
CREATE INDEX templates_name_idx ON templates (lower(name));

CREATE TABLE template_jobs (
    template_id uuid NOT NULL,
    job_id      uuid NOT NULL,
    used_by     text NOT NULL,
    used_at     timestamptz NOT NULL,
    PRIMARY KEY (template_id, job_id)
);
CREATE INDEX template_jobs_job_idx ON template_jobs (job_id);

-- Job sharing (FR8.1.2): each job's visibility once it was decided (no row: private), and every
-- share link issued (by id; the token itself is never stored) with its revocation.
CREATE TABLE job_sharing (
    id          uuid PRIMARY KEY,              -- the JobSharing aggregate
    job_id      uuid NOT NULL UNIQUE,
    owner       text NOT NULL,
    visibility  text NOT NULL,                 -- private | team | public
    changed_by  text NOT NULL,
    changed_at  timestamptz NOT NULL,
    shares      integer NOT NULL DEFAULT 0,    -- notices sent (email, Slack)
    version     bigint NOT NULL
);

CREATE TABLE share_links (
    link_id    uuid PRIMARY KEY,
    job_id     uuid NOT NULL,
    purpose    text NOT NULL,                  -- training-report | deployment-package
    shared_by  text NOT NULL,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_by text
);
CREATE INDEX share_links_job_idx ON share_links (job_id, issued_at);
