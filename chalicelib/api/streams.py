"""Streams and their members (reference/000 Stream Management).

Roles: admin (owns and manages), creator (uploads), viewer (watches). Only
admins change a stream, its members' roles or its invites; a stream always
keeps at least one admin.
"""
from __future__ import annotations

import json
from typing import Any

from psycopg2.extras import Json

from chalicelib import access, db, glossary, video_deletion
from chalicelib.api import moderation
from chalicelib.api.http import iso, parse_uuid
from chalicelib.auth import users
from chalicelib.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError

MAX_NAME = 100
MAX_DESCRIPTION = 2000
MAX_SETTINGS_BYTES = 16 * 1024
LAST_ADMIN = "A stream must keep at least one admin"


# ---------------------------------------------------------------- streams

def list_streams(user: dict, page: int, limit: int) -> dict:
    """The caller's streams, newest first, with their role and counts."""
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM stream_members WHERE user_id = %s", (user["id"],))
        total = cur.fetchone()["n"]
        cur.execute(
            "SELECT s.id, s.name, s.description, s.created_at, m.role,"
            " (SELECT count(*) FROM stream_members x WHERE x.stream_id = s.id) AS member_count,"
            " (SELECT count(*) FROM videos v WHERE v.stream_id = s.id AND v.deleted_at IS NULL AND v.hidden_at IS NULL) AS video_count"
            " FROM stream_members m JOIN streams s ON s.id = m.stream_id"
            " WHERE m.user_id = %s ORDER BY s.created_at DESC, s.id LIMIT %s OFFSET %s",
            (user["id"], limit, (page - 1) * limit))
        rows = cur.fetchall()
    streams = [{"id": str(r["id"]), "name": r["name"], "description": r["description"],
                "role": r["role"], "member_count": r["member_count"],
                "video_count": r["video_count"], "created_at": iso(r["created_at"])}
               for r in rows]
    return {"streams": streams, "page": page, "limit": limit, "total": total}


def create_stream(user: dict, body: dict) -> dict:
    """A new stream owned by the caller, who becomes its first admin."""
    fields = _stream_fields(body, creating=True)
    with db.transaction() as cur:
        cur.execute(
            "INSERT INTO streams (name, description, owner_id, settings)"
            " VALUES (%s, %s, %s, %s) RETURNING *",
            (fields["name"], fields.get("description", ""), user["id"],
             Json(fields.get("settings", {}))))
        stream = cur.fetchone()
        cur.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, 'admin')",
                    (stream["id"], user["id"]))
    return {"id": str(stream["id"]), "name": stream["name"], "description": stream["description"],
            "owner_id": str(stream["owner_id"]), "created_at": iso(stream["created_at"])}


def get_stream(user: dict, stream_id: str) -> dict:
    """A stream's details for one of its members."""
    stream_id = parse_uuid(stream_id, "Stream")
    role = access.require_stream_role(user, stream_id, "viewer")
    return _stream_details(stream_id, role)


def update_stream(user: dict, stream_id: str, body: dict) -> dict:
    """Change name, description and/or settings (settings are replaced whole); admins only."""
    stream_id = parse_uuid(stream_id, "Stream")
    role = access.require_stream_role(user, stream_id, "admin")
    fields = _stream_fields(body, creating=False)
    sets = ", ".join(f"{column} = %({column})s" for column in fields)
    params = {**fields, "id": stream_id}
    if "settings" in params:
        params["settings"] = Json(params["settings"])
    with db.transaction() as cur:
        cur.execute(f"UPDATE streams SET {sets}, updated_at = now() WHERE id = %(id)s", params)
        moderation.audit(cur, user, "stream.update", "stream", stream_id, stream_id,
                         {"fields": sorted(fields), **{k: fields[k] for k in ("name",) if k in fields}})
    return _stream_details(stream_id, role)


def delete_stream(user: dict, stream_id: str) -> None:
    """Delete a stream; members, invites and videos go with it. Admins only.

    The audit entry (stream.delete) is written with the row's DELETE and outlives it.
    """
    stream_id = parse_uuid(stream_id, "Stream")
    videos = video_deletion.delete_stream_videos(user, stream_id)
    with db.transaction() as cur:
        access.lock_stream_role(cur, user, stream_id, "admin")
        cur.execute("DELETE FROM streams WHERE id = %s RETURNING name", (stream_id,))
        moderation.audit(cur, user, "stream.delete", "stream", stream_id, stream_id,
                         {"name": cur.fetchone()["name"], "videos_deleted": videos})


