"""Invite links: admins create and manage them, anyone signed in joins with one.

An invite grants creator or viewer, never admin (admins are made through
PUT /streams/{id}/members/{user_id}). A revoked invite is gone: every route,
the public one and join included, answers it exactly like an unknown code
(404), so a revoked link reveals nothing about the stream. Expired and used-up
invites are still shown to admins and publicly with valid=false.

Creating, changing and revoking an invite is audited (invite.create,
invite.update, invite.revoke). The entry names the invite by the first
AUDIT_CODE_CHARS characters of its code, never the whole code: platform admins
read every audit entry but are no members, and a whole code would let them join.
"""
from __future__ import annotations

import datetime as dt
import math
import secrets
from typing import Any

from chalicelib import access, db
from chalicelib.api import moderation
from chalicelib.api.http import iso, parse_uuid
from chalicelib.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError

INVITE_ROLES = ("creator", "viewer")
DEFAULT_EXPIRY = dt.timedelta(days=7)
MAX_EXPIRES_IN_HOURS = 24 * 365 * 10
MAX_USAGE_LIMIT = 1_000_000
MAX_CODE_LENGTH = 128
_CODE_BYTES = 12  # 16 URL-safe characters, 96 random bits
AUDIT_CODE_CHARS = 6  # what the audit log shows of a code: recognisable, 60 bits still secret

_ACTIVE = ("revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
           " AND (usage_limit IS NULL OR use_count < usage_limit)")
_STATE = ("(expires_at IS NOT NULL AND expires_at <= now()) AS expired,"
          " (usage_limit IS NOT NULL AND use_count >= usage_limit) AS used_up")


# ---------------------------------------------------------------- admin routes

def list_invites(user: dict, stream_id: str, page: int, limit: int) -> dict:
    """A stream's active invites (not revoked, expired or used up), newest first; admins only."""
    stream_id = parse_uuid(stream_id, "Stream")
    access.require_stream_role(user, stream_id, "admin")
    with db.transaction() as cur:
        cur.execute(f"SELECT count(*) AS n FROM invites WHERE stream_id = %s AND {_ACTIVE}",
                    (stream_id,))
        total = cur.fetchone()["n"]
        cur.execute(f"SELECT *, {_STATE} FROM invites WHERE stream_id = %s AND {_ACTIVE}"
                    " ORDER BY created_at DESC, code LIMIT %s OFFSET %s",
                    (stream_id, limit, (page - 1) * limit))
        rows = cur.fetchall()
    return {"invites": [_invite(r) for r in rows], "page": page, "limit": limit, "total": total}


def create_invite(user: dict, stream_id: str, body: dict) -> dict:
    """A new invite link for the stream; admins only.

    body: role (creator|viewer), expires_in_hours or expires_at (ISO 8601, or
    null for never; 7 days when neither is given), usage_limit (null: unlimited).
    """
    stream_id = parse_uuid(stream_id, "Stream")
    access.require_stream_role(user, stream_id, "admin")
    fields = _invite_fields(body, creating=True)
    with db.transaction() as cur:
        while True:  # a collision of 96 random bits is practically impossible, but cheap to handle
            cur.execute(
                f"INSERT INTO invites (code, stream_id, role, created_by, expires_at, usage_limit)"
                f" VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (code) DO NOTHING"
                f" RETURNING *, {_STATE}",
                (new_code(), stream_id, fields["role"], user["id"], fields["expires_at"],
                 fields.get("usage_limit")))
            row = cur.fetchone()
            if row is not None:
                _audit(cur, user, "invite.create", row, {
                    "role": row["role"], "expires_at": iso(row["expires_at"]),
                    "usage_limit": row["usage_limit"]})
                return _invite(row)


def get_invite(user: dict, stream_id: str, code: str) -> dict:
    """One invite of the stream with whether it can still be used; admins only."""
    stream_id = parse_uuid(stream_id, "Stream")
    access.require_stream_role(user, stream_id, "admin")
    row = db.fetch_one(f"SELECT *, {_STATE} FROM invites WHERE code = %s AND stream_id = %s"
                       " AND revoked_at IS NULL", (_code(code), stream_id))
    if row is None:
        raise NotFoundError("Invite not found")
    return _invite(row)


