-- FR7.2.2 "Budget exceeded during active job" (Budget.OverrunForecast): when the month's spend plus
-- what its active jobs still held first passed the limit, with the figures then (docs/domain.md).
ALTER TABLE budgets
    ADD COLUMN overrun_at          timestamptz,
    ADD COLUMN overrun_spent       numeric,
    ADD COLUMN overrun_reserved    numeric,
    ADD COLUMN overrun_limit       numeric,
    ADD COLUMN overrun_active_jobs integer;
