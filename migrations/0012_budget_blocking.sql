-- FR7.2.1 Budget Controls, "Block new jobs when the budget is exceeded" (Budget.BlockingChanged):
-- whether the month refuses a job past its limit plus grace without a manager's override, and which
-- jobs started past it because it did not (Budget.OverLimitAllowed). docs/domain.md.
ALTER TABLE budgets ADD COLUMN block_new_jobs boolean NOT NULL DEFAULT true;
ALTER TABLE budget_jobs ADD COLUMN over_limit boolean NOT NULL DEFAULT false;
ALTER TABLE budget_decisions DROP CONSTRAINT budget_decisions_kind_check;
ALTER TABLE budget_decisions ADD CONSTRAINT budget_decisions_kind_check CHECK (kind IN ('override',
    'limit_increase_requested', 'limit_increase_approved', 'limit_increase_denied', 'limit_changed',
    'over_limit_allowed', 'blocking_on', 'blocking_off'));
