-- Issue #16: the provider's own bill per pod beside our ledger (TrainingJob.BillingReconciled), and the
-- base model's download as its own part of the setup cost (TrainingJob.ModelDownloaded).
-- billed_pods: pod id -> what the provider billed for it (a decimal string); billed_cost: their sum, NULL
-- until any pod's bill has been read back.
DROP VIEW job_finance;

ALTER TABLE job_costs
    ADD COLUMN billed_pods      jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN billed_cost      numeric,
    ADD COLUMN download_seconds numeric NOT NULL DEFAULT 0,
    ADD COLUMN download_cost    numeric NOT NULL DEFAULT 0;

CREATE VIEW job_finance AS
SELECT c.*, b.team, b.month, bj.spent AS charged
FROM job_costs c
LEFT JOIN budget_jobs bj ON bj.job_id = c.job_id
LEFT JOIN budgets b ON b.id = bj.budget_id;
