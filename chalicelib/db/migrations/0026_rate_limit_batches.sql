-- rate_limit_hit() counts a batch: an API instance serves a caller well under
-- their limit from its own memory and reports those hits with its next call
-- (chalicelib.api.ratelimit). p_count defaults to 1, so a call without it (an
-- instance still running the earlier code during a deploy) counts as before.
DROP FUNCTION IF EXISTS rate_limit_hit(text, integer);

CREATE OR REPLACE FUNCTION rate_limit_hit(p_bucket text, p_window integer, p_count integer DEFAULT 1,
    OUT hits integer, OUT prev_hits integer, OUT elapsed double precision)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rate_limit_counters AS c (bucket, window_s, window_no, hits, prev_hits)
    VALUES (p_bucket, p_window, floor(extract(epoch FROM now()) / p_window)::bigint, p_count, 0)
    ON CONFLICT (bucket) DO UPDATE SET
        prev_hits = CASE WHEN c.window_no = EXCLUDED.window_no THEN c.prev_hits
                         WHEN c.window_no = EXCLUDED.window_no - 1 THEN c.hits ELSE 0 END,
        hits = CASE WHEN c.window_no = EXCLUDED.window_no THEN c.hits + EXCLUDED.hits
                    ELSE EXCLUDED.hits END,
        window_s = EXCLUDED.window_s,
        window_no = EXCLUDED.window_no
    RETURNING c.hits, c.prev_hits, extract(epoch FROM now())::float8 - c.window_no * c.window_s
    INTO hits, prev_hits, elapsed;
END $$;
