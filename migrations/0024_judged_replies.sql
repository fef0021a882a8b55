-- Judged replies (FR6.2.1, FR6.2.2, FR6.4.1; docs/quality-validation.md): the headline figures of a job's
-- scored replies, folded from TrainingJob.Judged by projections/job_state.py (projections/job_quality.py),
-- and what judging cost (TrainingJob.JudgingCharged) in the jobs and finance read models. Jobs projected
-- before this migration get them from `pipeline projections rebuild jobs job_costs` (none was judged before).
ALTER TABLE jobs
    ADD COLUMN ei_improvement   numeric,               -- percent, FR6.2.1 (the model judge's, else people's)
    ADD COLUMN ei_regressions   integer,               -- FR6.2.2: scenarios whose trained reply scored lower
    ADD COLUMN brand_alignment  numeric,               -- percent, FR6.4.1
    ADD COLUMN judging_status   text,                  -- pending | judged (by the model judge); NULL: no replies
    ADD COLUMN judging_cost     numeric NOT NULL DEFAULT 0;

CREATE INDEX jobs_judging_pending_idx ON jobs (created_at) WHERE judging_status = 'pending';

-- The finance view picks the new column up (`c.*` is expanded when a view is created).
DROP VIEW job_finance;

ALTER TABLE job_costs
    ADD COLUMN judging_cost numeric NOT NULL DEFAULT 0;  -- the model judge's tokens × prices, part of total_cost

CREATE VIEW job_finance AS
SELECT c.*, b.team, b.month, bj.spent AS charged
FROM job_costs c
LEFT JOIN budget_jobs bj ON bj.job_id = c.job_id
LEFT JOIN budgets b ON b.id = bj.budget_id;
