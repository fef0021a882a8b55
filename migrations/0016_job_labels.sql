-- A job's labels (free key-value pairs: what the OpenAI-compatible API calls `metadata`), the suffix
-- of its adapter's model name and the base model it was asked for (web/openai_api/). Jobs created
-- before have none: the defaults are what a rebuild gives them too.
ALTER TABLE jobs
    ADD COLUMN labels     jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN suffix     text,
    ADD COLUMN base_model text;

CREATE INDEX jobs_labels_idx ON jobs USING gin (labels jsonb_path_ops);
