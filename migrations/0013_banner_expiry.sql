-- A banner that is shown only until a given time (FR1.2.2's "Budget Reset", shown on the first day
-- of a budget month): handlers/notifications/budget_reset.py. NULL: shown for BANNER_DAYS.
ALTER TABLE notification_banners ADD COLUMN expires_at timestamptz;
