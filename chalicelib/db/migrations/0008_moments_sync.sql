-- Conflict-free metadata editing: every video carries a vector clock, a
-- version (one step per accepted write) and its CRDT state (register stamps,
-- tag adds and tombstones; NULL until the first edit); category and featured
-- join the editable fields. Every operation is kept in video_operations,
-- which is also the audit trail of edits.
ALTER TABLE videos ADD COLUMN IF NOT EXISTS category text;
ALTER TABLE videos ADD COLUMN IF NOT EXISTS featured boolean NOT NULL DEFAULT false;
ALTER TABLE videos ADD COLUMN IF NOT EXISTS vector_clock jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE videos ADD COLUMN IF NOT EXISTS version integer NOT NULL DEFAULT 1;
ALTER TABLE videos ADD COLUMN IF NOT EXISTS crdt_state jsonb;

CREATE TABLE IF NOT EXISTS video_operations (
    seq          bigserial PRIMARY KEY,
    video_id     uuid NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    op_id        text NOT NULL,
    actor        text NOT NULL,
    user_id      uuid REFERENCES users(id) ON DELETE SET NULL,
    op_type      text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('set', 'add', 'remove')),
    field        text NOT NULL,
    value        jsonb,
    observed     jsonb NOT NULL DEFAULT '[]'::jsonb,
    vector_clock jsonb NOT NULL,
    counter      integer NOT NULL,     -- vector_clock[actor]: "seen" is clock[actor] >= counter
    version      integer NOT NULL,     -- the video's version once this operation's batch landed
    source       text NOT NULL CHECK (source IN ('sync', 'put')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (video_id, op_id)
);
CREATE INDEX IF NOT EXISTS video_operations_since ON video_operations (video_id, created_at, seq);
CREATE INDEX IF NOT EXISTS video_operations_actor ON video_operations (video_id, actor, counter);

-- Highlights: one generation run per video at a time (the clip state
-- machine's execution), the moments it found, and each moment's clip.
-- `analysis` keeps what refining needs without touching media again:
-- quiet intervals, keyframe times, frame rate, duration.
CREATE TABLE IF NOT EXISTS moment_runs (
    video_id       uuid PRIMARY KEY REFERENCES videos(id) ON DELETE CASCADE,
    execution_name text,
    execution_arn  text,
    status         text NOT NULL
                   CHECK (status IN ('queued', 'analysing', 'extracting', 'complete', 'failed')),
    error          text,
    analysis       jsonb,
    requested_by   uuid REFERENCES users(id) ON DELETE SET NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);

CREATE TABLE IF NOT EXISTS moments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    video_id        uuid NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    start_s         double precision NOT NULL CHECK (start_s >= 0),
    end_s           double precision NOT NULL,
    title           text NOT NULL,
    score           real NOT NULL,
    reason          text NOT NULL,
    features        jsonb NOT NULL DEFAULT '{}'::jsonb,
    refined         boolean NOT NULL DEFAULT false,
    clip_status     text NOT NULL DEFAULT 'pending'
                    CHECK (clip_status IN ('pending', 'extracting', 'ready', 'failed')),
    clip_key        text,
    clip_duration_s double precision,
    clip_size_bytes bigint,
    clip_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (end_s > start_s)
);
CREATE INDEX IF NOT EXISTS moments_video ON moments (video_id, start_s);
