"""Dedup step (processing_index 1): probe, then exact and near-duplicate detection.

The upload is streamed to scratch space once, hashed on the way (exact
copies: similarity 1.0), probed from its headers and checked against the
limits before any full decode, then given a perceptual signature (frame
hashes over time + chromaprint). Candidates come from an HNSW index over the
signatures' compact vectors, restricted to streams the uploader can see; the
full signatures decide.
"""
from __future__ import annotations

import json
import logging

from chalicelib import db, storage
from chalicelib.pipeline import media_io, progress
from chalicelib.pipeline.step import Envelope, PermanentStepError, stage_step

logger = logging.getLogger(__name__)

CANDIDATES = 10
PROBE_TIMEOUT_S = 30


def find_exact_original(video_id: str, sha256: str) -> dict | None:
    """The earliest other video with the same bytes in a stream the uploader belongs to."""
    return db.fetch_one(
        "SELECT o.id FROM videos v"
        " JOIN stream_members m ON m.user_id = v.uploaded_by"
        " JOIN videos o ON o.stream_id = m.stream_id"
        " WHERE v.id = %s AND o.id <> v.id AND o.content_sha256 = %s"
        "   AND o.status <> 'failed' AND o.processing_index <> -1 AND o.deleted_at IS NULL"
        "   AND (o.uploaded_at, o.id) < (v.uploaded_at, v.id)"
        " ORDER BY o.uploaded_at, o.id LIMIT 1", (video_id, sha256))


def near_candidates(video_id: str, vector: list[float], limit: int = CANDIDATES) -> list[dict]:
    """Nearest earlier clips by signature vector, among streams the uploader can see."""
    with db.transaction() as cur:
        # Filtered HNSW scans keep going until enough rows pass the filter.
        cur.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cur.execute(
            "SELECT s.video_id, s.signature FROM video_signatures s"
            " JOIN videos o ON o.id = s.video_id"
            " JOIN videos v ON v.id = %(vid)s"
            " WHERE o.stream_id IN (SELECT stream_id FROM stream_members WHERE user_id = v.uploaded_by)"
            "   AND o.id <> v.id AND o.status <> 'failed' AND o.processing_index <> -1 AND o.deleted_at IS NULL"
            "   AND (o.uploaded_at, o.id) < (v.uploaded_at, v.id)"
            " ORDER BY s.vector <=> %(vec)s::vector LIMIT %(limit)s",
            {"vid": video_id, "vec": json.dumps(vector), "limit": limit})
        return cur.fetchall()


def store_signature(video_id: str, signature, duration_s: float | None) -> None:
    db.execute(
        "INSERT INTO video_signatures (video_id, vector, signature, duration_s)"
        " VALUES (%s, %s::vector, %s, %s) ON CONFLICT (video_id) DO UPDATE"
        " SET vector = EXCLUDED.vector, signature = EXCLUDED.signature,"
        "     duration_s = EXCLUDED.duration_s, created_at = now()",
        (video_id, json.dumps(signature.video.vector if signature.video else [0.0] * 128),
         json.dumps(signature.to_dict()), duration_s))


def _store_overlay(video_id: str, frame, variant: str, make) -> None:
    out = frame.parent / f"{variant}.jpg"
    make(frame if frame.exists() else None, out)
    key = storage.thumbnail_key(video_id, variant)
    size = media_io.upload_file(out, key)
    media_io.record_assets(video_id, [(key, size, "image/jpeg")], lambda _k: f"thumbnail_{variant}")


@stage_step("dedup")
def run(event: Envelope) -> dict:
    """Probe the upload, store its signature, and look for an earlier copy."""
    from chalicelib.media import fingerprint, probe, thumbnails
    from chalicelib.media.errors import InvalidMediaError, MediaTimeoutError

    video_id = event["video_id"]
    with media_io.workdir(video_id) as tmp:
        src = tmp / f"source.{event['key'].rsplit('.', 1)[-1]}"
        sha256, size = media_io.download(event["key"], src)
        try:
            info = probe.probe(src, timeout_s=PROBE_TIMEOUT_S)
            progress.update_video(video_id, content_sha256=sha256, size_bytes=size)
            probe.check_limits(info)
            progress.update_video(video_id, duration_s=info.duration_s, width=info.width,
                                  height=info.height, fps=info.fps, video_codec=info.video_codec,
                                  audio_codec=info.audio_codec)
            probe.verify_decodable(src, timeout_s=60, duration_s=info.duration_s)
        except (InvalidMediaError, MediaTimeoutError) as exc:
            raise PermanentStepError(f"not a usable video: {exc.reason}", public=exc.public) from None
        frame = tmp / "frame.jpg"
        thumbnails.representative_frame(src, info, frame,
                                        timeout_s=media_io.ffmpeg_timeout(info.duration_s, 1.0))
        _store_overlay(video_id, frame, "processing", thumbnails.processing_overlay)

        original = find_exact_original(video_id, sha256)
        similarity = 1.0
        if original is None:
            signature = fingerprint.media_signature(
                src, info, timeout_s=media_io.ffmpeg_timeout(info.duration_s, 3.0))
            store_signature(video_id, signature, info.duration_s)
            best = None
            for cand in near_candidates(video_id, signature.video.vector if signature.video else [0.0] * 128):
                score = fingerprint.compare(signature, fingerprint.MediaSignature.from_dict(cand["signature"]))
                if best is None or score > best[1]:
                    best = (cand["video_id"], score)
            if best and best[1] >= fingerprint.NEAR_DUPLICATE_THRESHOLD:
                original, similarity = {"id": best[0]}, round(best[1], 4)
        if original is None:
            return {"dedup": {"is_duplicate": False}}
        _store_overlay(video_id, frame, "duplicate", thumbnails.duplicate_overlay)
        return {"dedup": {"is_duplicate": True, "original_id": str(original["id"]),
                          "similarity": similarity}}

