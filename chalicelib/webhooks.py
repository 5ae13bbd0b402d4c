"""Signed webhooks: events from the pipeline's state transitions, delivered to stream admins' endpoints.

Emission: a state transition (a video complete, duplicate, failed or deleted; a
clip ready or failed) calls `emit(cur, ...)` inside its own transaction. The
event row is unique per (type, subject, transition key), the key being the
execution that made the transition, so a retried or redriven step emits it
once; a delivery row is written for every endpoint of the stream that wants
the event. After the commit the caller hands the new delivery ids to
`start_deliveries`, which starts one execution of the webhooks state machine
(stepfunctions/webhooks.asl.json) per delivery, named after it.

Delivery: the machine invokes `deliver` (the webhook_deliver function) and
retries it with exponential backoff for about 68 hours (60 s x 2^0..11); no
API function ever waits on an endpoint. Each attempt POSTs the same body
through chalicelib.outbound (public addresses only, no redirects, bounded in
time and size), signed:

    Clipstream-Webhook-Id:        the event id (the same on every attempt and replay)
    Clipstream-Webhook-Timestamp: seconds since the epoch, at this attempt
    Clipstream-Webhook-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>

and is recorded (time, status code, error, duration). A 2xx answer ends the
delivery; anything else raises WebhookNotDelivered for the machine to retry.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

from chalicelib import aws, db
from chalicelib.config import get_settings

logger = logging.getLogger(__name__)

EVENT_TYPES = ("video.ready", "video.failed", "video.duplicate", "clip.ready", "clip.failed", "video.deleted")
SIGNATURE_VERSION = "v1"
TIMEOUT_S = 10.0                     # per attempt; the Lambda's own timeout is 30 s
MAX_RESPONSE_BYTES = 1024 * 1024     # what a receiver may answer (read and dropped)
# A delivery whose execution did not start (the start failed after the transition committed)
# is started by the next emission past this age.
UNSTARTED_AFTER_S = 60


class WebhookNotDelivered(Exception):
    """The endpoint did not answer 2xx: the state machine retries (its name is the Retry's error)."""


# ------------------------------------------------------------------ emission

def emit(cur: Any, stream_id: Any, type_: str, subject_id: Any, payload: dict,
         transition_key: str | None = "") -> list[str]:
    """Record one event of a transition (once per key) and its deliveries; the delivery ids to start.

    Call inside the transition's transaction; pass the result to start_deliveries after the commit.
    """
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event {type_!r}")
    cur.execute(
        "INSERT INTO webhook_events (stream_id, type, subject_id, transition_key, payload)"
        " VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (type, subject_id, transition_key) DO NOTHING RETURNING id",
        (str(stream_id), type_, str(subject_id), transition_key or "", json.dumps(payload, default=str)))
    row = cur.fetchone()
    if row is None:
        return []
    cur.execute(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id)"
        " SELECT %s, id FROM webhook_endpoints WHERE stream_id = %s AND %s = ANY(events)"
        " RETURNING id", (row["id"], str(stream_id), type_))
    return [str(r["id"]) for r in cur.fetchall()]


def video_payload(video: dict, **extra: Any) -> dict:
    """What a video event says about its video (ids and state, never storage keys)."""
    return {"video_id": str(video["id"]), "stream_id": str(video["stream_id"]), "title": video.get("title"),
            **extra}


def clip_payload(moment: dict, **extra: Any) -> dict:
    """What a clip event says about its clip: the moment's ids, bounds and where to play it (no storage keys)."""
    ready = moment["clip_status"] == "ready"
    return {"moment_id": str(moment["id"]), "video_id": str(moment["video_id"]),
            "stream_id": str(moment["stream_id"]), "title": moment["title"],
            "start_time": moment["start_s"], "end_time": moment["end_s"], "status": moment["clip_status"],
            "duration": moment["clip_duration_s"] if ready else None,
            "clip_url": f"{get_settings().public_base_url}/clips/{moment['id']}/stream" if ready else None,
            **extra}