def update_invite(user: dict, stream_id: str, code: str, body: dict) -> dict:
    """Change an invite's role, expiry and/or usage limit; admins only."""
    stream_id = parse_uuid(stream_id, "Stream")
    access.require_stream_role(user, stream_id, "admin")
    fields = _invite_fields(body, creating=False)
    with db.transaction() as cur:
        cur.execute("SELECT use_count FROM invites WHERE code = %s AND stream_id = %s"
                    " AND revoked_at IS NULL FOR UPDATE", (_code(code), stream_id))
        current = cur.fetchone()
        if current is None:
            raise NotFoundError("Invite not found")
        limit = fields.get("usage_limit")
        if limit is not None and limit < current["use_count"]:
            raise ValidationError("Invalid invite parameters", details=[
                f"usage_limit cannot be below the current use count ({current['use_count']})"])
        sets = ", ".join(f"{column} = %({column})s" for column in fields)
        cur.execute(f"UPDATE invites SET {sets} WHERE code = %(code)s AND stream_id = %(stream_id)s"
                    f" RETURNING *, {_STATE}", {**fields, "code": code, "stream_id": stream_id})
        row = cur.fetchone()
        _audit(cur, user, "invite.update", row,
               {k: iso(row[k]) if k == "expires_at" else row[k] for k in fields})
        return _invite(row)


def revoke_invite(user: dict, stream_id: str, code: str) -> None:
    """Revoke an invite: it stops working at once; admins only."""
    stream_id = parse_uuid(stream_id, "Stream")
    access.require_stream_role(user, stream_id, "admin")
    with db.transaction() as cur:
        cur.execute("UPDATE invites SET revoked_at = now() WHERE code = %s AND stream_id = %s"
                    " AND revoked_at IS NULL RETURNING code, stream_id, role, use_count",
                    (_code(code), stream_id))
        row = cur.fetchone()
        if row is None:
            raise NotFoundError("Invite not found")
        _audit(cur, user, "invite.revoke", row, {"role": row["role"], "use_count": row["use_count"]})


# ---------------------------------------------------------------- public and join

def public_invite(code: str) -> dict:
    """What an invite link leads to, for anyone holding it (no sign-in needed)."""
    row = db.fetch_one(
        f"SELECT i.code, i.role, i.expires_at, {_STATE}, s.id AS stream_id, s.name, s.description,"
        " (SELECT count(*) FROM stream_members m WHERE m.stream_id = s.id) AS member_count"
        " FROM invites i JOIN streams s ON s.id = i.stream_id"
        " WHERE i.code = %s AND i.revoked_at IS NULL", (_code(code),))
    if row is None:
        raise NotFoundError("Invalid invite code")
    return {
        "code": row["code"], "role": row["role"], "expires_at": iso(row["expires_at"]),
        "stream": {"id": str(row["stream_id"]), "name": row["name"],
                   "description": row["description"], "member_count": row["member_count"]},
        **_validity(row)}


def join(user: dict, code: str) -> dict:
    """Join the invite's stream with its role.

    404 unknown or revoked code, 400 expired, 403 banned, 409 already a member, 400 used up.
    The use is counted by a conditional UPDATE in the same transaction as the
    membership INSERT, so concurrent joins never pass usage_limit and a join
    that ends in 409 consumes nothing.
    """
    code = _code(code)
    with db.transaction() as cur:
        cur.execute(f"SELECT stream_id, role, {_STATE} FROM invites"
                    " WHERE code = %s AND revoked_at IS NULL", (code,))
        invite = cur.fetchone()
        if invite is None:
            raise NotFoundError("Invalid invite code")
        if invite["expired"]:
            raise ValidationError("Invite expired")
        # A ban locks the stream row FOR UPDATE: this lock orders the two, so the
        # check below sees any ban committed before this join could add the member.
        cur.execute("SELECT 1 FROM streams WHERE id = %s FOR KEY SHARE", (invite["stream_id"],))
        if moderation.is_banned(cur, invite["stream_id"], user["id"]):
            raise ForbiddenError("You are banned from this stream")
        cur.execute("SELECT 1 FROM stream_members WHERE stream_id = %s AND user_id = %s",
                    (invite["stream_id"], user["id"]))
        if cur.fetchone():
            raise ConflictError("Already a member of this stream")
        # Under concurrent joins Postgres re-evaluates this WHERE on the row's
        # latest version once the competing update commits: the count is exact.
        cur.execute(f"UPDATE invites SET use_count = use_count + 1 WHERE code = %s AND {_ACTIVE}"
                    " RETURNING stream_id, role", (code,))
        granted = cur.fetchone()
        if granted is None:
            _refuse_join(cur, code)
        cur.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING RETURNING joined_at",
                    (granted["stream_id"], user["id"], granted["role"]))
        member = cur.fetchone()
        if member is None:  # joined concurrently through another request: roll the use back
            raise ConflictError("Already a member of this stream")
    return {"stream_id": str(granted["stream_id"]), "role": granted["role"],
            "joined_at": iso(member["joined_at"])}


