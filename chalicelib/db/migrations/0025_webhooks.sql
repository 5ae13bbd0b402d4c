-- Signed webhooks (chalicelib/webhooks.py): endpoints a stream admin registers,
-- the events the pipeline's state transitions emit, and each delivery of an event
-- to an endpoint with its attempts.
--
-- An event is written in the same transaction as the transition it reports, and
-- UNIQUE (type, subject_id, transition_key) makes a retried or redriven step emit
-- it once: the key is the execution that made the transition ('' for transitions
-- a subject makes once, such as its deletion). Events name their subject by id
-- only (no foreign key), so video.deleted outlives the video.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    stream_id   uuid NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    url         text NOT NULL,
    events      text[] NOT NULL CHECK (cardinality(events) > 0),
    secret      text NOT NULL,           -- the HMAC key: shown once, at creation; never read back by the API
    created_by  uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_stream ON webhook_endpoints (stream_id, created_at);

CREATE TABLE IF NOT EXISTS webhook_events (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),   -- the idempotency id receivers see
    stream_id       uuid NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    type            text NOT NULL,
    subject_id      uuid NOT NULL,
    transition_key  text NOT NULL DEFAULT '',
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (type, subject_id, transition_key)
);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id      uuid NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
    endpoint_id   uuid NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    replay_of     uuid REFERENCES webhook_deliveries(id) ON DELETE SET NULL,
    execution_arn text,                  -- the delivery machine's execution (NULL: not started yet)
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC);
CREATE INDEX IF NOT EXISTS webhook_deliveries_unstarted ON webhook_deliveries (created_at)
    WHERE execution_arn IS NULL AND status = 'pending';

CREATE TABLE IF NOT EXISTS webhook_attempts (
    id            bigserial PRIMARY KEY,
    delivery_id   uuid NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempted_at  timestamptz NOT NULL DEFAULT now(),
    status_code   integer,               -- NULL: no HTTP answer (refused, timed out, connection failed)
    error         text,
    duration_ms   integer NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
