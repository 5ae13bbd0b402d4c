-- Dedup never crosses a stream: a clip is flagged duplicate (-1) only of an
-- earlier clip its own stream's members can see. The same content found in
-- another stream is recorded here instead, and only platform admins read it
-- (GET /admin/duplicates); no member-facing route touches this table.
-- `match_id` is the earlier clip in the other stream; similarity 1.0 = same bytes.
CREATE TABLE IF NOT EXISTS cross_stream_matches (
    video_id   uuid NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    match_id   uuid NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    similarity real NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (video_id, match_id),
    CHECK (video_id <> match_id)
);
CREATE INDEX IF NOT EXISTS cross_stream_matches_match ON cross_stream_matches (match_id);
CREATE INDEX IF NOT EXISTS cross_stream_matches_created ON cross_stream_matches (created_at DESC);

-- Flags set before the rule that point into another stream are such matches.
-- (Those clips stay -1 until reprocessed; the API no longer names an original
-- its caller cannot see.)
INSERT INTO cross_stream_matches (video_id, match_id, similarity)
SELECT d.id, d.duplicate_of, coalesce(d.similarity, 1.0)
  FROM videos d JOIN videos o ON o.id = d.duplicate_of
 WHERE d.processing_index = -1 AND o.stream_id <> d.stream_id
ON CONFLICT DO NOTHING;
