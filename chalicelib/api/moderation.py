"""Reports, the moderation queue, hiding videos, stream bans and the audit log.

Moderators are platform admins (ADMIN_EMAILS) for every stream, and each
stream's own admins for their stream. Members report videos they can see
(one open report per reporter per video). A moderator resolves a report
(optionally hiding the video, which resolves the video's other open reports
with it) or dismisses it. A hidden video is 404 for everyone but its stream's
admins (chalicelib.access), and gone from lists and search.

Platform moderation outranks the stream's: a hide records its level
('platform' or 'stream'), and only a platform admin lifts a platform hide
(a platform admin hiding a stream-hidden video raises it to platform). A
stream admin never closes reports about a video they uploaded themselves, and
never sees who reported (reporter id and email are left out for them).

A ban removes the user from the stream and keeps them out: invites refuse
them, and without membership they can neither see nor upload. Stream admins
cannot be banned (demote them first), so a stream never loses its last admin
this way.

Every moderator action is written to the audit log in the same transaction
as the action itself: no action without its entry, no entry without its action.
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib import access, db
from chalicelib.api.http import iso, parse_uuid
from chalicelib.auth.users import is_platform_admin, require_platform_admin
from chalicelib.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError

REASONS = ("spam", "harassment", "hate", "violence", "sexual", "copyright", "cheating", "other")
STATUSES = ("pending", "resolved", "dismissed")
MAX_NOTE = 1000  # report details, notes and reasons
MAX_FILTER = 100
PLATFORM, STREAM = "platform", "stream"  # moderation levels, the first outranks the second


# ---------------------------------------------------------------- audit log

def audit(cur: Any, actor: dict, action: str, target_type: str, target_id: Any,
          stream_id: Any = None, details: dict | None = None) -> None:
    """Record an admin action inside the caller's transaction."""
    cur.execute(
        "INSERT INTO audit_log (actor_id, actor_email, action, target_type, target_id, stream_id,"
        " details) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (actor["id"], actor["email"], action, target_type, str(target_id),
         str(stream_id) if stream_id else None, json.dumps(details or {}, default=str)))


def list_audit(user: dict, params: dict, page: int, limit: int, stream_id: str | None = None) -> dict:
    """Audit entries, newest first, filtered by action, actor_id, target_id and stream_id.

    Without stream_id: platform admins only. With it: that stream's admins too.
    """
    if stream_id is None:
        require_platform_admin(user)
    else:
        _require_moderator(user, stream_id)
    filters = _filters(params, {"action": str, "actor_id": "uuid", "target_id": str,
                                "stream_id": "uuid"})
    if stream_id is not None:
        filters["stream_id"] = stream_id
    where = " AND ".join(f"{column} = %({column})s" for column in filters) or "true"
    rows = db.fetch_all(
        f"SELECT *, count(*) OVER () AS total FROM audit_log WHERE {where}"
        " ORDER BY at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s",
        {**filters, "limit": limit, "offset": (page - 1) * limit})
    return {"entries": [{
        "id": r["id"], "at": iso(r["at"]),
        "actor": {"id": str(r["actor_id"]) if r["actor_id"] else None, "email": r["actor_email"]},
        "action": r["action"], "target": {"type": r["target_type"], "id": r["target_id"]},
        "stream_id": str(r["stream_id"]) if r["stream_id"] else None, "details": r["details"],
    } for r in rows], "page": page, "limit": limit, "total": rows[0]["total"] if rows else 0}


# ---------------------------------------------------------------- reports

def report_video(user: dict, video_id: str, body: dict) -> dict:
    """A member's report of a video they can see; 409 while their last one is still open."""
    video = access.require_video_access(user, video_id)
    reason, details = _report_fields(body)
    row = db.fetch_one(
        "INSERT INTO content_reports (video_id, reporter_id, reason, details) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (video_id, reporter_id) WHERE status = 'pending' DO NOTHING RETURNING *",
        (video["id"], user["id"], reason, details))
    if row is None:
        raise ConflictError("You already reported this video")
    return _report({**row, "stream_id": video["stream_id"], "title": video["title"],
                    "hidden_at": video.get("hidden_at"), "reporter_email": user["email"]})


