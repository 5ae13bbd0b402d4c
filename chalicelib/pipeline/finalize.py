"""Final steps: complete (0), duplicate (-1), failed (reason recorded), then the MP4 fallbacks.

Finalize makes the video playable (processing_index 0) as soon as both
branches are done. The Fallbacks state after it stores the MP4 fallback of
every rendition (`processed-videos/{id}/{quality}.mp4`, served by
`GET /api/videos/{id}/stream/{quality}` to players without HLS): it reads
every segment back, so it runs after the video is playable rather than on the
way to it (issue 19), and that route answers 202 until the MP4 is stored.
An MP4 fallback is the rendition's fMP4 init segment followed by its media
segments, byte for byte: CMAF segments concatenate into a valid fragmented
MP4, so there is no second encode, and the bytes stream from the segments
into an S3 multipart upload (s3transfer, 8 MB parts) without touching /tmp or
holding the file in memory. It is built in the pipeline rather than lazily on
first request, because an API Lambda has 29 s and a 6 MB response.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Iterator

from chalicelib import observability, storage
from chalicelib.pipeline import media_io, progress
from chalicelib.pipeline.step import Envelope, TransientStepError, is_transient, sweep_if_deleted

logger = logging.getLogger(__name__)

PART_BYTES = 8 * 1024 * 1024   # S3 wants >= 5 MB for every part but the last
MP4_CACHE = "private, max-age=31536000, immutable"


def finalize(event: Envelope) -> Envelope:
    """processing_index 0 (playable) and the execution closed; the MP4 fallbacks follow."""
    video_id = event["video_id"]
    if sweep_if_deleted(video_id, "finalize"):
        raise progress.VideoGone(f"video {video_id} was deleted during finalize")
    progress.complete(video_id, event.get("execution"))   # closes the execution too
    return event


def fallbacks(event: Envelope) -> Envelope:
    """The Fallbacks state, after Finalize: the MP4 fallbacks of a playable video.

    Its outcome goes to the stage history (stage `mp4_fallbacks`) without
    touching the video's processing_index: the video is playable whatever
    happens here. A transient error is retried by the state machine; a failure
    that outlives the retries (or none can fix) reaches RecordFallbacksFailed,
    which records it through mark_failed (side_stage), so the MP4 route answers
    404 rather than 202 for good.
    """
    video_id, started = event["video_id"], time.time()
    try:
        made = build_mp4_fallbacks(video_id)
    except Exception as exc:
        if sweep_if_deleted(video_id, progress.FALLBACKS_STAGE):  # its playlists vanished under a DELETE
            return {**event, "mp4_fallbacks": []}
        if is_transient(exc):
            raise TransientStepError(f"{progress.FALLBACKS_STAGE}: {type(exc).__name__}: {exc}") from exc
        raise
    if sweep_if_deleted(video_id, progress.FALLBACKS_STAGE):
        return {**event, "mp4_fallbacks": []}
    progress.record_side_stage(video_id, progress.FALLBACKS_STAGE, event.get("execution"), started,
                               output={"qualities": made})
    return {**event, "mp4_fallbacks": made}


class _Concatenation:
    """A read-only stream of several objects, one after the other.

    `read(n)` returns exactly n bytes until the end: s3transfer cuts parts of
    a non-seekable stream with one read each, and a short read would make a
    part under S3's 5 MB minimum.
    """

    def __init__(self, keys: list[str]) -> None:
        self._keys = iter(keys)
        self._body: Any = None

    def readable(self) -> bool:
        return True

    def _chunks(self, size: int) -> Iterator[bytes]:
        while size:
            if self._body is None:
                key = next(self._keys, None)
                if key is None:
                    return
                self._body = storage.open_object(key)
            chunk = self._body.read(size)
            if not chunk:
                self._body.close()
                self._body = None
                continue
            size -= len(chunk)
            yield chunk

    def read(self, size: int = -1) -> bytes:
        return b"".join(self._chunks(size if size >= 0 else 1 << 62))


def rendition_parts(video_id: str, playlist_name: str) -> list[str]:
    """Keys of a rendition's init segment and media segments, in play order."""
    from chalicelib.media.hls import parse_media_playlist  # pure text parsing, no FFmpeg

    prefix = storage.processed_prefix(video_id)
    text = storage.read_text(prefix + playlist_name)
    init, segments = parse_media_playlist(text)
    if init is None or not segments:
        raise ValueError(f"{playlist_name} has no fMP4 init segment or no segments")
    return [prefix + init] + [prefix + uri for _, uri in segments]


def build_mp4_fallbacks(video_id: str) -> list[str]:
    """Store one MP4 per rendition of the master playlist; the qualities made.

    A rerun (retry, redrive) skips renditions whose MP4 already has the size
    of its parts, so the step stays cheap to repeat.
    """
    master = storage.read_text(storage.master_playlist_key(video_id))
    sizes = {o["Key"]: o["Size"] for o in storage.iter_objects(storage.processed_prefix(video_id))}
    made, assets = [], []
    for line in master.splitlines():
        if not line.endswith(".m3u8") or line.startswith("#"):
            continue
        quality = line[:-len(".m3u8")]
        parts = rendition_parts(video_id, line)
        total = sum(sizes.get(k, 0) for k in parts)
        key = storage.mp4_fallback_key(video_id, quality)
        if sizes.get(key) != total:
            storage.upload_stream(_Concatenation(parts), key, "video/mp4", MP4_CACHE, PART_BYTES)
        made.append(quality)
        assets.append((key, total, "video/mp4"))
    media_io.record_assets(video_id, assets, lambda _key: "mp4_fallback")
    logger.info("mp4 fallbacks stored", extra={"video_id": video_id, "qualities": made})
    return made


def mark_duplicate(event: Envelope) -> Envelope:
    """processing_index -1, pointing at the original."""
    found = event["dedup"]
    progress.mark_duplicate(event["video_id"], found["original_id"], found["similarity"],
                            event.get("execution"))   # closes the execution too
    return event


def failure_reason(error: dict | None) -> str:
    """A readable reason from the Catch's {Error, Cause} (Cause may be a Lambda error JSON)."""
    if not error:
        return "processing failed"
    name = error.get("Error") or "Error"
    cause = error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict) and parsed.get("errorMessage"):
            cause = parsed["errorMessage"]
    except (ValueError, TypeError):
        pass
    return f"{name}: {cause}" if cause else name


def mark_failed(event: Envelope) -> Envelope:
    """Record the failure on the video; the machine then ends in its Fail state.

    With `side_stage` (RecordFallbacksFailed) the failure is that of work done after the
    video became playable: it goes to the stage history only, and the video stays complete.
    """
    reason = failure_reason(event.get("error"))
    if event.get("side_stage") == progress.FALLBACKS_STAGE:
        progress.record_side_stage(event["video_id"], progress.FALLBACKS_STAGE, event.get("execution"),
                                   time.time(), error=reason)
        return {**event, "failure_reason": reason}
    if not progress.mark_failed(event["video_id"], reason, event.get("execution"),
                                event.get("failed_stage")):
        logger.info("video gone or already failed", extra={"video_id": event["video_id"]})
    observability.video_failed(event.get("failed_stage"))
    return {**event, "failure_reason": reason}
