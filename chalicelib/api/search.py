"""GET /search and GET /search/suggestions: speech and titles across the caller's streams.

Three rankings are fused (reciprocal rank fusion): keyword matches in speech
(Postgres full text, plus substrings through the trigram index), semantic
matches in speech (the query's all-MiniLM embedding against the segment
vectors, HNSW) and title matches (substring or trigram similarity, so a typo
still finds a title). The query is embedded by the `embed_query` function,
called while the keyword and title queries run, so the API itself never loads
a model; if that call fails, search falls back to keywords and titles.

Speech is not matched by whole-segment trigram similarity (`text % q`): a
short query is almost never 30 % similar to a spoken sentence, so it found
next to nothing while costing a similarity() over thousands of index
candidates (most of the 211 ms p95 at 10,000 clips); near misses in speech
are the semantic ranking's job.
"""
from __future__ import annotations

import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

from chalicelib import aws, db, glossary
from chalicelib.api.videos import thumbnail_url
from chalicelib.config import get_settings
from chalicelib.errors import ValidationError

logger = logging.getLogger(__name__)

MAX_QUERY = 200
CANDIDATES = 50
SEMANTIC_CANDIDATES = 40
# The HNSW walk's first pass (pgvector's hnsw.ef_search, default 40). At 100,000 segments
# (bench/scale.py's ef_search sweep, bench/results/scale.json) 40 found 18 of 40 planted near
# neighbours among the candidates, 100 found 32 and 200 found 36; search p50 41, 45 and 46 ms
# (an earlier sweep: p95 +8 % at 100, +17 % at 200). The rankings run at once, so a wider walk
# mostly hides behind the title ranking.
SEMANTIC_EF_SEARCH = 100
SEMANTIC_MIN_SIMILARITY = 0.35
RRF_K = 60
_WORD = re.compile(r"[\w']+")




def _lambda() -> Any:
    return aws.client("lambda")


@lru_cache(maxsize=1)
def _background() -> ThreadPoolExecutor:
    """Threads for the embed_query call + semantic ranking and for the title ranking.

    They overlap the keyword ranking. Each thread keeps its own database
    connection (chalicelib.db is per thread): a warm API instance that has
    served a search holds three, used by one request at a time.
    """
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="search-ranking")


def embed_query_function() -> str:
    s = get_settings()
    return f"{s.app_name}-{s.stage}-embed_query"


def query_vector(q: str) -> list[float] | None:
    """The query's embedding from the embed_query function; None if it cannot be had."""
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        resp = _lambda().invoke(FunctionName=embed_query_function(), Payload=json.dumps({"texts": [q]}))
        payload = json.loads(resp["Payload"].read())
    except (BotoCoreError, ClientError, ValueError) as exc:
        logger.warning("semantic search unavailable: %s", exc)
        return None
    if resp.get("FunctionError") or "vectors" not in payload:
        logger.warning("semantic search unavailable: %s", payload)
        return None
    return payload["vectors"][0]


def _query(params: dict) -> str:
    q = (params.get("q") or "").strip()
    if not q:
        raise ValidationError("Search query required")
    if "\x00" in q:
        raise ValidationError("Invalid search query", details=["q must not contain NUL characters"])
    if len(q) > MAX_QUERY:
        raise ValidationError("Invalid search query", details=[f"q must be at most {MAX_QUERY} characters"])
    return q


# What the caller may find: complete clips, not being deleted, not hidden by
# moderation, in one of the caller's streams. The streams are an InitPlan
# array (computed once per query), so the check is a cheap per-row test the
# planner can apply to candidates coming out of an index.
_LISTED = "v.processing_index = 0 AND v.deleted_at IS NULL AND v.hidden_at IS NULL"
_MY_STREAMS = "ARRAY(SELECT stream_id FROM stream_members WHERE user_id = %(uid)s)"
_VISIBLE = f"{_LISTED} AND v.stream_id = ANY({_MY_STREAMS})"

# Each ranking reads its candidates from an index and tests visibility on those
# rows only. Written as one join (as before), the planner started from the
# caller's videos and tested every visible clip: at 10,000 clips, a scan.