def _stream_details(stream_id: str, role: str) -> dict:
    row = db.fetch_one(
        "SELECT s.*, u.id AS o_id, u.email AS o_email, u.name AS o_name, u.avatar AS o_avatar,"
        " (SELECT count(*) FROM stream_members m WHERE m.stream_id = s.id) AS member_count"
        " FROM streams s JOIN users u ON u.id = s.owner_id WHERE s.id = %s", (stream_id,))
    if row is None:
        raise NotFoundError("Stream not found")
    owner = users.public({"id": row["o_id"], "email": row["o_email"], "name": row["o_name"],
                          "avatar": row["o_avatar"]})
    return {"id": str(row["id"]), "name": row["name"], "description": row["description"],
            "owner": owner, "settings": row["settings"], "user_role": role,
            "member_count": row["member_count"], "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"])}


def _stream_fields(body: dict, *, creating: bool) -> dict[str, Any]:
    """The validated name/description/settings present in body; 400 listing every problem."""
    details: list[str] = []
    fields: dict[str, Any] = {}
    if "name" in body or creating:
        name = body.get("name")
        if name is None or (isinstance(name, str) and not name.strip()):
            details.append("name is required")
        elif not isinstance(name, str):
            details.append("name must be a string")
        elif len(name.strip()) > MAX_NAME:
            details.append(f"name must be at most {MAX_NAME} characters")
        else:
            fields["name"] = name.strip()
    if body.get("description") is not None:
        description = body["description"]
        if not isinstance(description, str):
            details.append("description must be a string")
        elif len(description) > MAX_DESCRIPTION:
            details.append(f"description must be at most {MAX_DESCRIPTION} characters")
        else:
            fields["description"] = description.strip()
    elif "description" in body:
        fields["description"] = ""
    if "settings" in body:
        settings = body["settings"]
        if not isinstance(settings, dict):
            details.append("settings must be an object")
        elif len(json.dumps(settings)) > MAX_SETTINGS_BYTES:
            details.append(f"settings must be at most {MAX_SETTINGS_BYTES} bytes of JSON")
        else:
            fields["settings"] = settings
    if not details and not fields:
        details.append("at least one of name, description, settings is required")
    if details:
        raise ValidationError("Invalid stream data", details=details)
    return fields


# ---------------------------------------------------------------- glossary

def get_glossary(user: dict, stream_id: str) -> dict:
    """The stream's game vocabulary and the default one it adds to; members only."""
    stream_id = parse_uuid(stream_id, "Stream")
    access.require_stream_role(user, stream_id, "viewer")
    return _glossary_body(stream_id, db.fetch_one(
        "SELECT entries, include_default, updated_at FROM stream_glossaries WHERE stream_id = %s",
        (stream_id,)))


def put_glossary(user: dict, stream_id: str, body: dict) -> dict:
    """Replace the stream's glossary ({terms, include_default}); admins only, 400 listing every problem."""
    stream_id = parse_uuid(stream_id, "Stream")
    access.require_stream_role(user, stream_id, "admin")
    details = [f"unknown field {k!r}" for k in sorted(set(body) - {"terms", "include_default"})]
    entries, problems = glossary.parse_entries(body.get("terms"))
    details += problems
    include_default = body.get("include_default", True)
    if not isinstance(include_default, bool):
        details.append("include_default must be true or false")
    if details:
        raise ValidationError("Invalid glossary", details=details)
    with db.transaction() as cur:
        access.lock_stream_role(cur, user, stream_id, "admin")
        cur.execute(
            "INSERT INTO stream_glossaries (stream_id, entries, include_default, updated_by)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (stream_id) DO UPDATE SET entries = EXCLUDED.entries,"
            " include_default = EXCLUDED.include_default, updated_by = EXCLUDED.updated_by,"
            " updated_at = now() RETURNING entries, include_default, updated_at",
            (stream_id, Json(entries), include_default, user["id"]))
        row = cur.fetchone()
        moderation.audit(cur, user, "stream.glossary", "stream", stream_id, stream_id,
                         {"terms": len(entries), "include_default": include_default})
    return _glossary_body(stream_id, row)


