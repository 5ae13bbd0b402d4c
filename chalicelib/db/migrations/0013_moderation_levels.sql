-- Platform moderation outranks stream admins: a hide records at which level it
-- was made. 'platform' (a platform admin hid it) can be lifted only by a
-- platform admin; 'stream' (one of the stream's admins) by either.
ALTER TABLE videos ADD COLUMN IF NOT EXISTS hidden_level text
    CHECK (hidden_level IN ('platform', 'stream'));

-- Hides made before this migration: the hider's role says the level. Someone who
-- was no admin of the stream can only have hidden it as a platform admin; a
-- hider who is gone (hidden_by NULL) counts as platform, the safe side.
UPDATE videos v SET hidden_level = CASE WHEN EXISTS (
        SELECT 1 FROM stream_members m
        WHERE m.stream_id = v.stream_id AND m.user_id = v.hidden_by AND m.role = 'admin')
    THEN 'stream' ELSE 'platform' END
WHERE v.hidden_at IS NOT NULL AND v.hidden_level IS NULL;

-- A hidden row without a level (written around the API) is treated as
-- 'platform' by chalicelib.api.moderation: the safe side again.
