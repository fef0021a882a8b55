-- FIFO queue order for the provisioning reactor and the queue tab (FR2.3.2).
ALTER TABLE jobs ADD COLUMN queued_at timestamptz;
CREATE INDEX jobs_queue_idx ON jobs (status, queued_at);
