"""Deleting videos for good: executions, stored objects, then rows (reference/002 order).

Every step is safe to repeat. The row is marked `deleted_at` first, which
hides it from reads; a DELETE that fails half-way (storage down, Lambda
timeout) leaves the mark, and the next DELETE of the same video resumes from
the top: stopping an execution twice or deleting an absent object is a no-op.
"""
from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import access, aws, db, storage, webhooks
from chalicelib.config import get_settings
from chalicelib.errors import UnavailableError

logger = logging.getLogger(__name__)

_ACTIVE = ("running", "starting")


def delete_video(video_id: str) -> None:
    """Mark, stop, delete objects, delete the row: one video, resumable."""
    db.execute("UPDATE videos SET deleted_at = coalesce(deleted_at, now()) WHERE id = %s",
               (video_id,))
    try:
        stop_executions(video_id)
        stop_clip_extraction(video_id)
        abort_uploads(video_id)
        delete_objects(video_id)
    except (BotoCoreError, ClientError, storage.StorageError) as exc:
        logger.warning("video deletion interrupted; a repeated DELETE resumes it",
                       extra={"video_id": video_id, "error": str(exc)})
        raise UnavailableError("Storage unavailable, repeat the request to finish deleting",
                               video_id=video_id) from exc
    # Likes, shares, stage runs, transcripts, embeddings... go by ON DELETE CASCADE.
    with db.transaction() as cur:
        cur.execute("DELETE FROM videos WHERE id = %s AND deleted_at IS NOT NULL"
                    " RETURNING id, stream_id, title", (video_id,))
        row = cur.fetchone()
        deliveries = webhooks.emit(cur, row["stream_id"], "video.deleted", video_id,
                                   webhooks.video_payload(row, status="deleted")) if row else []
    webhooks.start_deliveries(deliveries)
    logger.info("video deleted", extra={"video_id": video_id})


def delete_stream_videos(user: dict, stream_id: str) -> int:
    """Delete every video of a stream (objects included) before the stream goes; admins only. How many."""
    access.require_stream_role(user, stream_id, "admin")
    rows = db.fetch_all("SELECT id FROM videos WHERE stream_id = %s ORDER BY uploaded_at", (stream_id,))
    for row in rows:
        delete_video(str(row["id"]))
    return len(rows)


def stop_executions(video_id: str) -> int:
    """Stop the video's running executions; how many were asked to stop."""
    rows = db.fetch_all(
        "SELECT execution_name, execution_arn FROM pipeline_executions"
        " WHERE video_id = %s AND status = ANY(%s)", (video_id, list(_ACTIVE)))
    client = aws.client("stepfunctions")
    for row in rows:
        arn = row["execution_arn"] or _execution_arn(row["execution_name"])
        if arn:
            try:
                client.stop_execution(executionArn=arn, cause="video deleted")
            except client.exceptions.ExecutionDoesNotExist:
                pass
        db.execute("UPDATE pipeline_executions SET status = 'aborted', finished_at = now()"
                   " WHERE execution_name = %s", (row["execution_name"],))
    return len(rows)


def stop_clip_extraction(video_id: str) -> bool:
    """Stop the video's running highlight run (clips/ objects go with the other prefixes)."""
    row = db.fetch_one("SELECT execution_arn FROM moment_runs WHERE video_id = %s AND status IN"
                       " ('queued', 'analysing', 'extracting')", (video_id,))
    if not row or not row["execution_arn"]:
        return False
    try:
        aws.client("stepfunctions").stop_execution(executionArn=row["execution_arn"], cause="video deleted")
    except aws.client("stepfunctions").exceptions.ExecutionDoesNotExist:
        pass
    return True


def abort_uploads(video_id: str) -> int:
    """Abort the video's unfinished multipart uploads, recorded or not (their parts are stored, and billed);
    how many."""
    aborted = 0
    for key, upload_id in storage.open_multipart_uploads(f"{storage.RAW_PREFIX}{video_id}."):
        aborted += storage.abort_multipart(key, upload_id)
    return aborted


def delete_objects(video_id: str) -> int:
    """Delete every stored object of the video (storage.video_prefixes); how many."""
    return sum(storage.delete_prefix(prefix) for prefix in storage.video_prefixes(video_id))


def _execution_arn(name: str) -> str | None:
    """The ARN an execution claimed but not yet recorded (still 'starting') will have."""
    machine = get_settings().state_machine_arn
    if not machine or ":stateMachine:" not in machine:
        return None
    return machine.replace(":stateMachine:", ":execution:", 1) + ":" + name
