-- Views and analytics, reports and moderation, the audit log, rate limits (issue 12, part B).

-- One row per counted view: a viewer counts once per video per window
-- (chalicelib.api.analytics.VIEW_WINDOW); the window bucket in the key makes
-- "new view or progress of the current one" a single INSERT ... ON CONFLICT.
CREATE TABLE IF NOT EXISTS video_views (
    video_id      uuid NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    window_start  timestamptz NOT NULL,
    watch_seconds double precision NOT NULL DEFAULT 0 CHECK (watch_seconds >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (video_id, user_id, window_start)
);
CREATE INDEX IF NOT EXISTS video_views_video_time ON video_views (video_id, created_at);
CREATE INDEX IF NOT EXISTS video_views_user ON video_views (user_id, created_at);

-- Moderation: a hidden video is gone for everyone but its stream's admins.
ALTER TABLE videos ADD COLUMN IF NOT EXISTS hidden_at timestamptz;
ALTER TABLE videos ADD COLUMN IF NOT EXISTS hidden_by uuid REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE videos ADD COLUMN IF NOT EXISTS hidden_reason text;

CREATE TABLE IF NOT EXISTS content_reports (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    video_id    uuid NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    reporter_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reason      text NOT NULL CHECK (reason IN ('spam', 'harassment', 'hate', 'violence', 'sexual',
                                                'copyright', 'cheating', 'other')),
    details     text NOT NULL DEFAULT '' CHECK (length(details) <= 1000),
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'resolved', 'dismissed')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolved_by uuid REFERENCES users(id) ON DELETE SET NULL,
    resolution  text,
    note        text NOT NULL DEFAULT ''
);
-- One open report per reporter per video (a second one is a 409, not a duplicate row).
CREATE UNIQUE INDEX IF NOT EXISTS content_reports_one_open
    ON content_reports (video_id, reporter_id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS content_reports_queue ON content_reports (status, created_at, id);

-- A banned user is no member and cannot join again through invites.
CREATE TABLE IF NOT EXISTS stream_bans (
    stream_id  uuid NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    banned_by  uuid REFERENCES users(id) ON DELETE SET NULL,
    reason     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, user_id)
);

-- Every admin action: who did what to which target, when. Targets are kept as
-- text and streams without a foreign key, so entries outlive what they name.
CREATE TABLE IF NOT EXISTS audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    uuid REFERENCES users(id) ON DELETE SET NULL,
    actor_email text NOT NULL,
    action      text NOT NULL,
    target_type text NOT NULL,
    target_id   text NOT NULL,
    stream_id   uuid,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log (action, at DESC);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor_id, at DESC);
CREATE INDEX IF NOT EXISTS audit_log_target ON audit_log (target_id, at DESC);
CREATE INDEX IF NOT EXISTS audit_log_stream ON audit_log (stream_id, at DESC);

-- Rate limit counters shared by every API instance. UNLOGGED: losing counts
-- in a crash only forgives a minute of requests, and writes skip the WAL.
-- One row per (route group, caller): the current and the previous window.
CREATE UNLOGGED TABLE IF NOT EXISTS rate_limit_counters (
    bucket    text PRIMARY KEY,
    window_s  integer NOT NULL,
    window_no bigint NOT NULL,
    hits      integer NOT NULL,
    prev_hits integer NOT NULL DEFAULT 0
);

-- Counting one request is this one call (chalicelib.ratelimit): PL/pgSQL keeps
-- the upsert's plan for the session, so no client-side PREPARE is needed (which
-- would pin sessions behind RDS Proxy or PgBouncer). Sliding-window counter: the
-- current window's hits, and the previous window's to be weighted by the caller.
CREATE OR REPLACE FUNCTION rate_limit_hit(p_bucket text, p_window integer,
    OUT hits integer, OUT prev_hits integer, OUT elapsed double precision)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rate_limit_counters AS c (bucket, window_s, window_no, hits, prev_hits)
    VALUES (p_bucket, p_window, floor(extract(epoch FROM now()) / p_window)::bigint, 1, 0)
    ON CONFLICT (bucket) DO UPDATE SET
        prev_hits = CASE WHEN c.window_no = EXCLUDED.window_no THEN c.prev_hits
                         WHEN c.window_no = EXCLUDED.window_no - 1 THEN c.hits ELSE 0 END,
        hits = CASE WHEN c.window_no = EXCLUDED.window_no THEN c.hits + 1 ELSE 1 END,
        window_s = EXCLUDED.window_s,
        window_no = EXCLUDED.window_no
    RETURNING c.hits, c.prev_hits, extract(epoch FROM now())::float8 - c.window_no * c.window_s
    INTO hits, prev_hits, elapsed;
END $$;
