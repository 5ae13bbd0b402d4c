-- Perceptual signatures of every processed clip: a compact vector for an
-- indexed nearest-neighbour lookup of candidates, and the full signature
-- (frame hashes over time, chromaprint) to decide and to align clips later
-- without reading media again.
CREATE TABLE video_signatures (
    video_id   uuid PRIMARY KEY REFERENCES videos(id) ON DELETE CASCADE,
    vector     vector(128) NOT NULL,
    signature  jsonb NOT NULL,
    duration_s double precision,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX video_signatures_hnsw ON video_signatures USING hnsw (vector vector_cosine_ops);
