-- Search (chalicelib/api/search.py) takes every ranking's candidates from an index.

-- Title similarity (pg_trgm's % operator): the planner does not use the GIN
-- trigram index for % on titles (it estimates it dearer than a scan that
-- computes similarity() for every title); with a GiST trigram index it reads
-- the candidates from the index. The GIN index stays for ILIKE and prefixes.
CREATE INDEX IF NOT EXISTS videos_title_trgm_gist ON videos USING gist (title gist_trgm_ops);

-- GIN indexes queued new entries in a "pending list" that every search then
-- scans in full until (auto)vacuum merges it: right after a batch of new
-- transcripts, keyword search got several times slower. Segments and titles
-- are written once per processed video and searched far more often, so they
-- are written straight into the index instead; the queue is merged now.
ALTER INDEX transcript_segments_tsv SET (fastupdate = off);
ALTER INDEX transcript_segments_trgm SET (fastupdate = off);
ALTER INDEX videos_title_trgm SET (fastupdate = off);
SELECT gin_clean_pending_list(i::regclass)
FROM unnest(ARRAY['transcript_segments_tsv', 'transcript_segments_trgm', 'videos_title_trgm']) AS i;