def list_reports(user: dict, params: dict, page: int, limit: int, stream_id: str | None = None) -> dict:
    """The moderation queue, oldest first; status=pending unless asked (status=all for every one).

    Without stream_id: platform admins, every stream. With it: that stream's admins too.
    """
    if stream_id is None:
        require_platform_admin(user)
    else:
        _require_moderator(user, stream_id)
    with_reporter = is_platform_admin(user)
    status = params.get("status", "pending")
    if status not in (*STATUSES, "all"):
        raise ValidationError("Invalid report filter",
                              details=[f"status must be one of {', '.join(STATUSES)}, all"])
    filters = _filters(params, {"video_id": "uuid", "reason": str, "stream_id": "uuid"})
    if stream_id is not None:
        filters["stream_id"] = stream_id
    if status != "all":
        filters["status"] = status
    columns = {"video_id": "r.video_id", "reason": "r.reason", "stream_id": "v.stream_id",
               "status": "r.status"}
    where = " AND ".join(f"{columns[k]} = %({k})s" for k in filters) or "true"
    rows = db.fetch_all(
        "SELECT r.*, v.stream_id, v.title, v.hidden_at, u.email AS reporter_email,"
        " count(*) OVER () AS total FROM content_reports r JOIN videos v ON v.id = r.video_id"
        f" JOIN users u ON u.id = r.reporter_id WHERE v.deleted_at IS NULL AND {where}"
        " ORDER BY r.created_at, r.id LIMIT %(limit)s OFFSET %(offset)s",
        {**filters, "limit": limit, "offset": (page - 1) * limit})
    return {"reports": [_report(r, with_reporter) for r in rows], "status": status, "page": page,
            "limit": limit, "total": rows[0]["total"] if rows else 0}


def resolve_report(user: dict, report_id: str, body: dict) -> dict:
    """Close a report as acted upon; hide_video=true hides the video and resolves its other reports."""
    note = _note(body, allowed=("note", "hide_video"))
    hide = body.get("hide_video", False)
    if not isinstance(hide, bool):
        raise ValidationError("Invalid moderation request", details=["hide_video must be true or false"])
    return _close_report(user, report_id, "resolved", note, hide)


def dismiss_report(user: dict, report_id: str, body: dict) -> dict:
    """Close a report as needing no action."""
    return _close_report(user, report_id, "dismissed", _note(body, allowed=("note",)), False)


def _close_report(user: dict, report_id: str, status: str, note: str, hide: bool) -> dict:
    rid = parse_uuid(report_id, "Report")
    with db.transaction() as cur:
        cur.execute("SELECT r.*, v.stream_id, v.title, v.hidden_at, v.uploaded_by,"
                    " u.email AS reporter_email FROM content_reports r JOIN videos v ON v.id = r.video_id"
                    " JOIN users u ON u.id = r.reporter_id"
                    " WHERE r.id = %s AND v.deleted_at IS NULL FOR UPDATE OF r", (rid,))
        report = cur.fetchone()
        if report is None:
            raise NotFoundError("Report not found")
        level = _check_moderator(cur, user, report["stream_id"])
        if level == STREAM and str(report["uploaded_by"]) == str(user["id"]):
            raise ForbiddenError("You cannot resolve or dismiss reports about your own video;"
                                 " a platform admin or another stream admin decides")
        if report["status"] != "pending":
            raise ConflictError("Report already closed", status=report["status"])
        resolution = "video_hidden" if hide else ("no_action" if status == "dismissed" else "resolved")
        closed = [rid]
        if hide:
            _set_hidden(cur, user, level, report["video_id"], report["stream_id"], True,
                        f"report {rid}: {report['reason']}")
            cur.execute("UPDATE content_reports SET status = 'resolved', resolved_at = now(),"
                        " resolved_by = %s, resolution = 'video_hidden', note = %s"
                        " WHERE video_id = %s AND status = 'pending' AND id <> %s RETURNING id",
                        (user["id"], note, report["video_id"], rid))
            closed += [str(r["id"]) for r in cur.fetchall()]
        cur.execute("UPDATE content_reports SET status = %s, resolved_at = now(), resolved_by = %s,"
                    " resolution = %s, note = %s WHERE id = %s RETURNING *",
                    (status, user["id"], resolution, note, rid))
        row = cur.fetchone()
        audit(cur, user, f"report.{'resolve' if status == 'resolved' else 'dismiss'}", "report", rid,
              report["stream_id"], {"video_id": str(report["video_id"]), "resolution": resolution,
                                    "note": note, "reports_closed": closed})
    return _report({**report, **row, "hidden_at": True if hide else report["hidden_at"]}, level == PLATFORM)