def new_code() -> str:
    """An unguessable URL-safe invite code."""
    return secrets.token_urlsafe(_CODE_BYTES)


# ---------------------------------------------------------------- helpers

def _audit(cur: Any, user: dict, action: str, invite: dict, details: dict) -> None:
    """An invite.* audit entry, naming the invite by a prefix of its code (see the module doc)."""
    moderation.audit(cur, user, action, "invite", invite["code"][:AUDIT_CODE_CHARS],
                     invite["stream_id"], details)


def _refuse_join(cur: Any, code: str) -> None:
    """Why the conditional use-count UPDATE matched nothing, as the documented error."""
    cur.execute(f"SELECT revoked_at, {_STATE} FROM invites WHERE code = %s", (code,))
    row = cur.fetchone()
    if row is None or row["revoked_at"] is not None:
        raise NotFoundError("Invalid invite code")
    if row["expired"]:
        raise ValidationError("Invite expired")
    raise ValidationError("Usage limit exceeded")


def _code(code: str) -> str:
    """The code as given, or 404 for anything no invite could have."""
    if not isinstance(code, str) or not code or len(code) > MAX_CODE_LENGTH:
        raise NotFoundError("Invalid invite code")
    return code


def _validity(row: dict) -> dict[str, Any]:
    """{valid} and, for an invite that can no longer be used, the reason."""
    if row["expired"]:
        return {"valid": False, "reason": "expired"}
    if row["used_up"]:
        return {"valid": False, "reason": "usage_limit_exceeded"}
    return {"valid": True}


def _invite(row: dict) -> dict:
    return {
        "code": row["code"], "role": row["role"], "expires_at": iso(row["expires_at"]),
        "usage_limit": row["usage_limit"], "use_count": row["use_count"],
        "created_by": str(row["created_by"]), "created_at": iso(row["created_at"]),
        **_validity(row)}


def _invite_fields(body: dict, *, creating: bool) -> dict[str, Any]:
    """Validated role / expires_at / usage_limit from body; 400 listing every problem."""
    details: list[str] = []
    fields: dict[str, Any] = {}
    if "role" in body or creating:
        if body.get("role") in INVITE_ROLES:
            fields["role"] = body["role"]
        else:
            details.append("role must be creator or viewer")
    if "expires_in_hours" in body and "expires_at" in body:
        details.append("give expires_in_hours or expires_at, not both")
    elif "expires_in_hours" in body:
        hours = body["expires_in_hours"]
        if not _is_number(hours) or not 0 < hours <= MAX_EXPIRES_IN_HOURS:
            details.append(f"expires_in_hours must be a number above 0 and at most "
                           f"{MAX_EXPIRES_IN_HOURS}")
        else:
            fields["expires_at"] = _now() + dt.timedelta(hours=hours)
    elif "expires_at" in body:
        if body["expires_at"] is None:
            fields["expires_at"] = None
        else:
            expires_at = _parse_time(body["expires_at"])
            if expires_at is None:
                details.append("expires_at must be an ISO 8601 date-time")
            elif expires_at <= _now():
                details.append("expires_at must be in the future")
            else:
                fields["expires_at"] = expires_at
    elif creating:
        fields["expires_at"] = _now() + DEFAULT_EXPIRY
    if "usage_limit" in body:
        limit = body["usage_limit"]
        if limit is None:
            fields["usage_limit"] = None
        elif not isinstance(limit, int) or isinstance(limit, bool) \
                or not 1 <= limit <= MAX_USAGE_LIMIT:
            details.append(f"usage_limit must be an integer from 1 to {MAX_USAGE_LIMIT}, or null")
        else:
            fields["usage_limit"] = limit
    if not details and not fields:
        details.append("at least one of role, expires_in_hours, expires_at, usage_limit is required")
    if details:
        raise ValidationError("Invalid invite parameters", details=details)
    return fields


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse_time(value: Any) -> dt.datetime | None:
    """An aware datetime from an ISO 8601 string (naive means UTC), or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
