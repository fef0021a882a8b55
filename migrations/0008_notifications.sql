-- Notifications (FR8.2.1, FR7.2.2, FR1.2.2): who wants what, the team's channels, and one row per
-- delivery so that a redelivered event sends nothing again (docs/notifications.md).

-- Per user: where and what (the spec's preferences). No row: email only, every job event.
CREATE TABLE notification_preferences (
    user_name         text PRIMARY KEY,
    email             text,
    channels          text[] NOT NULL DEFAULT '{email}',   -- email, slack
    events            text[] NOT NULL,                     -- completed, failed, cancelled, …
    digest            text NOT NULL DEFAULT 'off' CHECK (digest IN ('off', 'daily')),
    slack_webhook_url text,                                -- a personal channel or DM; else the team's
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Per team: its Slack channel, and who gets budget alerts and limit-increase requests.
CREATE TABLE notification_team_settings (
    team              text PRIMARY KEY,
    slack_webhook_url text,                                -- else PIPELINE_SLACK_WEBHOOK_URL
    slack_channel     text,
    manager_emails    text[] NOT NULL DEFAULT '{}',
    finance_emails    text[] NOT NULL DEFAULT '{}',
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- One row per (event, channel, recipient): 'pending' before the send, then sent / skipped / failed.
-- `event_key` is '<originator id>:<version>': stable however often the relay republishes.
CREATE TABLE notification_deliveries (
    event_key  text NOT NULL,
    channel    text NOT NULL CHECK (channel IN ('email', 'slack', 'banner')),
    recipient  text NOT NULL,
    kind       text NOT NULL,
    subject    text NOT NULL,
    job_id     uuid,
    status     text NOT NULL CHECK (status IN ('pending', 'sent', 'skipped', 'failed')),
    attempts   integer NOT NULL DEFAULT 1,
    error      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_key, channel, recipient)
);
CREATE INDEX notification_deliveries_recent_idx ON notification_deliveries (created_at DESC);
CREATE INDEX notification_deliveries_open_idx ON notification_deliveries (status) WHERE status <> 'sent';

-- In-app banners (FR7.2.2: the 100 % budget alert); written with their delivery row.
CREATE TABLE notification_banners (
    event_key    text PRIMARY KEY,
    team         text NOT NULL,
    kind         text NOT NULL,
    message      text NOT NULL,
    link         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    dismissed_at timestamptz
);

-- Signed approve / deny links that were used: a link works once even before its expiry.
CREATE TABLE approval_tokens_used (
    token_sha256 text PRIMARY KEY,
    request_id   uuid NOT NULL,
    decision     text NOT NULL,
    used_at      timestamptz NOT NULL DEFAULT now()
);
