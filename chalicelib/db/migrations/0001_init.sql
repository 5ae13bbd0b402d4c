-- Clipstream data model (reference/000 and 001).
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE users (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    google_sub  text UNIQUE,
    email       text NOT NULL UNIQUE,
    name        text NOT NULL DEFAULT '',
    avatar      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Refresh tokens rotate: each use replaces the token with a new one of the
-- same family; a token used twice revokes the whole family.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family_id   uuid NOT NULL,
    token_hash  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE streams (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    owner_id    uuid NOT NULL REFERENCES users(id),
    settings    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE stream_members (
    stream_id   uuid NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('admin', 'creator', 'viewer')),
    joined_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, user_id)
);
CREATE INDEX stream_members_user ON stream_members (user_id);

CREATE TABLE invites (
    code        text PRIMARY KEY,
    stream_id   uuid NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('creator', 'viewer')),
    created_by  uuid NOT NULL REFERENCES users(id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    usage_limit integer CHECK (usage_limit IS NULL OR usage_limit > 0),
    use_count   integer NOT NULL DEFAULT 0,
    revoked_at  timestamptz,
    CHECK (usage_limit IS NULL OR use_count <= usage_limit)
);
CREATE INDEX invites_stream ON invites (stream_id);

-- processing_index: 1 dedup, 2 transcode, 3 speech-to-text, 4 AI analysis,
-- 0 complete, -1 duplicate. status says whether the current stage is
-- queued, running, complete, duplicate or failed.
CREATE TABLE videos (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    stream_id        uuid NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    uploaded_by      uuid NOT NULL REFERENCES users(id),
    title            text NOT NULL,
    description      text NOT NULL DEFAULT '',
    tags             text[] NOT NULL DEFAULT '{}',
    filename         text NOT NULL,
    content_type     text NOT NULL,
    ext              text NOT NULL CHECK (ext IN ('mp4', 'avi', 'mov')),
    size_bytes       bigint NOT NULL CHECK (size_bytes >= 0),
    raw_key          text NOT NULL UNIQUE,
    processing_index smallint NOT NULL DEFAULT 1 CHECK (processing_index BETWEEN -1 AND 4),
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'complete', 'duplicate', 'failed')),
    failure_reason   text,
    failed_stage     text,
    duplicate_of     uuid REFERENCES videos(id) ON DELETE SET NULL,
    similarity       real,
    content_sha256   text,
    duration_s       double precision,
    width            integer,
    height           integer,
    fps              double precision,
    video_codec      text,
    audio_codec      text,
    bitrates         integer[] NOT NULL DEFAULT '{}',
    uploaded_at      timestamptz NOT NULL DEFAULT now(),
    processed_at     timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX videos_stream_uploaded ON videos (stream_id, uploaded_at DESC, id);
CREATE INDEX videos_sha256 ON videos (content_sha256) WHERE content_sha256 IS NOT NULL;
CREATE INDEX videos_uploader ON videos (uploaded_by);
CREATE INDEX videos_title_trgm ON videos USING gin (title gin_trgm_ops);

-- Every stored object of a video, so deletion and storage stats never guess.
CREATE TABLE video_assets (
    video_id     uuid NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    key          text NOT NULL,
    kind         text NOT NULL,
    size_bytes   bigint NOT NULL DEFAULT 0,
    content_type text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (video_id, key)
);

-- One row per started execution: (video, object etag) is the idempotency key
-- that makes a repeated S3 event start nothing new.
CREATE TABLE pipeline_executions (
    video_id        uuid NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    etag            text NOT NULL,
    execution_name  text NOT NULL UNIQUE,
    execution_arn   text,
    status          text NOT NULL DEFAULT 'starting',
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    PRIMARY KEY (video_id, etag)
);

-- Processing history: one row per stage attempt.
CREATE TABLE stage_runs (
    id             bigserial PRIMARY KEY,
    video_id       uuid NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    execution_name text,
    stage          text NOT NULL,
    status         text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    error          text
);
CREATE INDEX stage_runs_video ON stage_runs (video_id, started_at);
CREATE INDEX stage_runs_stage ON stage_runs (stage, status);

CREATE TABLE transcripts (
    video_id    uuid PRIMARY KEY REFERENCES videos(id) ON DELETE CASCADE,
    language    text,
    duration_s  double precision,
    text        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE transcript_segments (
    video_id  uuid NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    idx       integer NOT NULL,
    start_s   double precision NOT NULL,
    end_s     double precision NOT NULL,
    text      text NOT NULL,
    words     jsonb NOT NULL DEFAULT '[]'::jsonb,
    embedding vector(384),
    tsv       tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    PRIMARY KEY (video_id, idx)
);
CREATE INDEX transcript_segments_tsv ON transcript_segments USING gin (tsv);
CREATE INDEX transcript_segments_trgm ON transcript_segments USING gin (text gin_trgm_ops);
CREATE INDEX transcript_segments_embedding ON transcript_segments
    USING hnsw (embedding vector_cosine_ops);

CREATE TABLE video_embeddings (
    video_id   uuid PRIMARY KEY REFERENCES videos(id) ON DELETE CASCADE,
    model      text NOT NULL,
    dim        integer NOT NULL,
    embedding  vector(384) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX video_embeddings_hnsw ON video_embeddings USING hnsw (embedding vector_cosine_ops);

CREATE TABLE likes (
    video_id   uuid NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (video_id, user_id)
);

CREATE TABLE shares (
    code       text PRIMARY KEY,
    video_id   uuid NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    created_by uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX shares_video ON shares (video_id);
