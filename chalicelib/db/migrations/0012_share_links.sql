-- Share links are listed and revoked by an id that is not the secret code
-- (the code stays the primary key that GET /share/{code} looks up). A revoked
-- link keeps its row so the video's counts and its holder's 410 stay honest.
ALTER TABLE shares ADD COLUMN IF NOT EXISTS id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX IF NOT EXISTS shares_id ON shares (id);
ALTER TABLE shares ADD COLUMN IF NOT EXISTS revoked_at timestamptz;
ALTER TABLE shares ADD COLUMN IF NOT EXISTS revoked_by uuid REFERENCES users(id) ON DELETE SET NULL;
CREATE INDEX IF NOT EXISTS shares_video_creator ON shares (video_id, created_by, created_at DESC);
