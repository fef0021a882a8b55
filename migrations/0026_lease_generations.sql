-- Leaders that ride out a PostgreSQL restart (infra/leadership.py, docs/operations.md "Running on
-- several machines"): each take of a decision domain's advisory lock counts one generation. A leader
-- whose session ended (the server restarted) takes its domains again on a new session and goes on
-- only if the generation is still the one it took: nobody led the domain in between, so what it
-- holds in memory is still true. Otherwise it stops, for its supervisor to start it as a standby.
CREATE TABLE lease_generations (
    domain      text PRIMARY KEY,
    generation  bigint NOT NULL,
    holder      text NOT NULL,
    taken_at    timestamptz NOT NULL DEFAULT now()
);