# ---------------------------------------------------------------- hiding videos

def hide_video(user: dict, video_id: str, body: dict) -> dict:
    """Hide a video from everyone but its stream's admins; repeating it changes nothing."""
    reason = _note(body, allowed=("reason",), field="reason")
    return _hide(user, video_id, True, reason)


def unhide_video(user: dict, video_id: str) -> dict:
    """Show a hidden video again; repeating it changes nothing. A platform hide: platform admins only."""
    return _hide(user, video_id, False, "")


def _hide(user: dict, video_id: str, hidden: bool, reason: str) -> dict:
    vid = parse_uuid(video_id, "Video")
    with db.transaction() as cur:
        video = access.lock_video(cur, vid)
        level = _check_moderator(cur, user, video["stream_id"])
        row = _set_hidden(cur, user, level, vid, video["stream_id"], hidden, reason)
    hidden_now = row["hidden_at"] is not None
    return {"video_id": vid, "hidden": hidden_now, "hidden_at": iso(row["hidden_at"]),
            "hidden_by": str(row["hidden_by"]) if row["hidden_by"] else None,
            "level": _level(row) if hidden_now else None, "reason": row["hidden_reason"]}


def _set_hidden(cur: Any, user: dict, level: str, video_id: Any, stream_id: Any, hidden: bool,
                reason: str) -> dict:
    """Hide or show the locked video row at the caller's level; audited only when something changes.

    A stream admin cannot lift a platform hide (403, nothing changes); a platform
    admin hiding a stream-hidden video raises the hide to platform level.
    """
    cur.execute("SELECT hidden_at, hidden_by, hidden_reason, hidden_level FROM videos WHERE id = %s"
                " FOR UPDATE", (video_id,))
    current = cur.fetchone()
    was_hidden = current["hidden_at"] is not None
    if not hidden:
        if not was_hidden:
            return current
        if _level(current) == PLATFORM and level != PLATFORM:
            raise ForbiddenError("This video was hidden by a platform admin;"
                                 " only a platform admin can unhide it")
        cur.execute("UPDATE videos SET hidden_at = NULL, hidden_by = NULL, hidden_reason = NULL,"
                    " hidden_level = NULL WHERE id = %s"
                    " RETURNING hidden_at, hidden_by, hidden_reason, hidden_level", (video_id,))
        row = cur.fetchone()
        audit(cur, user, "video.unhide", "video", video_id, stream_id, {"level": _level(current)})
        return row
    if was_hidden and not (level == PLATFORM and _level(current) == STREAM):
        return current  # already hidden at this level or above
    cur.execute("UPDATE videos SET hidden_at = coalesce(hidden_at, now()), hidden_by = %s,"
                " hidden_reason = %s, hidden_level = %s WHERE id = %s"
                " RETURNING hidden_at, hidden_by, hidden_reason, hidden_level",
                (user["id"], reason, level, video_id))
    row = cur.fetchone()
    details = {"reason": reason, "level": level}
    if was_hidden:
        details["raised_from"] = STREAM
    audit(cur, user, "video.hide", "video", video_id, stream_id, details)
    return row