def _glossary_body(stream_id: str, row: dict | None) -> dict:
    entries = row["entries"] if row else []
    include_default = row["include_default"] if row else True
    return {"stream_id": str(stream_id), "terms": entries, "include_default": include_default,
            "default_terms": list(glossary.DEFAULT_GLOSSARY),
            "limits": {"terms": glossary.MAX_TERMS, "term_chars": glossary.MAX_TERM_CHARS,
                       "variants_per_term": glossary.MAX_VARIANTS_PER_TERM},
            "updated_at": iso(row["updated_at"]) if row else None}


# ---------------------------------------------------------------- members

def list_members(user: dict, stream_id: str, page: int, limit: int) -> dict:
    """A stream's members (admins first, then by join time); members only."""
    stream_id = parse_uuid(stream_id, "Stream")
    access.require_stream_role(user, stream_id, "viewer")
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM stream_members WHERE stream_id = %s", (stream_id,))
        total = cur.fetchone()["n"]
        cur.execute(
            _MEMBER_SELECT + " WHERE m.stream_id = %s"
            " ORDER BY CASE m.role WHEN 'admin' THEN 0 WHEN 'creator' THEN 1 ELSE 2 END,"
            " m.joined_at, m.user_id LIMIT %s OFFSET %s",
            (stream_id, limit, (page - 1) * limit))
        rows = cur.fetchall()
    return {"members": [_member(r) for r in rows], "page": page, "limit": limit, "total": total}


def update_member(user: dict, stream_id: str, member_id: str, body: dict) -> dict:
    """Set a member's role; admins only, and never demoting the last admin."""
    stream_id = parse_uuid(stream_id, "Stream")
    with db.transaction() as cur:
        access.lock_stream_role(cur, user, stream_id, "admin")
        role = body.get("role")
        if role not in access.ROLES:
            raise ValidationError("Invalid member data",
                                  details=["role must be admin, creator or viewer"])
        target = _locked_member(cur, stream_id, member_id)
        if target["role"] == "admin" and role != "admin":
            _ensure_another_admin(cur, stream_id)
        cur.execute("UPDATE stream_members SET role = %s WHERE stream_id = %s AND user_id = %s",
                    (role, stream_id, target["user_id"]))
        if role != target["role"]:
            moderation.audit(cur, user, "member.role", "user", target["user_id"], stream_id,
                             {"from": target["role"], "to": role})
        cur.execute(_MEMBER_SELECT + " WHERE m.stream_id = %s AND m.user_id = %s",
                    (stream_id, target["user_id"]))
        return _member(cur.fetchone())


def remove_member(user: dict, stream_id: str, member_id: str) -> None:
    """Remove a member: admins remove anyone, members remove themselves; never the last admin."""
    stream_id = parse_uuid(stream_id, "Stream")
    with db.transaction() as cur:
        role = access.lock_stream_role(cur, user, stream_id, "viewer")
        is_self = access.canonical_id(member_id) == str(user["id"])
        if not is_self and role != "admin":
            raise ForbiddenError("Admin access required")
        target = _locked_member(cur, stream_id, member_id)
        if target["role"] == "admin":
            _ensure_another_admin(cur, stream_id)
        cur.execute("DELETE FROM stream_members WHERE stream_id = %s AND user_id = %s",
                    (stream_id, target["user_id"]))
        if not is_self:
            moderation.audit(cur, user, "member.remove", "user", target["user_id"], stream_id,
                             {"role": target["role"]})


_MEMBER_SELECT = ("SELECT m.user_id, m.role, m.joined_at, u.name, u.email, u.avatar"
                  " FROM stream_members m JOIN users u ON u.id = m.user_id")


def _member(row: dict) -> dict:
    return {"user_id": str(row["user_id"]), "name": row["name"], "email": row["email"],
            "avatar": row["avatar"], "role": row["role"], "joined_at": iso(row["joined_at"])}


def _locked_member(cur: Any, stream_id: str, member_id: str) -> dict:
    member_id = access.canonical_id(member_id)
    if member_id is None:
        raise NotFoundError("Member not found")
    cur.execute("SELECT user_id, role FROM stream_members WHERE stream_id = %s AND user_id = %s"
                " FOR UPDATE", (stream_id, member_id))
    row = cur.fetchone()
    if row is None:
        raise NotFoundError("Member not found")
    return row


def _ensure_another_admin(cur: Any, stream_id: str) -> None:
    cur.execute("SELECT count(*) AS n FROM stream_members WHERE stream_id = %s AND role = 'admin'",
                (stream_id,))
    if cur.fetchone()["n"] <= 1:
        raise ConflictError(LAST_ADMIN)
