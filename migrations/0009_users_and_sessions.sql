-- People who sign in (FR8.1.1): created with `pipeline users add`; roles member, manager, admin.
-- Passwords are scrypt hashes (pipeline/passwords.py); sessions and API tokens are stored as the
-- SHA-256 of a random secret, so a read of this table gives no one a way in (docs/web.md).
CREATE TABLE users (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    display_name  text NOT NULL,
    email         text,
    role          text NOT NULL CHECK (role IN ('member', 'manager', 'admin')),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);

CREATE TABLE web_sessions (
    token_sha256 bytea PRIMARY KEY,
    user_name    text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ip_address   text,
    user_agent   text
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_name);

CREATE TABLE api_tokens (
    token_sha256 bytea PRIMARY KEY,
    user_name    text NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    label        text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- Failed sign-ins per name, to slow down guessing (web/auth.py).
CREATE TABLE sign_in_failures (
    user_name text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    ip_address text
);
CREATE INDEX sign_in_failures_idx ON sign_in_failures (user_name, at DESC);
