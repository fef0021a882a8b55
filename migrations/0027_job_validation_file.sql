-- The file a job validates on instead of a hold-out of its training file (the OpenAI-compatible API's
-- `validation_file`), as stored ({bucket, name, sha256, size}). Jobs created before have none: NULL
-- is what a rebuild gives them too.
ALTER TABLE jobs ADD COLUMN validation_file jsonb;
