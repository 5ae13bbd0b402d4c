"""Video Processing & Intelligence: how a clip relates to other clips."""
from __future__ import annotations

import json

from chalicelib import access, db
from chalicelib.api.http import iso
from chalicelib.api.videos import thumbnail_url
from chalicelib.errors import NotFoundError, NotReadyError


def duplicates(user: dict, video_id: str) -> dict:
    """GET /videos/{id}/duplicates: the original of a flagged duplicate, if the caller can see it.

    Originals are always of the duplicate's own stream (pipeline.dedup); one hidden
    or deleted since, or a flag from before that rule, shows as null.
    """
    video = access.require_video_access(user, video_id)
    if video["processing_index"] != -1:
        raise NotFoundError("Not a duplicate video")
    original = access.visible_video(user, video["duplicate_of"])
    return {
        "is_duplicate": True,
        "original_video": {"id": str(original["id"]), "title": original["title"],
                           "uploaded_by": str(original["uploaded_by"]),
                           "uploaded_at": iso(original["uploaded_at"])} if original else None,
        "similarity": video["similarity"],
    }


def _complete(user: dict, video_id: str) -> dict:
    video = access.require_video_access(user, video_id)
    if video["processing_index"] != 0:
        raise NotReadyError("Processing not complete", processing_index=video["processing_index"])
    return video


def similar(user: dict, video_id: str, limit: int = 10) -> dict:
    """Clips most like this one (what they show and say), among those the caller can see."""
    _complete(user, video_id)
    with db.transaction() as cur:
        cur.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cur.execute(
            "SELECT o.id, o.title, 1 - (e.clip_vector <=> me.clip_vector) AS similarity"
            " FROM video_embeddings me, video_embeddings e JOIN videos o ON o.id = e.video_id"
            " WHERE me.video_id = %(vid)s AND e.video_id <> %(vid)s AND o.processing_index = 0 AND o.deleted_at IS NULL AND o.hidden_at IS NULL"
            "   AND o.stream_id IN (SELECT stream_id FROM stream_members WHERE user_id = %(uid)s)"
            " ORDER BY e.clip_vector <=> me.clip_vector LIMIT %(limit)s",
            {"vid": video_id, "uid": user["id"], "limit": limit})
        rows = cur.fetchall()
    return {"similar_videos": [{"id": str(r["id"]), "title": r["title"],
                                "similarity": round(float(r["similarity"]), 4),
                                "thumbnail_url": thumbnail_url(r["id"])} for r in rows]}


def _related(user: dict, video_id: str, kind: str, *, reverse: bool = False) -> list[dict]:
    """Relations of a kind from this clip (or, reversed, to it), to clips the caller can see."""
    mine, theirs = ("related_id", "video_id") if reverse else ("video_id", "related_id")
    return db.fetch_all(
        "SELECT r.offset_s, r.duration_s, r.score, o.id, o.title FROM video_relations r"
        f" JOIN videos o ON o.id = r.{theirs}"
        f" WHERE r.{mine} = %s AND r.kind = %s AND o.deleted_at IS NULL AND o.hidden_at IS NULL"
        "   AND o.stream_id IN (SELECT stream_id FROM stream_members WHERE user_id = %s)"
        " ORDER BY r.offset_s", (video_id, kind, user["id"]))


def timeline(user: dict, video_id: str) -> dict:
    """Clips cut from this one, placed on its timeline (reference/000)."""
    video = _complete(user, video_id)
    rows = _related(user, video_id, "trimmed")
    return {"original_duration": video["duration_s"],
            "trimmed_clips": [{"id": str(r["id"]), "title": r["title"],
                               "start_time": round(float(r["offset_s"]), 2),
                               "duration": round(float(r["duration_s"] or 0), 2),
                               "score": round(float(r["score"]), 3),
                               "thumbnail_url": thumbnail_url(r["id"])} for r in rows]}


def trimmed(user: dict, video_id: str) -> dict:
    """Clips cut from this one, and the clips this one was cut from."""
    body = timeline(user, video_id)
    sources = _related(user, video_id, "trimmed", reverse=True)
    body["trimmed_from"] = [{"id": str(r["id"]), "title": r["title"],
                             "start_time": round(float(r["offset_s"]), 2),
                             "thumbnail_url": thumbnail_url(r["id"])} for r in sources]
    return body


def pov(user: dict, video_id: str) -> dict:
    """The same moment from other players' points of view, with the time offset."""
    _complete(user, video_id)
    rows = _related(user, video_id, "pov")
    return {"pov_videos": [{"id": str(r["id"]), "title": r["title"],
                            "offset": round(float(r["offset_s"]), 2),
                            "similarity": round(float(r["score"]), 3),
                            "thumbnail_url": thumbnail_url(r["id"])} for r in rows]}


def transcript(user: dict, video_id: str) -> dict:
    """Segments and words with their times."""
    video = access.require_video_access(user, video_id)
    head = db.fetch_one("SELECT language, duration_s, text FROM transcripts WHERE video_id = %s", (video_id,))
    if head is None:
        raise NotReadyError("Transcript not ready", processing_index=video["processing_index"])
    segments = db.fetch_all("SELECT idx, start_s, end_s, text, words FROM transcript_segments"
                            " WHERE video_id = %s ORDER BY idx", (video_id,))
    return {"video_id": video_id, "language": head["language"], "duration": head["duration_s"],
            "text": head["text"],
            "segments": [{"id": s["idx"], "start": s["start_s"], "end": s["end_s"], "text": s["text"],
                          "words": s["words"]} for s in segments]}


def embeddings(user: dict, video_id: str) -> dict:
    """Model name, dimension and the vectors of a processed clip."""
    video = access.require_video_access(user, video_id)
    head = db.fetch_one("SELECT model, dim, embedding, clip_vector FROM video_embeddings WHERE video_id = %s",
                        (video_id,))
    if head is None:
        raise NotReadyError("Processing not complete", processing_index=video["processing_index"])
    segments = db.fetch_all("SELECT idx, start_s, end_s, embedding FROM transcript_segments"
                            " WHERE video_id = %s AND embedding IS NOT NULL ORDER BY idx", (video_id,))
    return {"video_id": video_id, "model": head["model"], "dim": head["dim"],
            "text_vector": json.loads(head["embedding"]),
            "clip_vector": json.loads(head["clip_vector"]) if head["clip_vector"] else None,
            "clip_vector_dim": 512,
            "segments": [{"id": s["idx"], "start": s["start_s"], "end": s["end_s"],
                          "vector": json.loads(s["embedding"])} for s in segments]}
