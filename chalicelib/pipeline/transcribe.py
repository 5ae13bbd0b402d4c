"""Transcribe step (processing_index 3): speech to text with word timings.

faster-whisper (Whisper tiny.en, int8) with voice-activity filtering, loaded
once per warm container. Writes transcripts/{id}.json and the transcript rows
(replacing any earlier ones, so a retried step stores nothing twice). A clip
without speech, or without audio, completes with an empty transcript.
"""
from __future__ import annotations

import json
import logging

from chalicelib import db, storage
from chalicelib.config import get_settings
from chalicelib.pipeline import media_io
from chalicelib.pipeline.step import Envelope, PermanentStepError, stage_step

logger = logging.getLogger(__name__)


def store(video_id: str, transcript: dict) -> str:
    """Write the transcript to S3 and Postgres; its key."""
    key = storage.transcript_key(video_id)
    body = json.dumps({"video_id": video_id, **transcript}).encode()
    storage.s3_client().put_object(Bucket=get_settings().bucket, Key=key, Body=body,
                                   ContentType="application/json")
    segments = transcript["segments"]
    with db.transaction() as cur:
        cur.execute("DELETE FROM transcript_segments WHERE video_id = %s", (video_id,))
        cur.execute(
            "INSERT INTO transcripts (video_id, language, duration_s, text) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (video_id) DO UPDATE SET language = EXCLUDED.language,"
            " duration_s = EXCLUDED.duration_s, text = EXCLUDED.text, created_at = now()",
            (video_id, transcript["language"], transcript["duration"],
             " ".join(s["text"] for s in segments if s["text"])))
        for idx, seg in enumerate(segments):
            cur.execute(
                "INSERT INTO transcript_segments (video_id, idx, start_s, end_s, text, words)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (video_id, idx, seg["start"], seg["end"], seg["text"], json.dumps(seg["words"])))
        media_io.record_assets(video_id, [(key, len(body), "application/json")],
                               lambda _key: "transcript", cur)
    return key


@stage_step("transcribe")
def run(event: Envelope) -> dict:
    """Transcribe the clip's audio and store the transcript."""
    from chalicelib.media.errors import InvalidMediaError, MediaTimeoutError
    from chalicelib.ml import transcribe

    video_id = event["video_id"]
    with media_io.workdir(video_id) as tmp:
        src = tmp / f"source.{event['key'].rsplit('.', 1)[-1]}"
        media_io.download(event["key"], src)
        try:
            wav = transcribe.extract_audio(src, tmp / "audio.wav", timeout_s=300)
        except (InvalidMediaError, MediaTimeoutError) as exc:
            raise PermanentStepError(f"audio extraction failed: {exc.reason}") from None
        if wav is None:
            result = {"language": None, "duration": 0.0, "segments": []}
        else:
            result = transcribe.transcribe(wav).to_dict()
    key = store(video_id, result)
    return {"transcript": {"key": key, "segments": len(result["segments"]),
                           "language": result["language"]}}