def _level(row: dict) -> str:
    """A hide's level; one written without a level counts as platform (the safe side)."""
    return row.get("hidden_level") or PLATFORM


# ---------------------------------------------------------------- bans

def ban_user(user: dict, stream_id: str, body: dict) -> dict:
    """Ban a user from the stream: their membership ends and invites refuse them."""
    sid = parse_uuid(stream_id, "Stream")
    unknown = [f"unknown field: {k}" for k in sorted(body) if k not in ("user_id", "reason")]
    target = access.canonical_id(body.get("user_id")) if isinstance(body.get("user_id"), str) else None
    if target is None:
        unknown.append("user_id must be a user id")
    if unknown:
        raise ValidationError("Invalid ban request", details=unknown)
    reason = _note(body, allowed=("user_id", "reason"), field="reason")
    if target == str(user["id"]):
        raise ValidationError("Invalid ban request", details=["you cannot ban yourself"])
    with db.transaction() as cur:
        # Locks the stream row: invite joins take a share lock on it before they check bans.
        _lock_as_moderator(cur, user, sid)
        cur.execute("SELECT email FROM users WHERE id = %s", (target,))
        if cur.fetchone() is None:
            raise NotFoundError("User not found")
        cur.execute("SELECT role FROM stream_members WHERE stream_id = %s AND user_id = %s", (sid, target))
        member = cur.fetchone()
        if member and member["role"] == "admin":
            raise ConflictError("Stream admins cannot be banned; change their role first")
        cur.execute("INSERT INTO stream_bans (stream_id, user_id, banned_by, reason) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING RETURNING *", (sid, target, user["id"], reason))
        ban = cur.fetchone()
        if ban is None:
            raise ConflictError("User is already banned from this stream")
        cur.execute("DELETE FROM stream_members WHERE stream_id = %s AND user_id = %s", (sid, target))
        audit(cur, user, "stream.ban", "user", target, sid,
              {"reason": reason, "removed_role": member["role"] if member else None})
    return _ban(ban)


def unban_user(user: dict, stream_id: str, user_id: str) -> None:
    """Lift a ban; the user may join again through an invite."""
    sid, target = parse_uuid(stream_id, "Stream"), parse_uuid(user_id, "Ban")
    with db.transaction() as cur:
        _lock_as_moderator(cur, user, sid)
        cur.execute("DELETE FROM stream_bans WHERE stream_id = %s AND user_id = %s RETURNING reason",
                    (sid, target))
        if cur.fetchone() is None:
            raise NotFoundError("Ban not found")
        audit(cur, user, "stream.unban", "user", target, sid)


def list_bans(user: dict, stream_id: str, page: int, limit: int) -> dict:
    """A stream's bans, newest first; its moderators."""
    sid = parse_uuid(stream_id, "Stream")
    _require_moderator(user, sid)
    rows = db.fetch_all(
        "SELECT b.*, u.email, u.name, count(*) OVER () AS total FROM stream_bans b"
        " JOIN users u ON u.id = b.user_id WHERE b.stream_id = %s"
        " ORDER BY b.created_at DESC, b.user_id LIMIT %s OFFSET %s", (sid, limit, (page - 1) * limit))
    return {"bans": [{**_ban(r), "email": r["email"], "name": r["name"]} for r in rows],
            "page": page, "limit": limit, "total": rows[0]["total"] if rows else 0}


def is_banned(cur: Any, stream_id: Any, user_id: Any) -> bool:
    """Whether the user is banned from the stream (inside the caller's transaction)."""
    cur.execute("SELECT 1 FROM stream_bans WHERE stream_id = %s AND user_id = %s", (stream_id, user_id))
    return cur.fetchone() is not None


# ---------------------------------------------------------------- helpers

def _require_moderator(user: dict, stream_id: Any) -> None:
    """Platform admins and the stream's admins moderate it; 404 unknown stream, 403 others."""
    if is_platform_admin(user):
        if access.canonical_id(stream_id) is None or \
                db.fetch_one("SELECT 1 FROM streams WHERE id = %s", (access.canonical_id(stream_id),)) is None:
            raise NotFoundError("Stream not found")
        return
    access.require_stream_role(user, stream_id, "admin")


