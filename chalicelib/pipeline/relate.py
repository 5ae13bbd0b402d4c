"""How a new clip relates to the clips around it: trimmed cuts and other points of view.

Runs in the AI-analysis stage, once per clip, against the recent clips of the
streams its uploader belongs to; the results are rows, so the API only reads.
- trimmed: one clip's pictures appear inside a longer clip (frame-hash
  sequences aligned over time); offset = where the cut starts in the original.
- pov: the same game sound under a different picture, i.e. the same moment recorded
  by another player; offset = time shift. Each player's clip carries their own voice
  chat, so the game-sound landmarks (chalicelib.media.gamesound: spectral peaks outside
  speech) decide and place it; chromaprint (the whole mix) still counts for signatures
  stored before landmarks existed, and for one recording under two pictures.
"""
from __future__ import annotations

import logging
from dataclasses import replace

from chalicelib import db

logger = logging.getLogger(__name__)

MAX_CANDIDATES = 500
# A "trimmed" clip must be this much shorter than its original (else it is the same clip).
MIN_TRIM_GAIN_S = 1.0


def _candidates(video_id: str) -> list[dict]:
    return db.fetch_all(
        "SELECT s.video_id, s.signature, s.duration_s FROM video_signatures s"
        " JOIN videos o ON o.id = s.video_id JOIN videos v ON v.id = %s"
        " WHERE o.stream_id IN (SELECT stream_id FROM stream_members WHERE user_id = v.uploaded_by)"
        "   AND o.id <> v.id AND o.status NOT IN ('failed', 'duplicate') AND o.deleted_at IS NULL"
        " ORDER BY o.uploaded_at DESC LIMIT %s", (video_id, MAX_CANDIDATES))


def find_relations(video_id: str) -> list[tuple[str, str, str, float, float, float]]:
    """(video_id, related_id, kind, offset_s, duration_s, score) rows for this clip."""
    from chalicelib.media import fingerprint as fp

    row = db.fetch_one("SELECT signature FROM video_signatures WHERE video_id = %s", (video_id,))
    if row is None:
        return []
    me = fp.MediaSignature.from_dict(row["signature"])
    found = []
    for cand in _candidates(video_id):
        other = fp.MediaSignature.from_dict(cand["signature"])
        pair = [(video_id, me), (str(cand["video_id"]), other)]
        (long_id, long_sig), (short_id, short_sig) = sorted(pair, key=lambda p: -p[1].duration_s)
        video = fp.align(replace(short_sig, audio=None, game=None),
                         replace(long_sig, audio=None, game=None))
        if video.score >= fp.ALIGN_MIN_SCORE:
            if long_sig.duration_s - short_sig.duration_s >= MIN_TRIM_GAIN_S:
                found.append((long_id, short_id, "trimmed", video.offset_s, short_sig.duration_s,
                              video.score))
            continue
        pov = _pov_offset(short_sig, long_sig)
        if pov is not None:
            offset, score = pov
            found.append((long_id, short_id, "pov", offset, short_sig.duration_s, score))
            found.append((short_id, long_id, "pov", -offset, long_sig.duration_s, score))
    return found


def _pov_offset(short_sig, long_sig) -> tuple[float, float] | None:
    """(start of the short clip in the long one, score) when they share game sound, else None."""
    from chalicelib.media import fingerprint as fp, gamesound

    if short_sig.game is not None and long_sig.game is not None:
        game = gamesound.match(long_sig.game, short_sig.game)
        if game.matched:
            return game.offset_s, game.score
    audio = fp.align(replace(short_sig, video=None, game=None), replace(long_sig, video=None, game=None))
    if audio.score >= fp.ALIGN_MIN_SCORE:
        return audio.offset_s, audio.score
    return None


def store_relations(video_id: str, rows: list[tuple]) -> None:
    """Replace this clip's relations (idempotent for a retried step)."""
    with db.transaction() as cur:
        cur.execute("DELETE FROM video_relations WHERE video_id = %s OR related_id = %s",
                    (video_id, video_id))
        for r in rows:
            cur.execute(
                "INSERT INTO video_relations (video_id, related_id, kind, offset_s, duration_s, score)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (video_id, related_id, kind) DO UPDATE"
                " SET offset_s = EXCLUDED.offset_s, duration_s = EXCLUDED.duration_s,"
                "     score = EXCLUDED.score", r)
