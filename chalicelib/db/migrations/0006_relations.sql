-- The clip-level vector combines what a clip says (mean of its transcript
-- segment embeddings, 384 dims) and what it shows (its perceptual signature
-- vector, 128 dims), each unit length and weighted, so one cosine distance
-- ranks similar clips and one HNSW index serves the lookup.
ALTER TABLE video_embeddings ADD COLUMN clip_vector vector(512);
CREATE INDEX video_embeddings_clip_hnsw ON video_embeddings USING hnsw (clip_vector vector_cosine_ops);

-- Relations found by the AI analysis stage: `related_id` is cut from
-- `video_id` (trimmed: offset = where it starts on video_id's timeline), or is
-- the same moment from another player's point of view (pov: related_id's
-- audio starts `offset_s` seconds into video_id's).
CREATE TABLE video_relations (
    video_id   uuid NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    related_id uuid NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('trimmed', 'pov')),
    offset_s   double precision NOT NULL,
    duration_s double precision,
    score      real NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (video_id, related_id, kind)
);
CREATE INDEX video_relations_related ON video_relations (related_id);
