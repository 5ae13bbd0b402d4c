"""Transcribe step (processing_index 3): speech to text with word timings.

faster-whisper (Whisper tiny.en, int8) with voice-activity filtering, loaded
once per warm container. Reads the 16 kHz speech WAV the dedup step wrote
from its audio decode (`speech_audio_key`), so the upload is not downloaded
and decoded again and this step runs beside the transcode; when that
hand-over is missing (a retry after it was consumed, an older envelope) it
extracts the audio from the upload itself. Writes
transcripts/{id}.json and the transcript rows at the same time (replacing any
earlier rows, so a retried step stores nothing twice), then deletes the
hand-over. A clip without speech, or without audio, completes with an empty
transcript. The stream's glossary (its own terms and the default gaming one)
biases the decoder (Whisper hotwords) and its spellings are normalised in the
transcript ("head shot" -> "headshot", "dust two" -> "Dust 2").
"""
from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2.extras

from chalicelib import aws, db, storage
from chalicelib.pipeline import media_io
from chalicelib.pipeline.step import Envelope, PermanentStepError, stage_step

logger = logging.getLogger(__name__)


def store(video_id: str, transcript: dict) -> str:
    """Write the transcript to S3 and Postgres (concurrently: independent writes); its key."""
    key = storage.transcript_key(video_id)
    body = json.dumps({"video_id": video_id, **transcript}).encode()
    with ThreadPoolExecutor(1) as pool:
        put = pool.submit(aws.in_context(storage.put_bytes), key, body, "application/json")
        _store_rows(video_id, transcript, key, len(body))
        put.result()
    return key


def _store_rows(video_id: str, transcript: dict, key: str, size: int) -> None:
    segments = transcript["segments"]
    with db.transaction() as cur:
        cur.execute("DELETE FROM transcript_segments WHERE video_id = %s", (video_id,))
        cur.execute(
            "INSERT INTO transcripts (video_id, language, duration_s, text) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (video_id) DO UPDATE SET language = EXCLUDED.language,"
            " duration_s = EXCLUDED.duration_s, text = EXCLUDED.text, created_at = now()",
            (video_id, transcript["language"], transcript["duration"],
             " ".join(s["text"] for s in segments if s["text"])))
        if segments:
            psycopg2.extras.execute_values(
                cur, "INSERT INTO transcript_segments (video_id, idx, start_s, end_s, text, words) VALUES %s",
                [(video_id, idx, seg["start"], seg["end"], seg["text"], json.dumps(seg["words"]))
                 for idx, seg in enumerate(segments)])
        media_io.record_assets(video_id, [(key, size, "application/json")],
                               lambda _key: "transcript", cur)


def stream_glossary(video_id: str) -> list[dict]:
    """The glossary of the video's stream: its own terms, then the default ones (unless turned off)."""
    from chalicelib import glossary

    row = db.fetch_one(
        "SELECT g.entries, g.include_default FROM videos v"
        " LEFT JOIN stream_glossaries g ON g.stream_id = v.stream_id WHERE v.id = %s", (video_id,))
    if row is None or row["entries"] is None:
        return glossary.effective([])
    return glossary.effective(row["entries"], row["include_default"])


@stage_step("transcribe")
def run(event: Envelope) -> dict:
    """Transcribe the clip's audio and store the transcript."""
    from chalicelib.ml import transcribe

    video_id = event["video_id"]
    speech_key = event.get("speech_audio_key")
    with media_io.workdir(video_id) as tmp:
        wav: Path | None = tmp / "speech.wav"
        if event.get("has_audio") is False:  # the dedup step probed it: nothing to hear
            wav = None
        elif not (speech_key and media_io.fetch_if_present(speech_key, wav)):
            wav = _audio_from_upload(event["key"], tmp)
        if wav is None:
            result = {"language": None, "duration": 0.0, "segments": []}
        else:
            result = transcribe.transcribe(wav, glossary_entries=stream_glossary(video_id)).to_dict()
    key = store(video_id, result)
    if speech_key:
        storage.delete(speech_key)
    return {"transcript": {"key": key, "segments": len(result["segments"]),
                           "language": result["language"]}}


def _audio_from_upload(raw_key: str, tmp: Path) -> Path | None:
    """The upload's speech WAV made here (download + decode); None when it has no audio."""
    from chalicelib.media.errors import InvalidMediaError, MediaTimeoutError
    from chalicelib.ml import transcribe

    src = tmp / f"source.{raw_key.rsplit('.', 1)[-1]}"
    media_io.download(raw_key, src)
    try:
        return transcribe.extract_audio(src, tmp / "audio.wav", timeout_s=300)
    except (InvalidMediaError, MediaTimeoutError) as exc:
        raise PermanentStepError(f"audio extraction failed: {exc.reason}", public=exc.public) from None
