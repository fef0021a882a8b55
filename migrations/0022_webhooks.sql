-- Outgoing webhooks per team (#20; docs/notifications.md, "Webhooks"): the endpoints managers register,
-- an outbox of deliveries (one per event and endpoint) and every attempt to make one.

-- An endpoint's signing secret is sealed (AES-256-GCM under PIPELINE_WEBHOOK_KEY or the state
-- directory's webhook.key; infra/secretbox.py): it is used to sign, shown once when made, never again.
-- A rotated-out secret keeps signing alongside the new one until `previous_until` (receivers switch over).
CREATE TABLE webhook_endpoints (
    id               uuid PRIMARY KEY,
    team             text NOT NULL,
    url              text NOT NULL,
    description      text NOT NULL DEFAULT '',
    events           text[] NOT NULL,
    secret_sealed    text NOT NULL,
    previous_sealed  text,
    previous_until   timestamptz,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    rotated_at       timestamptz,
    deleted_at       timestamptz
);
CREATE INDEX webhook_endpoints_team_idx ON webhook_endpoints (team) WHERE deleted_at IS NULL;

-- One row per (endpoint, domain event): the body is fixed when the event is taken in, so every attempt
-- posts the same bytes under the same `event_id` (the webhook-id header). 'pending' rows are tried at
-- `next_attempt_at`; 'delivered' once a 2xx came back; 'failed' once the attempts ran out (or the
-- endpoint was deleted). A redelivery by hand makes it pending again.
CREATE TABLE webhook_deliveries (
    id               bigserial PRIMARY KEY,
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id),
    event_key        text NOT NULL,        -- '<originator id>:<version>'
    event_id         text NOT NULL,
    event_type       text NOT NULL,
    job_id           uuid,
    body             text NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_error       text,
    redeliver_by     text,                  -- who asked for the pending redelivery (NULL: automatic)
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, event_key)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC);

-- The delivery log: every attempt, with the receiver's answer (or why there was none).
CREATE TABLE webhook_attempts (
    delivery_id  bigint NOT NULL REFERENCES webhook_deliveries (id),
    number       integer NOT NULL,
    at           timestamptz NOT NULL,
    duration_ms  integer NOT NULL,
    status_code  integer,
    error        text,
    requested_by text,                      -- a redelivery by hand: who asked
    PRIMARY KEY (delivery_id, number)
);
