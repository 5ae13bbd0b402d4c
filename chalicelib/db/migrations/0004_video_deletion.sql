-- Deleting a video is several steps (stop its execution, delete its objects,
-- delete its rows) that may fail half-way. The row is marked first, so a
-- repeated DELETE finds it and finishes the job; reads hide marked rows.
ALTER TABLE videos ADD COLUMN deleted_at timestamptz;
CREATE INDEX videos_deleting ON videos (deleted_at) WHERE deleted_at IS NOT NULL;
