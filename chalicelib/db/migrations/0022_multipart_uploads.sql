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