def _keyword_hits(uid: str, q: str) -> list[dict]:
    """Segments containing every query word (stemmed) or the query text itself.

    Candidates: the full-text GIN index OR the trigram GIN index (substring,
    e.g. partial words), one BitmapOr. Ranked by the whole phrase spoken in
    order, then the exact text, then ts_rank. Compound words match in every
    spelling ("headshot", "head shot", "head-shot": chalicelib.glossary).

    Every candidate's visibility is one primary-key probe of its video (the
    scalar subquery), and only the (video_id, idx, score) of candidates is
    carried to the sort; text and words are read for the top rows alone.
    Written as a join of the candidates to videos, the planner hashed the
    whole videos table (a sequential scan: 33 of the 72 ms at 100,000 clips)
    and carried every candidate's words array to the sort.
    """
    variants = glossary.compound_variants(q)
    params = {f"q{i}": v for i, v in enumerate(variants)}
    words = " || ".join(f"websearch_to_tsquery('english', %(q{i})s)" for i in range(len(variants)))
    phrase = " || ".join(f"phraseto_tsquery('english', %(q{i})s)" for i in range(len(variants)))
    return db.fetch_all(
        "WITH top AS MATERIALIZED ("
        "  SELECT s.video_id, s.idx,"
        f"   ts_rank(s.tsv, {words})"
        f"   + (s.tsv @@ ({phrase}))::int + (s.text ILIKE ANY(%(likes)s))::int AS score"
        "  FROM transcript_segments s"
        f"  WHERE (s.tsv @@ ({words}) OR s.text ILIKE ANY(%(likes)s))"
        f"  AND (SELECT v.stream_id FROM videos v WHERE v.id = s.video_id AND {_LISTED})"
        f"   = ANY({_MY_STREAMS})"
        "  ORDER BY score DESC LIMIT %(n)s)"
        " SELECT t.video_id, t.idx, s.start_s, s.text, s.words, t.score, v.title FROM top t"
        " JOIN transcript_segments s ON s.video_id = t.video_id AND s.idx = t.idx"
        " JOIN videos v ON v.id = t.video_id ORDER BY t.score DESC",
        {**params, "uid": uid, "likes": [f"%{_escape_like(v)}%" for v in variants],
         "n": CANDIDATES})


def _semantic_hits(uid: str, vector: list[float]) -> list[dict]:
    """Segments nearest in meaning, from the HNSW index.

    The visibility test is a scalar subquery on each candidate (a join would
    lead the planner to an exact scan), and pgvector's iterative scan keeps
    walking the graph until enough candidates pass it; relaxed order, so the
    outer query sorts the few rows again.
    """
    with db.transaction() as cur:
        cur.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cur.execute(f"SET LOCAL hnsw.ef_search = {SEMANTIC_EF_SEARCH}")
        cur.execute(
            "SELECT h.*, 1 - h.distance AS score, v.title FROM ("
            "  SELECT s.video_id, s.idx, s.start_s, s.text, s.words,"
            "   s.embedding <=> %(vec)s::vector AS distance FROM transcript_segments s"
            "  WHERE s.embedding IS NOT NULL"
            f"  AND (SELECT v.stream_id FROM videos v WHERE v.id = s.video_id AND {_LISTED})"
            f"   = ANY({_MY_STREAMS})"
            "  ORDER BY s.embedding <=> %(vec)s::vector LIMIT %(n)s) h"
            " JOIN videos v ON v.id = h.video_id ORDER BY h.distance",
            {"uid": uid, "vec": json.dumps(vector), "n": SEMANTIC_CANDIDATES})
        return [r for r in cur.fetchall() if r["score"] >= SEMANTIC_MIN_SIMILARITY]


def _semantic_ranking(uid: str, q: str) -> tuple[list[float] | None, list[dict]]:
    """The query's vector (None without one) and its semantic hits."""
    vector = query_vector(q)
    return vector, (_semantic_hits(uid, vector) if vector is not None else [])


def _title_hits(uid: str, q: str) -> list[dict]:
    """Videos whose title contains the query or is similar to it (trigram GiST index)."""
    return db.fetch_all(
        "SELECT v.id AS video_id, NULL::int AS idx, NULL::float AS start_s, NULL AS text,"
        " NULL::jsonb AS words, v.title, similarity(v.title, %(q)s) AS score FROM videos v"
        f" WHERE (v.title ILIKE %(like)s OR v.title %% %(q)s) AND {_VISIBLE}"
        " ORDER BY score DESC LIMIT %(n)s",
        {"uid": uid, "q": q, "like": f"%{_escape_like(q)}%", "n": CANDIDATES})


