-- Why and by whom a job was cancelled, with the canceller's notes ({"reason", "notes", "actor"}),
-- for the job page's overview. Jobs cancelled before this migration get it from
-- `pipeline projections rebuild jobs` (until then the overview shows the cancellation without them).
ALTER TABLE jobs ADD COLUMN cancellation jsonb;
