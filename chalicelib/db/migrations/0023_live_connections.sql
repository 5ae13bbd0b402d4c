-- Live updates over WebSocket (chalicelib/live.py): each open connection of a
-- signed-in user, and the topics ('stream:<id>', 'video:<id>') it subscribed to.
-- Publishing looks subscribers up by topic (one indexed query); a connection
-- API Gateway reports gone is deleted with its subscriptions.
CREATE TABLE IF NOT EXISTS live_connections (
    connection_id text PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    connected_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS live_connections_user ON live_connections (user_id);

CREATE TABLE IF NOT EXISTS live_subscriptions (
    connection_id text NOT NULL REFERENCES live_connections(connection_id) ON DELETE CASCADE,
    topic         text NOT NULL,
    stream_id     uuid NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, topic)
);
CREATE INDEX IF NOT EXISTS live_subscriptions_topic ON live_subscriptions (topic);
