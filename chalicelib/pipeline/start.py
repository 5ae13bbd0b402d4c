"""The upload trigger: S3 ObjectCreated (or MinIO's webhook) → one execution.

S3 delivers events at least once and Lambda retries async invocations, so
the same upload may arrive many times, at once. The (video, etag) pair is
claimed in Postgres first; only the claimer starts the execution, whose name
is derived from the same pair so Step Functions refuses a second one too.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from urllib.parse import unquote_plus

import psycopg2

from chalicelib import aws, db, storage
from chalicelib.config import get_settings

logger = logging.getLogger(__name__)

_NAME_CHARS = re.compile(r"[^0-9A-Za-z_-]")


def execution_name(video_id: str, etag: str) -> str:
    """A name unique per (video, object content), at most 80 valid characters."""
    tag = _NAME_CHARS.sub("", etag.strip('"'))[:40] or "noetag"
    return f"{video_id}-{tag}"[:80]


def parse_records(event: dict) -> list[dict]:
    """(bucket, key, etag, version) of each ObjectCreated record; test events give none."""
    if event.get("Event") == "s3:TestEvent" or "Records" not in event:
        return []
    out = []
    for record in event.get("Records") or []:
        name = str(record.get("eventName", ""))
        if not name.replace("s3:", "").startswith("ObjectCreated"):
            continue
        s3 = record.get("s3") or {}
        obj = s3.get("object") or {}
        key = obj.get("key")
        if not key:
            continue
        out.append({
            "bucket": (s3.get("bucket") or {}).get("name") or get_settings().bucket,
            "key": unquote_plus(key),
            "etag": str(obj.get("eTag") or obj.get("etag") or ""),
            "version_id": obj.get("versionId"),
            "size": obj.get("size"),
        })
    return out


def handle_event(event: dict) -> dict:
    """Start one execution per new upload in the event; a summary of what happened."""
    summary = {"started": [], "duplicates": [], "ignored": []}
    for rec in parse_records(event):
        outcome, detail = start_for_object(rec)
        summary[outcome].append(detail)
    return summary


def start_for_object(rec: dict) -> tuple[str, str]:
    """('started'|'duplicates'|'ignored', key or execution name) for one object."""
    parsed = storage.parse_raw_key(rec["key"])
    if not parsed:
        logger.info("ignoring object outside the upload layout", extra={"key": rec["key"]})
        return "ignored", rec["key"]
    video_id = str(uuid.UUID(parsed[0]))
    head = None if rec.get("resume") else storage.head(rec["key"])
    if not rec.get("resume"):
        if head is None:
            logger.info("ignoring event for an object that is gone", extra={"key": rec["key"]})
            return "ignored", rec["key"]
        refused = _refuse_mismatched_size(video_id, rec["key"], head)
        if refused:
            return "ignored", refused
    etag = rec["etag"] or rec.get("version_id") or (head or {}).get("ETag") or ""
    name = execution_name(video_id, etag)
    try:
        with db.transaction() as cur:
            # A video being deleted (marked, objects going) starts nothing. FOR SHARE: a DELETE
            # marking the row meanwhile waits for this claim, then finds and stops its execution.
            cur.execute("SELECT raw_key FROM videos WHERE id = %s AND deleted_at IS NULL FOR SHARE",
                        (video_id,))
            row = cur.fetchone()
            if row is None or row["raw_key"] != rec["key"]:
                logger.warning("ignoring upload without a (live) video row",
                               extra={"key": rec["key"], "video_id": video_id})
                return "ignored", rec["key"]
            if not rec.get("resume"):
                # An upload URL fills its video once: a later object at the key starts nothing.
                cur.execute("SELECT split_part(etag, '#', 1) AS etag FROM pipeline_executions"
                            " WHERE video_id = %s", (video_id,))
                received = {r["etag"] for r in cur.fetchall()}
                if received and etag.strip('"') not in received:
                    logger.warning("ignoring a second object for a video that received its upload",
                                   extra={"key": rec["key"], "video_id": video_id})
                    return "ignored", rec["key"]
            cur.execute(
                "INSERT INTO pipeline_executions (video_id, etag, execution_name)"
                " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING execution_name",
                (video_id, etag.strip('"'), name))
            claimed = cur.fetchone() is not None
    except psycopg2.errors.ForeignKeyViolation:
        # The video was deleted between the check and the claim.
        return "ignored", rec["key"]
    if not claimed:
        logger.info("duplicate upload event: execution already started",
                    extra={"execution_name": name, "video_id": video_id})
        return "duplicates", name
    payload = {"video_id": video_id, "bucket": rec["bucket"], "key": rec["key"],
               "etag": etag.strip('"'), "execution": name, "shape": get_settings().pipeline_shape}
    if rec.get("resume"):
        payload["resume"] = True
    try:
        resp = aws.client("stepfunctions").start_execution(
            stateMachineArn=get_settings().state_machine_arn, name=name,
            input=json.dumps(payload))
    except aws.client("stepfunctions").exceptions.ExecutionAlreadyExists:
        logger.info("duplicate upload event: execution exists", extra={"execution_name": name})
        return "duplicates", name
    except Exception:
        # Give the claim back so the retried event can start it.
        db.execute("DELETE FROM pipeline_executions WHERE execution_name = %s", (name,))
        raise
    db.execute(
        "UPDATE pipeline_executions SET execution_arn = %s, status = 'running'"
        " WHERE execution_name = %s", (resp["executionArn"], name))
    logger.info("started processing", extra={"execution_name": name, "video_id": video_id})
    return "started", name


def _refuse_mismatched_size(video_id: str, key: str, head: dict) -> str | None:
    """Delete an object whose size is not the declared one, before any step reads it; its key then."""
    row = db.fetch_one("SELECT size_bytes FROM videos WHERE id = %s", (video_id,))
    if row is None or not row["size_bytes"] or int(head["ContentLength"]) == int(row["size_bytes"]):
        return None
    logger.warning("deleting an upload whose size is not the declared one",
                   extra={"key": key, "video_id": video_id, "declared": row["size_bytes"],
                          "received": head["ContentLength"]})
    storage.delete(key)
    return key
