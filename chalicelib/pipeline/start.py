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
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

import boto3
import psycopg2

from chalicelib import db, storage
from chalicelib.config import get_settings

logger = logging.getLogger(__name__)

_RAW_KEY = re.compile(r"^raw-uploads/([0-9a-f-]{36})\.(mp4|avi|mov)$")
_NAME_CHARS = re.compile(r"[^0-9A-Za-z_-]")


@lru_cache(maxsize=1)
def sfn_client() -> Any:
    s = get_settings()
    return boto3.client("stepfunctions", region_name=s.region, endpoint_url=s.aws_endpoint_url)


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
    match = _RAW_KEY.match(rec["key"])
    if not match:
        logger.info("ignoring object outside the upload layout", extra={"key": rec["key"]})
        return "ignored", rec["key"]
    video_id = str(uuid.UUID(match.group(1)))
    etag = rec["etag"] or rec.get("version_id") or ""
    if not etag:
        head = storage.head(rec["key"])
        if head is None:
            logger.info("ignoring event for an object that is gone", extra={"key": rec["key"]})
            return "ignored", rec["key"]
        etag = head["ETag"]
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
               "etag": etag.strip('"'), "execution": name}
    if rec.get("resume"):
        payload["resume"] = True
    try:
        resp = sfn_client().start_execution(
            stateMachineArn=get_settings().state_machine_arn, name=name,
            input=json.dumps(payload))
    except sfn_client().exceptions.ExecutionAlreadyExists:
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