def _check_moderator(cur: Any, user: dict, stream_id: Any) -> str:
    """_require_moderator inside the caller's transaction, for a stream known to exist; the level.

    A platform admin acts as one even in a stream they also administer.
    """
    if is_platform_admin(user):
        return PLATFORM
    cur.execute("SELECT role FROM stream_members WHERE stream_id = %s AND user_id = %s",
                (stream_id, user["id"]))
    member = cur.fetchone()
    access.check_role(member["role"] if member else None, "admin")
    return STREAM


def _lock_as_moderator(cur: Any, user: dict, stream_id: str) -> None:
    """_require_moderator inside the caller's transaction, locking the stream row."""
    if not is_platform_admin(user):
        access.lock_stream_role(cur, user, stream_id, "admin")
        return
    cur.execute("SELECT 1 FROM streams WHERE id = %s FOR UPDATE", (stream_id,))
    if cur.fetchone() is None:
        raise NotFoundError("Stream not found")


def _report_fields(body: dict) -> tuple[str, str]:
    reason = body.get("reason")
    problems = [] if reason in REASONS else [f"reason must be one of {', '.join(REASONS)}"]
    details = _text(body, allowed=("reason", "details"), field="details", error="Invalid report",
                    problems=problems)
    return reason, details


def _note(body: dict, *, allowed: tuple[str, ...], field: str = "note") -> str:
    """The optional free-text field of a moderation body (unknown fields are a 400)."""
    return _text(body, allowed=allowed, field=field, error="Invalid moderation request")


def _text(body: dict, *, allowed: tuple[str, ...], field: str, error: str,
          problems: list[str] | None = None) -> str:
    """body[field] as bounded text ("" when absent); a 400 listing every problem of the body."""
    problems = [f"unknown field: {k}" for k in sorted(body) if k not in allowed] + (problems or [])
    value = body.get(field)
    value = "" if value is None else value
    if not isinstance(value, str) or len(value) > MAX_NOTE:
        problems.append(f"{field} must be a string of at most {MAX_NOTE} characters")
    if problems:
        raise ValidationError(error, details=problems)
    return value.strip()


def _filters(params: dict, allowed: dict[str, Any]) -> dict[str, str]:
    """Equality filters from the query string: ids must be UUIDs, text is bounded."""
    filters, problems = {}, []
    for name, kind in allowed.items():
        if name not in params:
            continue
        value = params[name]
        if kind == "uuid":
            value = access.canonical_id(value)
            if value is None:
                problems.append(f"{name} must be a UUID")
                continue
        elif not value or len(value) > MAX_FILTER or "\x00" in value:
            problems.append(f"{name} must be 1 to {MAX_FILTER} characters")
            continue
        filters[name] = value
    if problems:
        raise ValidationError("Invalid filter", details=problems)
    return filters


def _report(row: dict, with_reporter: bool = True) -> dict:
    """The API's view of a report; without the reporter's identity for the accused stream's admins."""
    reporter = {"reporter_id": str(row["reporter_id"]), "reporter_email": row.get("reporter_email")} \
        if with_reporter else {}
    return {
        "id": str(row["id"]), "video_id": str(row["video_id"]), "stream_id": str(row["stream_id"]),
        "video_title": row["title"], "video_hidden": bool(row.get("hidden_at")), **reporter,
        "reason": row["reason"], "details": row["details"], "status": row["status"],
        "created_at": iso(row["created_at"]), "resolved_at": iso(row["resolved_at"]),
        "resolved_by": str(row["resolved_by"]) if row["resolved_by"] else None,
        "resolution": row["resolution"], "note": row["note"],
    }


def _ban(row: dict) -> dict:
    return {"stream_id": str(row["stream_id"]), "user_id": str(row["user_id"]), "reason": row["reason"],
            "banned_by": str(row["banned_by"]) if row["banned_by"] else None,
            "created_at": iso(row["created_at"])}
