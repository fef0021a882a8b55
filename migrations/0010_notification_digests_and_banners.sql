-- Daily digests and per-user in-app banners (FR8.2.1, FR7.2.2, FR3.2.1; docs/notifications.md).

-- A digest line is a delivery too: 'sent' once it waits in notification_digest_lines.
ALTER TABLE notification_deliveries DROP CONSTRAINT notification_deliveries_channel_check;
ALTER TABLE notification_deliveries ADD CONSTRAINT notification_deliveries_channel_check
    CHECK (channel IN ('email', 'slack', 'banner', 'digest'));

-- A job event for a user in digest mode, waiting for their next daily digest. `digest_key` is the
-- digest that carried it ('digest:<day>:<user>'), set in the transaction that sends that digest.
CREATE TABLE notification_digest_lines (
    event_key   text NOT NULL,
    user_name   text NOT NULL,
    kind        text NOT NULL,
    headline    text NOT NULL,
    link        text NOT NULL,
    job_id      uuid,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    digest_key  text,
    PRIMARY KEY (event_key, user_name)
);
CREATE INDEX notification_digest_lines_waiting_idx ON notification_digest_lines (user_name, occurred_at)
    WHERE digest_key IS NULL;

-- Banners are a team's (user_name NULL: budget alerts) or one user's (their jobs' events).
-- `dismissed_at` retires a banner for everyone who sees it: its user dismissed it, or a later
-- banner about the same job superseded it. A team's banner is dismissed per person instead.
ALTER TABLE notification_banners
    ADD COLUMN user_name     text,
    ADD COLUMN level         text NOT NULL DEFAULT 'info' CHECK (level IN ('info', 'warning', 'error')),
    ADD COLUMN job_id        uuid,
    ADD COLUMN event_version bigint,
    ADD COLUMN dismissed_by  text,
    ADD COLUMN superseded_by text;
UPDATE notification_banners SET level = 'error' WHERE kind = 'budget_100';

CREATE TABLE notification_banner_dismissals (
    banner_key   text NOT NULL REFERENCES notification_banners (event_key) ON DELETE CASCADE,
    user_name    text NOT NULL,
    dismissed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (banner_key, user_name)
);

-- What every page asks (web/banners.py): a user's open banners and their team's, newest first.
CREATE INDEX notification_banners_user_open_idx ON notification_banners (user_name, created_at DESC)
    WHERE dismissed_at IS NULL AND user_name IS NOT NULL;
CREATE INDEX notification_banners_team_open_idx ON notification_banners (team, created_at DESC)
    WHERE dismissed_at IS NULL AND user_name IS NULL;
CREATE INDEX notification_banners_job_idx ON notification_banners (job_id, user_name) WHERE job_id IS NOT NULL;
