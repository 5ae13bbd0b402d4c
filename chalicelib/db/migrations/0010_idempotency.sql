-- Idempotency records of the pipeline steps (powertools idempotency with a
-- Postgres persistence layer, chalicelib/idempotency.py). One row per
-- (stage, video, upload) key: INPROGRESS while a step runs, COMPLETED with its
-- output afterwards. in_progress_expiry (ms since the epoch) is the end of the
-- Lambda's time budget: past it, a step killed at its timeout may run again.
CREATE TABLE IF NOT EXISTS idempotency_records (
    id                  text PRIMARY KEY,
    status              text NOT NULL,
    expiration          bigint NOT NULL,
    in_progress_expiry  bigint,
    data                text,
    validation          text,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idempotency_records_expiration ON idempotency_records (expiration);
