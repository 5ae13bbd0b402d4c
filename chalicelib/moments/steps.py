"""The clip-extraction state machine's steps (stepfunctions/clips.asl.json).

GenerateMoments → ExtractClips (a Map: ExtractClip per moment, a failed clip
does not stop the others) → FinishExtraction; any other failure → MarkExtractionFailed.
Refining a moment starts the same machine without the first step, for that
moment only. The envelope carries ids only; media is read from storage by
presigned URL (FFmpeg fetches byte ranges), so a long source never fills /tmp.

Errors worth retrying (database, storage, FFmpeg killed) are raised as
TransientStepError, which the ASL retries; bad media fails the clip or the run
with its reason.
"""
from __future__ import annotations

import logging
from typing import Any

from chalicelib import db, failures, storage, webhooks
from chalicelib.moments import store
from chalicelib.pipeline.step import Envelope, TransientStepError, is_transient

logger = logging.getLogger(__name__)

ANALYSIS_TIMEOUT_FACTOR = 0.5      # FFmpeg limit, seconds per second of video
CUT_TIMEOUT_FACTOR = 4.0


def generate(event: Envelope) -> Envelope:
    """Analyse the video's sound and speech, store its moments; the ids to cut."""
    from chalicelib.media.errors import MediaError
    from chalicelib.moments import analysis, detect
    from chalicelib.pipeline.media_io import ffmpeg_timeout

    video_id, execution = event["video_id"], event.get("execution")
    with _transient():
        video = _video(video_id)
        store.update_run(video_id, execution, status="analysing")
        try:
            measured = analysis.analyse(
                storage.presigned_get(video["raw_key"], 3600), has_audio=bool(video["audio_codec"]),
                duration=video["duration_s"],
                timeout_s=ffmpeg_timeout(video["duration_s"], ANALYSIS_TIMEOUT_FACTOR, 60, 840))
        except MediaError as exc:
            if is_transient(exc):
                raise
            raise RuntimeError(f"the video's audio could not be analysed: {exc.reason}") from None
        moments = detect.find_moments(measured, store.words_of(video_id), video["fps"])
        storage.delete_prefix(storage.clip_prefix(video_id))     # the earlier generation's clips
        ids = store.replace_moments(video_id, moments)
        store.update_run(video_id, execution, status="extracting", analysis=measured.edges())
    logger.info("moments found", extra={"video_id": video_id, "moments": len(ids)})
    return {**event, "moment_ids": ids}


def extract(event: Envelope) -> dict:
    """Cut one moment into clips/{video_id}/{moment_id}.mp4; {moment_id, ok, error?}."""
    from chalicelib.media.errors import MediaError
    from chalicelib.moments import clips
    from chalicelib.pipeline.media_io import ffmpeg_timeout, upload_file, workdir

    video_id, moment_id = event["video_id"], event["moment_id"]
    with _transient():
        moment = store.set_clip(moment_id, clip_status="extracting", clip_error=None)
        if moment is None:
            return {"moment_id": moment_id, "ok": False, "error": "the moment no longer exists"}
        video = _video(video_id)
        key = storage.clip_key(video_id, moment_id)
        length = moment["end_s"] - moment["start_s"]
        with workdir(video_id) as tmp:
            try:
                info = clips.cut(storage.presigned_get(video["raw_key"], 3600), tmp / "clip.mp4",
                                 moment["start_s"], moment["end_s"], video["fps"],
                                 timeout_s=ffmpeg_timeout(length, CUT_TIMEOUT_FACTOR, 60, 840))
            except MediaError as exc:
                if is_transient(exc):
                    raise
                store.set_clip(moment_id, clip_status="failed", clip_error=exc.reason)
                return {"moment_id": moment_id, "ok": False, "error": exc.reason}
            upload_file(tmp / "clip.mp4", key)
        done = store.set_clip(moment_id, clip_status="ready", clip_key=key,
                              clip_duration_s=info.duration, clip_size_bytes=info.size_bytes)
        if done is None:       # deleted meanwhile: leave nothing behind
            storage.delete(key)
            return {"moment_id": moment_id, "ok": False, "error": "the video was deleted"}
    return {"moment_id": moment_id, "ok": True, "frames": info.frames, "duration": info.duration}


def finish(event: Envelope) -> dict:
    """Close the run; clips that did not come out are failed with their reason.

    In the same transaction, each clip of the run emits clip.ready or clip.failed,
    once per execution (a retried FinishExtraction emits nothing new).
    """
    video_id, execution = event["video_id"], event.get("execution")
    results = event.get("clips") or []
    with _transient():
        with db.transaction() as cur:
            for r in results:
                if not r.get("ok"):
                    store.fail_unfinished(video_id, [r["moment_id"]], str(r.get("error") or "clip failed"),
                                          cur=cur)
            store.update_run(video_id, execution, status="complete", cur=cur)
            deliveries = _emit_clip_events(cur, [str(r["moment_id"]) for r in results], execution)
    webhooks.start_deliveries(deliveries)
    ready = sum(1 for r in results if r.get("ok"))
    return {"video_id": video_id, "clips": len(results), "ready": ready}


def mark_failed(event: Envelope) -> dict:
    """The run failed outside a single clip: record why, fail the clips it left unfinished.

    The clips failed by this transition emit clip.failed in its transaction (a retry fails none again).
    """
    video_id, execution = event["video_id"], event.get("execution")
    error = event.get("error") or {}
    reason = f"{error.get('Error', 'Error')}: {_cause(error.get('Cause'))}"[:500]
    ids = [str(m["id"]) for m in store.moments_of(video_id)]
    with db.transaction() as cur:
        store.update_run(video_id, execution, status="failed", error=reason, cur=cur)
        failed = store.fail_unfinished(video_id, ids, reason, cur=cur)
        deliveries = _emit_clip_events(cur, failed, execution)
    webhooks.start_deliveries(deliveries)
    return {"video_id": video_id, "failed": True, "reason": reason}


def _emit_clip_events(cur: Any, moment_ids: list[str], execution: str | None) -> list[str]:
    """clip.ready / clip.failed for those of these clips that are ready or failed; the deliveries to start.

    A failed clip's event carries the public reason only (the detail is the platform admins').
    """
    deliveries: list[str] = []
    for moment in store.clips_for_events(cur, moment_ids):
        if moment["clip_status"] == "ready":
            deliveries += webhooks.emit(cur, moment["stream_id"], "clip.ready", moment["id"],
                                        webhooks.clip_payload(moment), execution)
        elif moment["clip_status"] == "failed":
            deliveries += webhooks.emit(cur, moment["stream_id"], "clip.failed", moment["id"],
                                        webhooks.clip_payload(moment, reason=failures.public_reason(
                                            None, failed=True)), execution)
    return deliveries


def _video(video_id: str) -> dict:
    row = db.fetch_one("SELECT * FROM videos WHERE id = %s AND deleted_at IS NULL", (video_id,))
    if row is None:
        raise RuntimeError("the video no longer exists")
    return row


class _transient:
    """Database/storage hiccups and killed FFmpeg become TransientStepError (the ASL retries it)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is not None and is_transient(exc):
            raise TransientStepError(str(exc)) from exc
        return False


def _cause(cause: Any) -> str:
    """The message inside a Lambda error's Cause (a JSON string with errorMessage)."""
    import json
    try:
        return str(json.loads(cause).get("errorMessage", cause))
    except (TypeError, ValueError, AttributeError):
        return str(cause or "unknown")
