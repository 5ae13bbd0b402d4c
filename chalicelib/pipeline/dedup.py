"""Dedup step (processing_index 1): probe, then exact and near-duplicate detection.

The upload is streamed to scratch space once, hashed on the way (exact
copies: similarity 1.0), probed from its headers and checked against the
limits before any full decode, then given a perceptual signature (frame
hashes over time + chromaprint). The signature's decode also writes the
thumbnail candidates the "processing" and "duplicate" overlays are made from.
Candidates come from an HNSW index over the signatures' compact vectors; the
full signatures decide.

The audio fingerprint's decode also writes the 16 kHz speech WAV. A clip that
is not a duplicate hands it over (`speech_audio_key`) to the transcribe step,
which then runs beside the transcode instead of after it; a duplicate stores
nothing more, so the machine stops before any encode.

Dedup never crosses a stream: a clip is a duplicate only of an earlier clip of
its own stream that the stream's members can see (not hidden, deleted, failed
or itself a duplicate), so the same clip uploaded to two streams plays in both.
The same content in other streams is recorded in cross_stream_matches, which
only platform admins read, and never travels in the step's output.
"""
from __future__ import annotations

import json
import logging

from chalicelib import db, storage
from chalicelib.pipeline import media_io, progress
from chalicelib.pipeline.step import Envelope, PermanentStepError, stage_step

logger = logging.getLogger(__name__)

CANDIDATES = 10
# The HNSW walk's first pass (pgvector's hnsw.ef_search, default 40). At 100,000 clips
# (bench/scale.py's ef_search sweep) 40 found 35 of 40 planted near-copies among the 10
# candidates, 100 found 39 and 200 all 40, for a lookup of 8.0, 11.0 and 14.0 ms. One lookup
# per upload, beside seconds of FFmpeg: a missed duplicate costs more than 6 ms.
EF_SEARCH = 200
PROBE_TIMEOUT_S = 30


# An earlier clip that can be an original: alive, not failed, not itself a duplicate.
_ORIGINAL = ("o.id <> v.id AND o.deleted_at IS NULL AND o.status NOT IN ('failed', 'duplicate')"
             " AND o.processing_index <> -1 AND (o.uploaded_at, o.id) < (v.uploaded_at, v.id)")
# Same stream, and visible to all its members (hidden clips are for its admins only).
_SAME_STREAM = "o.stream_id = v.stream_id AND o.hidden_at IS NULL"
_OTHER_STREAM = "o.stream_id <> v.stream_id"


def find_exact_original(video_id: str, sha256: str) -> dict | None:
    """The earliest visible earlier clip of the same stream with the same bytes."""
    return db.fetch_one(
        "SELECT o.id FROM videos v JOIN videos o ON o.content_sha256 = %s"
        f" WHERE v.id = %s AND {_SAME_STREAM} AND {_ORIGINAL}"
        " ORDER BY o.uploaded_at, o.id LIMIT 1", (sha256, video_id))


def exact_matches_elsewhere(video_id: str, sha256: str, limit: int = CANDIDATES) -> list[dict]:
    """Earlier clips with the same bytes in other streams (for platform admins)."""
    return db.fetch_all(
        "SELECT o.id FROM videos v JOIN videos o ON o.content_sha256 = %s"
        f" WHERE v.id = %s AND {_OTHER_STREAM} AND {_ORIGINAL}"
        " ORDER BY o.uploaded_at, o.id LIMIT %s", (sha256, video_id, limit))


def near_candidates(video_id: str, vector: list[float], limit: int = CANDIDATES, *,
                    same_stream: bool = True) -> list[dict]:
    """Nearest earlier clips by signature vector: in the clip's stream, or (False) in all others.

    Two filtered lookups rather than one: copies in other streams must never
    crowd a same-stream original out of the candidates.
    """
    scope = _SAME_STREAM if same_stream else _OTHER_STREAM
    with db.transaction() as cur:
        # Filtered HNSW scans keep going until enough rows pass the filter.
        cur.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cur.execute(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}")
        cur.execute(
            "SELECT s.video_id, s.signature FROM video_signatures s"
            " JOIN videos o ON o.id = s.video_id"
            " JOIN videos v ON v.id = %(vid)s"
            f" WHERE {scope} AND {_ORIGINAL}"
            " ORDER BY s.vector <=> %(vec)s::vector LIMIT %(limit)s",
            {"vid": video_id, "vec": json.dumps(vector), "limit": limit})
        return cur.fetchall()


