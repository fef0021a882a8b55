-- FR7.2.2 "Daily Digest Option": whether the team's budget recipients (managers and finance) get
-- "Your daily training budget summary" each morning (handlers/notifications/digests.py).
ALTER TABLE notification_team_settings ADD COLUMN budget_digest boolean NOT NULL DEFAULT false;
