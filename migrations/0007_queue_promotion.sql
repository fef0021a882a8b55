-- FR2.3.2: a manager may move a queued job to the front (promoted jobs first, then FIFO);
-- FR3.1.3: a job whose provisioning window ended waits for its owner's choice.
ALTER TABLE jobs ADD COLUMN promoted_at timestamptz;
ALTER TABLE jobs ADD COLUMN awaiting_gpu_decision boolean NOT NULL DEFAULT false;
