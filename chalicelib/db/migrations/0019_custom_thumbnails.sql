-- A custom thumbnail set by the uploader or a stream admin (PUT /videos/{id}/thumbnail):
-- the key of its re-encoded JPEG under thumbnails/; NULL shows the representative frame.
ALTER TABLE videos ADD COLUMN IF NOT EXISTS custom_thumbnail_key text;
