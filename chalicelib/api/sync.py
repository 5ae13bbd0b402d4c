"""POST /sync and GET /sync: merging edits made on several devices (reference/003).

A device sends the operations it made offline with the vector clock of the
state it had seen; the server merges them (chalicelib.sync.crdt: last writer
wins per field, tags as an observed-remove set) under the video's row lock
and answers with the merged video and the server's clock. Any member reads
the log; the uploader (while a creator) and stream admins write.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from chalicelib.api import videos
from chalicelib.api.http import iso, parse_uuid
from chalicelib.errors import ValidationError
from chalicelib.sync import store

MAX_OPERATIONS = 100
MAX_OP_ID = 100
DEFAULT_LOG_LIMIT = 100
MAX_LOG_LIMIT = 1000
_DEVICE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SYNC_FIELDS = {"video_id", "client_vector_clock", "client_version", "device_id", "operations"}
# How each operation type's value is checked: the PUT validation of that field.
_FIELD_OF = {"update_title": "title", "update_description": "description",
             "update_category": "category", "update_featured": "featured"}

# What a client's clock says about the server's, before the batch.
SYNC_TYPES = {"equal": "up_to_date", "before": "client_behind", "after": "client_ahead",
              "concurrent": "concurrent"}


def post_sync(user: dict, body: dict) -> dict:
    """Merge a device's operations into the video; the merged video and the server clock."""
    problems = [f"unknown field: {k}" for k in sorted(body) if k not in _SYNC_FIELDS]
    if "video_id" not in body:
        problems.append("video_id is required")
    clock, version, clock_problems = store.parse_clock_and_version(
        body.get("client_vector_clock"), body.get("client_version"), "client_vector_clock",
        "client_version")
    problems += clock_problems
    device = body.get("device_id")
    if device is not None and (not isinstance(device, str) or not _DEVICE.match(device)):
        problems.append("device_id must be 1 to 64 letters, digits, '.', '_' or '-'")
    edits = _edits(body.get("operations", []), problems)
    if problems:
        raise ValidationError("Invalid sync request", details=problems)
    video_id = parse_uuid(str(body["video_id"]), "Video")
    if edits:
        videos.require_editor(user, video_id)
    else:
        videos.visible_video(user, video_id)
    actor = f"{user['id']}:{device}" if device else str(user["id"])
    outcome = store.apply_edits(video_id, str(user["id"]), actor, edits, client_clock=clock,
                                client_version=version, source="sync",
                                clock_name="client_vector_clock", invalid="Invalid sync request")
    row = outcome.row
    return {
        "video_id": video_id, "actor": actor,
        "sync_type": SYNC_TYPES[outcome.relation],
        "action": _action(outcome, bool(edits)),
        "applied": len(outcome.applied), "duplicates": outcome.duplicates,
        "conflicts_resolved": outcome.conflicts,
        "merged_video": videos.details(row, user),
        "server_vector_clock": dict(row["vector_clock"] or {}),
        "server_version": row["version"],
    }


def get_sync(user: dict, params: dict) -> dict:
    """The video's logged operations after `since` (an ISO time), with the server's clock."""
    problems = []
    if not params.get("video_id"):
        problems.append("video_id is required")
    since = None
    if params.get("since"):
        try:
            since = datetime.fromisoformat(params["since"].replace("Z", "+00:00").replace(" ", "+"))
        except ValueError:
            problems.append("since must be an ISO 8601 time")
    limit = DEFAULT_LOG_LIMIT
    try:
        limit = int(params.get("limit", DEFAULT_LOG_LIMIT))
        if not 1 <= limit <= MAX_LOG_LIMIT:
            problems.append(f"limit must be 1 to {MAX_LOG_LIMIT}")
    except ValueError:
        problems.append("limit must be an integer")
    if problems:
        raise ValidationError("Invalid sync request", details=problems)
    video = videos.visible_video(user, parse_uuid(params["video_id"], "Video"))
    rows, more = store.operations_since(str(video["id"]), since, limit)
    return {
        "video_id": str(video["id"]), "since": iso(since),
        "operations": [_operation(r) for r in rows], "has_more": more,
        "server_vector_clock": dict(video["vector_clock"] or {}),
        "server_version": video["version"],
    }


def _edits(raw: Any, problems: list[str]) -> list[store.Edit]:
    """Validated edits of a request's operations; problems name the operation's index."""
    if not isinstance(raw, list):
        problems.append("operations must be a list")
        return []
    if len(raw) > MAX_OPERATIONS:
        problems.append(f"operations must have at most {MAX_OPERATIONS} items")
        return []
    edits = []
    for i, op in enumerate(raw):
        where = f"operations[{i}]"
        if not isinstance(op, dict) or not isinstance(op.get("type"), str) or op["type"] not in store.OP_TYPES:
            problems.append(f"{where}: type must be one of {', '.join(store.OP_TYPES)}")
            continue
        op_id = op.get("id")
        if op_id is not None and (not isinstance(op_id, str) or not 0 < len(op_id) <= MAX_OP_ID):
            problems.append(f"{where}: id must be a string of 1 to {MAX_OP_ID} characters")
            continue
        try:
            value = _value(op)
        except ValidationError as exc:
            problems += [f"{where}: {d}" for d in exc.details or [exc.message]]
            continue
        edits.append(store.Edit(op["type"], value, **({"id": op_id} if op_id else {})))
    return edits


def _value(op: dict) -> Any:
    """An operation's value, checked like the same field in PUT /videos/{id}."""
    kind = op["type"]
    if kind in _FIELD_OF:
        if "value" not in op:
            raise ValidationError(details=["value is required"])
        return videos.validate_edit({_FIELD_OF[kind]: op["value"]})[_FIELD_OF[kind]]
    if kind == "set_tags":
        tags = op.get("tags", op.get("value"))
        return videos.validate_edit({"tags": tags if tags is not None else None})["tags"]
    tag = op.get("tag", op.get("value"))
    return videos.validate_edit({"tags": [tag]})["tags"][0]


def _action(outcome: store.Outcome, sent_edits: bool) -> str:
    if outcome.applied:
        return "applied" if outcome.relation in ("equal", "after") else "merged_concurrent"
    if sent_edits:
        return "already_applied"
    return "none" if outcome.relation in ("equal", "after") else "fast_forward"


def _operation(row: dict) -> dict:
    out = {"id": row["op_id"], "type": row["op_type"], "actor": row["actor"],
           "user_id": str(row["user_id"]) if row["user_id"] else None,
           "field": row["field"], "value": row["value"],
           "vector_clock": row["vector_clock"], "version": row["version"],
           "source": row["source"], "created_at": iso(row["created_at"])}
    if row["kind"] in ("add", "remove"):
        out["observed"] = row["observed"]
    return out