def record_cross_stream(video_id: str, matches: list[tuple[str, float]]) -> None:
    """Keep matches in other streams for platform admins (idempotent for a retried step)."""
    if not matches:
        return
    with db.transaction() as cur:
        for match_id, similarity in matches:
            cur.execute(
                "INSERT INTO cross_stream_matches (video_id, match_id, similarity) VALUES (%s, %s, %s)"
                " ON CONFLICT (video_id, match_id) DO UPDATE"
                " SET similarity = GREATEST(cross_stream_matches.similarity, EXCLUDED.similarity)",
                (video_id, match_id, similarity))
    logger.info("content also in other streams", extra={"video_id": video_id, "matches": len(matches)})


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


def _pick_frame(src, info, thumbs, frame) -> None:
    """The overlays' frame: the best candidate the signature's decode wrote, else one sought for."""
    from chalicelib.media import fingerprint, thumbnails
    from chalicelib.media.errors import InvalidMediaError

    if thumbs is not None:
        try:
            thumbs.best(fingerprint.SAMPLE_FPS, frame)
            return
        except (InvalidMediaError, OSError) as exc:
            logger.warning("no thumbnail candidate from the signature's decode: %s", exc)
    if info.has_video:
        thumbnails.representative_frame(src, info, frame,
                                        timeout_s=media_io.ffmpeg_timeout(info.duration_s, 1.0))


def _hand_over_speech(video_id: str, wav) -> dict:
    """Store the speech WAV for the transcribe step; the envelope's {speech_audio_key} (empty without one)."""
    if wav is None or not wav.exists() or wav.stat().st_size == 0:
        return {}
    key = media_io.speech_audio_key(video_id)
    media_io.upload_file(wav, key)
    return {"speech_audio_key": key}


def _ladder_audio(tmp, info, event: Envelope) -> dict:
    """{bit rate: path} of the AAC tracks to encode beside the fingerprint, for a clip the ladder chunks.

    The chunks take their frames from one whole-track encode, so a join is
    seamless; encoding it here, from the decode dedup runs anyway, has it ready
    before the first chunk starts. Empty for a short or silent clip.
    """
    from chalicelib.pipeline import transcode

    if not info.has_audio or event.get("shape") == "serial" or not transcode.chunks_its_ladder(info.duration_s):
        return {}
    return {bps: tmp / f"audio_{bps}.m4a" for bps in transcode.ladder_audio_bitrates(info)}


def _hand_over_ladder_audio(video_id: str, aac: dict) -> dict:
    """Store the AAC tracks for the ladder's chunks; the envelope's {ladder_audio: true} once all are."""
    if not aac or not all(p.exists() and p.stat().st_size for p in aac.values()):
        return {}
    from chalicelib.pipeline import transcode

    with media_io.Uploader() as up:
        for bps, path in aac.items():
            up.submit(path, transcode.ladder_audio_key(video_id, bps))
        up.wait()
    return {"ladder_audio": True}


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
        original = find_exact_original(video_id, sha256)
        similarity = 1.0
        elsewhere = {str(r["id"]): 1.0 for r in exact_matches_elsewhere(video_id, sha256)}
        speech = tmp / "speech.wav" if info.has_audio else None
        aac = _ladder_audio(tmp, info, event)
        if original is None:
            thumbs = thumbnails.Candidates.of(info, tmp / "thumbs.rgb") if info.has_video else None
            signature = fingerprint.media_signature(
                src, info, timeout_s=media_io.ffmpeg_timeout(info.duration_s, 3.0), speech_wav=speech,
                aac=aac, thumbs=thumbs)
            _pick_frame(src, info, thumbs, frame)
            _store_overlay(video_id, frame, "processing", thumbnails.processing_overlay)
            store_signature(video_id, signature, info.duration_s)
            vector = signature.video.vector if signature.video else [0.0] * 128

            def scored(same_stream: bool) -> list[tuple[str, float]]:
                cands = near_candidates(video_id, vector, same_stream=same_stream)
                return [(str(c["video_id"]), fingerprint.compare(
                    signature, fingerprint.MediaSignature.from_dict(c["signature"]))) for c in cands]

            best = max(scored(True), key=lambda c: c[1], default=None)
            if best and best[1] >= fingerprint.NEAR_DUPLICATE_THRESHOLD:
                original, similarity = {"id": best[0]}, round(best[1], 4)
            for match_id, score in scored(False):
                if score >= fingerprint.NEAR_DUPLICATE_THRESHOLD:
                    elsewhere[match_id] = max(elsewhere.get(match_id, 0.0), round(score, 4))
        record_cross_stream(video_id, list(elsewhere.items()))
        if original is None:
            return {"dedup": {"is_duplicate": False}, "has_audio": info.has_audio,
                    **_hand_over_speech(video_id, speech), **_hand_over_ladder_audio(video_id, aac)}
        if not frame.exists():  # an exact copy: no signature decode ran
            _pick_frame(src, info, None, frame)
        _store_overlay(video_id, frame, "duplicate", thumbnails.duplicate_overlay)
        return {"dedup": {"is_duplicate": True, "original_id": str(original["id"]),
                          "similarity": similarity}}

