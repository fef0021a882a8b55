-- Quality validation (FR6.1, FR6.3; docs/quality-validation.md): each job's latest evaluation and
-- the delivery gate's outcome, folded from TrainingJob.Evaluated / EvaluationFailed /
-- DeliveryOverridden / SuitesAttached / EvaluationRequested / EvaluationProgressed by
-- projections/job_state.py. Jobs projected before this migration get them from
-- `pipeline projections rebuild jobs` (no job had an evaluation before it).
ALTER TABLE jobs
    ADD COLUMN quality_outcome        text,              -- pass | review | block; NULL: not evaluated
    ADD COLUMN quality_overridden     boolean NOT NULL DEFAULT false,  -- a manager released the block
    ADD COLUMN perplexity_baseline    double precision,
    ADD COLUMN perplexity_trained     double precision,
    ADD COLUMN perplexity_improvement numeric,           -- percent, FR6.1.1
    ADD COLUMN retention_percent      numeric,           -- knowledge retention, FR6.3.1 (whole percent)
    ADD COLUMN evaluation             jsonb,             -- {results, summary, attempt, evaluated_by, at}
    ADD COLUMN evaluation_failure     text,              -- why the results could not be read
    ADD COLUMN evaluation_progress    jsonb,             -- {part, done, total} while evaluating
    ADD COLUMN delivery_override      jsonb,             -- {actor, justification, outcome, at}
    ADD COLUMN suites                 jsonb NOT NULL DEFAULT '{"knowledge": null, "probes": []}',
    ADD COLUMN evaluates              uuid;              -- a re-evaluation: the job whose adapter it scores

CREATE INDEX jobs_quality_outcome_idx ON jobs (quality_outcome) WHERE quality_outcome IS NOT NULL;
CREATE INDEX jobs_evaluates_idx ON jobs (evaluates) WHERE evaluates IS NOT NULL;

-- Evaluation suites (FR6.3.1's shipped knowledge suite, FR6.3.2's client probes): one row per
-- distinct content, from ProbeSuite.Created (projections/suites.py).
CREATE TABLE probe_suites (
    id                  uuid PRIMARY KEY,
    name                text NOT NULL,
    kind                text NOT NULL,               -- knowledge (shipped) | probes (a client's upload)
    file                jsonb NOT NULL,              -- ArtifactRef in bucket `files`
    questions           integer NOT NULL,
    categories          jsonb NOT NULL,              -- [{name, questions, critical, threshold}] in file order
    registered_by       text NOT NULL,
    registered_at       timestamptz NOT NULL,
    version             bigint NOT NULL
);
CREATE INDEX probe_suites_registered_idx ON probe_suites (registered_at DESC);
