"""Live updates over WebSocket: who is connected, what they follow, and telling them.

A signed-in client opens the WebSocket API with its access token in the query
(`?token=...`: browsers cannot set headers on a WebSocket) and subscribes to a
stream or a video:

    {"action": "subscribe", "stream_id": "..."}   new videos and their progress in the stream
    {"action": "subscribe", "video_id": "..."}    the video's progress and merged edits
    {"action": "unsubscribe", "stream_id" | "video_id": "..."}
    {"action": "ping"}

Each request is answered on the socket (`{"type": "subscribed", ...}`, `{"type":
"pong"}`, or `{"type": "error", "status": 4xx, "error": ..., "details": [...]}`, the
REST error shape). A subscription is checked with the rules of the REST reads
(chalicelib.access: a stream's members; a video's members, hidden videos its
admins), and again at every publish, so someone removed from a stream hears
nothing more. Events: `video.created`, `video.processing` and `video.updated`
(reference/003's broadcast of a merged sync), each naming the video, its stream
and its processing state; clients read details through the REST API.

Publishing never fails its caller (a pipeline step, an upload, a sync): it logs
and goes on; when nobody follows the video it costs one indexed query.
Connections and subscriptions live in Postgres (migration 0023); messages go out
through API Gateway's management API (post_to_connection), which the local
stack serves too, and a connection it reports gone is forgotten.
"""
from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

from chalicelib import access, aws, db
from chalicelib.config import get_settings
from chalicelib.stages import STAGE_NAMES
from chalicelib.errors import AuthenticationError, ClipstreamError, ValidationError

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4096          # requests are tiny; anything bigger is refused unread
MAX_SUBSCRIPTIONS = 100           # per connection
_TARGETS = ("stream_id", "video_id")
ACTIONS = ("subscribe", "unsubscribe", "ping")


# ------------------------------------------------------------------ the WebSocket routes

def connect(connection_id: str, query: dict | None) -> dict:
    """$connect: the access token in the query signs the connection in; 401 refuses it."""
    from chalicelib.auth.users import current_user
    token = (query or {}).get("token") or ""
    try:
        user = current_user(SimpleNamespace(headers={"authorization": f"Bearer {token}"}))
    except AuthenticationError as exc:
        return {"statusCode": 401, "body": json.dumps({"error": exc.message, "details": []})}
    db.execute("INSERT INTO live_connections (connection_id, user_id) VALUES (%s, %s)"
               " ON CONFLICT (connection_id) DO NOTHING", (connection_id, str(user["id"])))
    return {"statusCode": 200}


def disconnect(connection_id: str) -> None:
    """$disconnect: forget the connection and its subscriptions."""
    forget(connection_id)


def receive(connection_id: str, body: Any) -> None:
    """$default: one client request, answered on the socket."""
    try:
        reply = _handle(connection_id, body)
    except ClipstreamError as exc:
        reply = {"type": "error", "status": exc.status, "error": exc.message,
                 "details": list(exc.details or [])}
    send(connection_id, reply)


def _handle(connection_id: str, body: Any) -> dict:
    text = body if isinstance(body, str) else ""
    if len(text.encode()) > MAX_MESSAGE_BYTES:
        raise ValidationError("Invalid message", details=[f"a message has at most {MAX_MESSAGE_BYTES} bytes"])
    try:
        message = json.loads(text)
    except ValueError:
        raise ValidationError("Invalid message", details=["the message must be a JSON object"]) from None
    if not isinstance(message, dict):
        raise ValidationError("Invalid message", details=["the message must be a JSON object"])
    action = message.get("action")
    if action not in ACTIONS:
        raise ValidationError("Invalid message", details=[f"action must be one of {', '.join(ACTIONS)}"])
    if action == "ping":
        return {"type": "pong"}
    user = _user_of(connection_id)
    targets = [k for k in _TARGETS if k in message]
    unknown = sorted(k for k in message if k not in (*_TARGETS, "action"))
    if len(targets) != 1 or unknown:
        raise ValidationError("Invalid message", details=[
            *(f"unknown field: {k}" for k in unknown),
            *([] if len(targets) == 1 else ["name exactly one of stream_id, video_id"])])
    kind = targets[0]
    value = message[kind]
    if action == "unsubscribe":
        topic = _topic(kind, access.canonical_id(value))
        db.execute("DELETE FROM live_subscriptions WHERE connection_id = %s AND topic = %s",
                   (connection_id, topic))
        return {"type": "unsubscribed", "topic": topic}
    if kind == "stream_id":
        access.require_stream_role(user, value)
        stream_id = access.canonical_id(value)
        topic = _topic(kind, stream_id)
    else:
        video = access.require_video_access(user, value)
        stream_id, topic = str(video["stream_id"]), _topic(kind, str(video["id"]))
    _subscribe(connection_id, topic, stream_id)
    return {"type": "subscribed", "topic": topic}


