"""Webhook endpoints of a stream, their deliveries and replays (stream admins and platform admins).

The secret is returned once, by the POST that creates the endpoint; no other
answer carries it. URLs are checked like every user-given URL
(chalicelib.outbound: https, public addresses only) when registered, and again
at every delivery attempt.
"""
from __future__ import annotations

import secrets

from chalicelib import db, outbound, webhooks
from chalicelib.api.http import parse_uuid
from chalicelib.api.moderation import _require_moderator
from chalicelib.errors import ConflictError, NotFoundError, ValidationError

MAX_ENDPOINTS_PER_STREAM = 10


def _endpoint(row: dict, secret: str | None = None) -> dict:
    out = {"id": str(row["id"]), "stream_id": str(row["stream_id"]), "url": row["url"],
           "events": list(row["events"]), "created_at": row["created_at"].isoformat()}
    if secret is not None:
        out["secret"] = secret
    return out


def _fields(body: dict) -> tuple[str, list[str]]:
    details = [f"unknown field: {k}" for k in sorted(body) if k not in ("url", "events")]
    url, events = body.get("url"), body.get("events")
    if not isinstance(url, str) or not url:
        details.append("url is required (an https URL)")
    else:
        try:
            outbound.check_url(url)
        except outbound.OutboundRefused as exc:
            details.append(f"url: {exc.reason}")
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        details.append(f"events must be a non-empty list of: {', '.join(webhooks.EVENT_TYPES)}")
    else:
        details += [f"events: unknown event {e!r}" for e in events if e not in webhooks.EVENT_TYPES]
    if details:
        raise ValidationError("Invalid webhook endpoint", details=details)
    return url, sorted(set(events))


def create_endpoint(user: dict, stream_id: str, body: dict) -> dict:
    """Register an endpoint; the answer carries its signing secret, shown this once."""
    sid = parse_uuid(stream_id, "Stream")
    _require_moderator(user, sid)
    url, events = _fields(body)
    secret = "whsec_" + secrets.token_urlsafe(32)
    with db.transaction() as cur:
        cur.execute("SELECT id FROM streams WHERE id = %s FOR UPDATE", (sid,))
        cur.execute("SELECT count(*) AS n FROM webhook_endpoints WHERE stream_id = %s", (sid,))
        if cur.fetchone()["n"] >= MAX_ENDPOINTS_PER_STREAM:
            raise ConflictError(f"A stream has at most {MAX_ENDPOINTS_PER_STREAM} webhook endpoints")
        cur.execute("INSERT INTO webhook_endpoints (stream_id, url, events, secret, created_by)"
                    " VALUES (%s, %s, %s, %s, %s) RETURNING *", (sid, url, events, secret, user["id"]))
        row = cur.fetchone()
    return _endpoint(row, secret)


def list_endpoints(user: dict, stream_id: str, page: int, limit: int) -> dict:
    """The stream's endpoints, oldest first (no secrets)."""
    sid = parse_uuid(stream_id, "Stream")
    _require_moderator(user, sid)
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM webhook_endpoints WHERE stream_id = %s", (sid,))
        total = cur.fetchone()["n"]
        cur.execute("SELECT * FROM webhook_endpoints WHERE stream_id = %s ORDER BY created_at, id"
                    " LIMIT %s OFFSET %s", (sid, limit, (page - 1) * limit))
        rows = cur.fetchall()
    return {"webhooks": [_endpoint(r) for r in rows], "page": page, "limit": limit, "total": total}


def _own_endpoint(user: dict, stream_id: str, webhook_id: str) -> tuple[str, str]:
    sid = parse_uuid(stream_id, "Stream")
    _require_moderator(user, sid)
    wid = parse_uuid(webhook_id, "Webhook")
    if db.fetch_one("SELECT 1 FROM webhook_endpoints WHERE id = %s AND stream_id = %s", (wid, sid)) is None:
        raise NotFoundError("Webhook not found")
    return sid, wid


def delete_endpoint(user: dict, stream_id: str, webhook_id: str) -> None:
    """Remove an endpoint; its pending deliveries stop at their next attempt."""
    sid, wid = _own_endpoint(user, stream_id, webhook_id)
    db.execute("DELETE FROM webhook_endpoints WHERE id = %s AND stream_id = %s", (wid, sid))


def _delivery(row: dict, attempts: list[dict]) -> dict:
    return {"id": str(row["id"]), "event_id": str(row["event_id"]), "event_type": row["type"],
            "status": row["status"], "replay_of": str(row["replay_of"]) if row["replay_of"] else None,
            "created_at": row["created_at"].isoformat(),
            "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
            "attempts": [{"at": a["attempted_at"].isoformat(), "status_code": a["status_code"],
                          "error": a["error"], "duration_ms": a["duration_ms"]} for a in attempts]}


_DELIVERY_SQL = ("SELECT d.id, d.event_id, d.status, d.replay_of, d.created_at, d.finished_at, e.type"
                 " FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id")


def list_deliveries(user: dict, stream_id: str, webhook_id: str, page: int, limit: int) -> dict:
    """The endpoint's deliveries, newest first, each with its attempts."""
    _, wid = _own_endpoint(user, stream_id, webhook_id)
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM webhook_deliveries WHERE endpoint_id = %s", (wid,))
        total = cur.fetchone()["n"]
        cur.execute(_DELIVERY_SQL + " WHERE d.endpoint_id = %s ORDER BY d.created_at DESC, d.id"
                    " LIMIT %s OFFSET %s", (wid, limit, (page - 1) * limit))
        rows = cur.fetchall()
        cur.execute("SELECT * FROM webhook_attempts WHERE delivery_id = ANY(%s::uuid[]) ORDER BY id",
                    ([str(r["id"]) for r in rows],))
        attempts: dict[str, list[dict]] = {}
        for a in cur.fetchall():
            attempts.setdefault(str(a["delivery_id"]), []).append(a)
    return {"deliveries": [_delivery(r, attempts.get(str(r["id"]), [])) for r in rows],
            "page": page, "limit": limit, "total": total}


def replay_delivery(user: dict, stream_id: str, webhook_id: str, delivery_id: str) -> dict:
    """Send a delivery's event again (same event id, same body, a fresh signature) as a new delivery."""
    _, wid = _own_endpoint(user, stream_id, webhook_id)
    did = parse_uuid(delivery_id, "Delivery")
    with db.transaction() as cur:
        cur.execute("SELECT event_id FROM webhook_deliveries WHERE id = %s AND endpoint_id = %s", (did, wid))
        original = cur.fetchone()
        if original is None:
            raise NotFoundError("Delivery not found")
        cur.execute("INSERT INTO webhook_deliveries (event_id, endpoint_id, replay_of) VALUES (%s, %s, %s)"
                    " RETURNING id", (original["event_id"], wid, did))
        new_id = str(cur.fetchone()["id"])
        cur.execute(_DELIVERY_SQL + " WHERE d.id = %s", (new_id,))
        row = cur.fetchone()
    webhooks.start_deliveries([new_id])
    return _delivery(row, [])