def _escape_like(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def spoken_at(segment: dict, q: str) -> float:
    """When the query's words start being spoken in a segment (its start if no word matches)."""
    words = segment.get("words") or []
    norm = [(_WORD.findall(w.get("word", "").lower()) or [""])[0] for w in words]
    variants = [[w.lower() for w in _WORD.findall(v)] for v in glossary.compound_variants(q)]
    for wanted in variants:
        for i in range(len(norm)):
            if wanted and norm[i:i + len(wanted)] == wanted:
                return round(float(words[i]["start"]), 2)
    wanted = {w for v in variants for w in v}
    for i, w in enumerate(norm):
        if w in wanted:
            return round(float(words[i]["start"]), 2)
    return round(float(segment["start_s"]), 2)


def _snippet(text: str, q: str, width: int = 160) -> str:
    if len(text) <= width:
        return text
    at = text.lower().find(q.lower().split()[0]) if q.split() else 0
    start = max(0, at - width // 3)
    return ("…" if start else "") + text[start:start + width].strip() + "…"


def search(user: dict, params: dict, page: int, limit: int) -> dict:
    """Ranked videos with the segment where the query is spoken."""
    q = _query(params)
    uid = str(user["id"])
    # The three rankings run at once: the embed_query call (a Lambda) and then
    # the semantic ranking on one worker thread, the title ranking on another
    # (each on its thread's own connection), the keyword ranking here. At
    # 100,000 clips the keyword and title rankings each cost tens of ms of
    # Postgres time, so the request waits for the slowest, not the sum.
    semantic = _background().submit(_semantic_ranking, uid, q)
    titles = _background().submit(_title_hits, uid, q)
    rankings = [_keyword_hits(uid, q), titles.result()]
    vector, semantic_hits = semantic.result()
    if vector is not None:
        rankings.append(semantic_hits)
    fused: dict[str, dict] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking):
            vid = str(hit["video_id"])
            entry = fused.setdefault(vid, {"score": 0.0, "segment": None, "title": hit["title"]})
            entry["score"] += 1.0 / (RRF_K + rank + 1)
            if hit["text"] is not None and entry["segment"] is None:
                entry["segment"] = hit
    ordered = sorted(fused.items(), key=lambda kv: -kv[1]["score"])
    window = ordered[(page - 1) * limit: page * limit]
    return {"videos": [{
        "id": vid, "title": e["title"],
        "snippet": _snippet(e["segment"]["text"], q) if e["segment"] else None,
        "timestamp": spoken_at(e["segment"], q) if e["segment"] else None,
        "score": round(e["score"], 5),
        "thumbnail_url": thumbnail_url(vid)} for vid, e in window],
        "total_results": len(ordered), "page": page, "limit": limit, "semantic": vector is not None}


def suggestions(user: dict, params: dict) -> dict:
    """Completions from titles and frequent spoken phrases that start with the query."""
    q = _query(params).lower()
    uid = str(user["id"])
    titles = db.fetch_all(
        "SELECT v.title, similarity(v.title, %(q)s) AS s FROM videos v"
        f" WHERE {_VISIBLE} AND (v.title ILIKE %(prefix)s OR v.title ILIKE %(word)s)"
        " ORDER BY (v.title ILIKE %(prefix)s) DESC, s DESC LIMIT 5",
        {"uid": uid, "q": q, "prefix": f"{_escape_like(q)}%", "word": f"% {_escape_like(q)}%"})
    phrases = db.fetch_all(
        "SELECT phrase, count(*) AS n FROM ("
        "  SELECT (regexp_matches(lower(s.text), %(re)s, 'g'))[1] AS phrase"
        "  FROM transcript_segments s JOIN videos v ON v.id = s.video_id"
        f" WHERE {_VISIBLE} AND s.text ILIKE %(like)s) p"
        " GROUP BY phrase ORDER BY n DESC, phrase LIMIT 5",
        {"uid": uid, "re": r"\m(" + re.escape(q) + r"[\w']*(?:\s+[\w']+){0,2})",
         "like": f"%{_escape_like(q)}%"})
    return {"query": q, "suggestions": list(dict.fromkeys(
        [t["title"] for t in titles] + [p["phrase"] for p in phrases]))[:10],
        "titles": [t["title"] for t in titles], "phrases": [p["phrase"] for p in phrases]}
