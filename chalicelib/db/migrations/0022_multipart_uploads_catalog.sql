-- Resumable (multipart) uploads of raw videos: which S3 upload belongs to which
-- video, and how it is cut into parts. The API refuses an upload id that is not
-- the video's own (another user's or another video's); at most one open upload
-- per video. Storage holds the parts; video deletion aborts the open upload.
CREATE TABLE IF NOT EXISTS multipart_uploads (
    upload_id   text PRIMARY KEY,
    video_id    uuid NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    part_bytes  bigint NOT NULL CHECK (part_bytes > 0),
    part_count  integer NOT NULL CHECK (part_count BETWEEN 1 AND 10000),
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'completed', 'aborted')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS multipart_uploads_one_open ON multipart_uploads (video_id)
    WHERE status = 'open';
CREATE INDEX IF NOT EXISTS multipart_uploads_video ON multipart_uploads (video_id);

-- The catalog (GET /videos, chalicelib/api/catalog.py): the videos of the caller's
-- streams, newest first, filtered. The live videos of a stream in upload order,
-- carrying the filter columns, so the page and its total come from an
-- index-only scan; tags and the text filter (title or description, ILIKE) from
-- GIN indexes (the title's trigram index exists already).
CREATE INDEX IF NOT EXISTS videos_catalog ON videos (stream_id, uploaded_at DESC, id)
    INCLUDE (status, category, featured, hidden_at, tags) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS videos_tags ON videos USING gin (tags);
CREATE INDEX IF NOT EXISTS videos_description_trgm ON videos USING gin (description gin_trgm_ops)
    WITH (fastupdate = off);
