-- Where the relay has published up to, per event-sourced application.
CREATE TABLE relay_positions (
    application     text PRIMARY KEY,
    notification_id bigint NOT NULL
);

-- Highest notification id each projection has applied, written with its rows (one transaction).
CREATE TABLE projection_positions (
    projection      text NOT NULL,
    application     text NOT NULL,
    notification_id bigint NOT NULL,
    PRIMARY KEY (projection, application)
);

-- Jobs read model: one row per TrainingJob, `version` = last applied aggregate version.
CREATE TABLE jobs (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    status        text NOT NULL,
    training_file jsonb NOT NULL,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       bigint NOT NULL
);
CREATE INDEX jobs_created_at_idx ON jobs (created_at DESC);

-- Messages a consumer gave up on after its bounded retries (also published to deadletter.*).
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    consumer    text NOT NULL,
    subject     text NOT NULL,
    msg_id      text,
    deliveries  integer NOT NULL,
    error       text NOT NULL,
    payload     bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