def start_deliveries(delivery_ids: list[str]) -> None:
    """Start the delivery machine for each delivery (after the emitting transaction committed).

    A start that fails is logged and left for the next call, which also starts
    deliveries left unstarted for over a minute: the transition itself stands.
    """
    machine = get_settings().webhooks_state_machine_arn
    if not machine:
        if delivery_ids:
            logger.warning("WEBHOOKS_STATE_MACHINE_ARN is not set: deliveries wait",
                           extra={"deliveries": delivery_ids})
        return
    try:
        stale = db.fetch_all(
            "SELECT id FROM webhook_deliveries WHERE execution_arn IS NULL AND status = 'pending'"
            " AND created_at < now() - make_interval(secs => %s) ORDER BY created_at LIMIT 20",
            (UNSTARTED_AFTER_S,))
    except db.DatabaseUnavailable:
        stale = []
    from botocore.exceptions import BotoCoreError, ClientError
    client = aws.client("stepfunctions")
    for delivery_id in dict.fromkeys([*delivery_ids, *(str(r["id"]) for r in stale)]):
        try:
            arn = client.start_execution(stateMachineArn=machine, name=delivery_id,
                                         input=json.dumps({"delivery_id": delivery_id}))["executionArn"]
        except client.exceptions.ExecutionAlreadyExists:
            continue
        except (BotoCoreError, ClientError) as exc:
            logger.warning("webhook delivery not started; the next emission retries",
                           extra={"delivery_id": delivery_id, "error": str(exc)})
            continue
        db.execute("UPDATE webhook_deliveries SET execution_arn = %s WHERE id = %s", (arn, delivery_id))


# ------------------------------------------------------------------ signing

def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for one attempt."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={mac}"


def event_body(event: dict) -> bytes:
    """The JSON body of an event: the same bytes on every attempt and replay."""
    created = event["created_at"]
    return json.dumps({"id": str(event["event_id"]), "type": event["type"], "stream_id": str(event["stream_id"]),
                       "created_at": created.isoformat() if hasattr(created, "isoformat") else created,
                       "data": event["payload"]}, separators=(",", ":"), sort_keys=True).encode()


# ------------------------------------------------------------------ delivery (the webhook_deliver function)

def deliver(event: dict) -> dict:
    """One attempt of one delivery; raises WebhookNotDelivered to be retried.

    `give_up: true` (the machine's Catch, once the retries ran out) marks the delivery failed.
    """
    from chalicelib import outbound

    delivery_id = event["delivery_id"]
    row = db.fetch_one(
        "SELECT d.status, e.id AS event_id, e.type, e.stream_id, e.payload, e.created_at, p.url, p.secret"
        " FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id"
        " JOIN webhook_endpoints p ON p.id = d.endpoint_id WHERE d.id = %s", (delivery_id,))
    if row is None:                      # its endpoint (or stream) was deleted meanwhile
        return {"delivery_id": delivery_id, "status": "gone"}
    if row["status"] != "pending":       # a repeated invocation of a finished delivery
        return {"delivery_id": delivery_id, "status": row["status"]}
    if event.get("give_up"):
        db.execute("UPDATE webhook_deliveries SET status = 'failed', finished_at = now()"
                   " WHERE id = %s AND status = 'pending'", (delivery_id,))
        return {"delivery_id": delivery_id, "status": "failed"}
    body = event_body(row)
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json",
               "Clipstream-Webhook-Id": str(row["event_id"]),
               "Clipstream-Webhook-Timestamp": str(timestamp),
               "Clipstream-Webhook-Signature": sign(row["secret"], timestamp, body)}
    started = time.monotonic()
    code, error = None, None
    try:
        answer = outbound.request(row["url"], method="POST", body=body, headers=headers,
                                  max_bytes=MAX_RESPONSE_BYTES, timeout_s=TIMEOUT_S, max_redirects=0,
                                  sink=lambda _chunk: None)
        code = answer.status
        if not 200 <= code < 300:
            error = f"the endpoint answered {code}"
    except outbound.OutboundRefused as exc:
        error = exc.reason
    duration_ms = int((time.monotonic() - started) * 1000)
    with db.transaction() as cur:
        cur.execute("INSERT INTO webhook_attempts (delivery_id, status_code, error, duration_ms)"
                    " VALUES (%s, %s, %s, %s)", (delivery_id, code, error, duration_ms))
        if error is None:
            cur.execute("UPDATE webhook_deliveries SET status = 'succeeded', finished_at = now()"
                        " WHERE id = %s", (delivery_id,))
    if error is not None:
        raise WebhookNotDelivered(error)
    return {"delivery_id": delivery_id, "status": "succeeded", "status_code": code}
