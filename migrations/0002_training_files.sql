-- Training-file catalog read model: one row per distinct file content.
CREATE TABLE training_files (
    id                 uuid PRIMARY KEY,
    name               text NOT NULL,
    status             text NOT NULL,             -- active | invalid
    file               jsonb NOT NULL,            -- ArtifactRef: bucket, name, sha256, size
    stats              jsonb NOT NULL,
    problems           jsonb NOT NULL,
    problem_count      integer NOT NULL,
    conversation_count integer NOT NULL,
    pair_count         integer NOT NULL,
    avg_quality        numeric(4, 2),
    active_jobs        integer NOT NULL DEFAULT 0,
    registered_by      text NOT NULL,
    registered_at      timestamptz NOT NULL,
    version            bigint NOT NULL
);
CREATE INDEX training_files_name_idx ON training_files (lower(name));

-- Jobs list: what the create-and-start flow shows at once.
ALTER TABLE jobs ADD COLUMN preset text;
ALTER TABLE jobs ADD COLUMN gpu_tier text;
ALTER TABLE jobs ADD COLUMN estimated_cost_min numeric(12, 2);
ALTER TABLE jobs ADD COLUMN estimated_cost_max numeric(12, 2);
