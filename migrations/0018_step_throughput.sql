-- Issue #17: what each training step cost, beside its loss (the agent's `step` telemetry): the share of the
-- processed tokens that were real rather than padding, the step's wall time, and the peak GPU memory the pod's
-- process had allocated (torch.cuda.max_memory_allocated; gpu_memory_gb stays the card's memory in use).
ALTER TABLE job_metrics
    ADD COLUMN token_efficiency   double precision,
    ADD COLUMN step_time_s        double precision,
    ADD COLUMN gpu_peak_memory_gb double precision;