def _user_of(connection_id: str) -> dict:
    row = db.fetch_one("SELECT user_id FROM live_connections WHERE connection_id = %s", (connection_id,))
    if row is None:  # connected before a restart that lost it, or already disconnected
        raise AuthenticationError("Connection not signed in: reconnect with a token")
    return {"id": str(row["user_id"])}


def _topic(kind: str, value: str | None) -> str:
    return f"{kind.split('_')[0]}:{value}"


def _subscribe(connection_id: str, topic: str, stream_id: str) -> None:
    with db.transaction() as cur:
        cur.execute("SELECT connection_id FROM live_connections WHERE connection_id = %s FOR UPDATE",
                    (connection_id,))
        if cur.fetchone() is None:
            raise AuthenticationError("Connection not signed in: reconnect with a token")
        cur.execute("SELECT count(*) AS n FROM live_subscriptions WHERE connection_id = %s", (connection_id,))
        if cur.fetchone()["n"] >= MAX_SUBSCRIPTIONS:
            raise ValidationError("Too many subscriptions",
                                  details=[f"a connection follows at most {MAX_SUBSCRIPTIONS} topics"])
        cur.execute("INSERT INTO live_subscriptions (connection_id, topic, stream_id) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING", (connection_id, topic, stream_id))


# ------------------------------------------------------------------ publishing

# The video's state and every connection that may hear about it: subscribed to the
# video or its stream, and still a member of the stream (its admins for a hidden video).
_AUDIENCE = """
WITH v AS (SELECT id, stream_id, processing_index, status, hidden_at, deleted_at FROM videos WHERE id = %s)
SELECT v.stream_id, v.processing_index, v.status, v.deleted_at,
       array_remove(array_agg(DISTINCT s.connection_id), NULL) AS connections
FROM v
LEFT JOIN live_subscriptions s ON s.topic IN ('video:' || v.id, 'stream:' || v.stream_id)
 AND EXISTS (SELECT 1 FROM live_connections c JOIN stream_members m
             ON m.user_id = c.user_id AND m.stream_id = v.stream_id
             WHERE c.connection_id = s.connection_id AND (v.hidden_at IS NULL OR m.role = 'admin'))
GROUP BY v.stream_id, v.processing_index, v.status, v.deleted_at
"""


def publish_video(video_id: Any, kind: str, **fields: Any) -> int:
    """Tell the video's followers (and its stream's) about it; how many were told. Never raises."""
    try:
        if get_settings().live_endpoint_url is None:
            return 0
        row = db.fetch_one(_AUDIENCE, (str(video_id),))
        if row is None or not row["connections"] or row["deleted_at"] is not None:
            return 0
        event = {"type": kind, "video_id": str(video_id), "stream_id": str(row["stream_id"]),
                 "processing_index": row["processing_index"],
                 "stage": STAGE_NAMES.get(row["processing_index"]), "status": row["status"], **fields}
        return sum(send(c, event) for c in row["connections"])
    except Exception:  # noqa: BLE001 - a live update is best effort: its caller's work stands
        logger.exception("live update not published", extra={"video_id": str(video_id), "event": kind})
        return 0


def send(connection_id: str, message: dict) -> bool:
    """Post one message to a connection; False (and the connection forgotten) when it is gone."""
    client = aws.client("apigatewaymanagementapi")
    try:
        client.post_to_connection(ConnectionId=connection_id,
                                  Data=json.dumps(message, separators=(",", ":"), default=str).encode())
        return True
    except client.exceptions.GoneException:
        forget(connection_id)
        return False
    except Exception:  # noqa: BLE001 - one unreachable client must not stop the others
        logger.warning("live update not delivered", exc_info=True, extra={"connection_id": connection_id})
        return False


def forget(connection_id: str) -> None:
    """Drop a connection and its subscriptions."""
    db.execute("DELETE FROM live_connections WHERE connection_id = %s", (connection_id,))

