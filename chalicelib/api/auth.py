"""POST /auth/verify, GET /auth/user, POST /auth/refresh, POST /auth/logout."""
from __future__ import annotations

from chalicelib import db
from chalicelib.api.http import iso
from chalicelib.auth import google, tokens, users
from chalicelib.errors import AuthenticationError, ValidationError


def verify(body: dict) -> dict:
    """Exchange a Google ID token for an app token and a refresh token."""
    token = body.get("id_token") or body.get("credential")
    if not token:
        raise ValidationError("Invalid request body", details=["id_token is required"])
    if not isinstance(token, str):
        raise AuthenticationError("Invalid Google ID token")
    claims = google.verify_id_token(token)
    user = users.upsert_from_google(claims)
    app_token, expires_at = tokens.issue_access_token(user)
    with db.transaction() as cur:
        refresh = tokens.issue_refresh_token(cur, user["id"])
    return {"user": users.public(user), "app_token": app_token, "expires_at": iso(expires_at),
            "refresh_token": refresh}


def me(user: dict) -> dict:
    """The signed-in user with their totals."""
    row = db.fetch_one(
        "SELECT (SELECT count(*) FROM videos WHERE uploaded_by = %(id)s) AS total_videos,"
        " (SELECT count(*) FROM likes l JOIN videos v ON v.id = l.video_id"
        "   WHERE v.uploaded_by = %(id)s) AS total_likes", {"id": user["id"]})
    return {**users.public(user), "created_at": iso(user["created_at"]),
            "total_videos": row["total_videos"], "total_likes": row["total_likes"],
            "is_admin": users.is_platform_admin(user)}


def refresh(body: dict) -> dict:
    """Rotate a refresh token: a new app token and a new refresh token."""
    token = body.get("refresh_token")
    if not token:
        raise ValidationError("Invalid request body", details=["refresh_token is required"])
    user, new_refresh = tokens.rotate_refresh_token(token)
    app_token, expires_at = tokens.issue_access_token(user)
    return {"app_token": app_token, "expires_at": iso(expires_at), "refresh_token": new_refresh}


def logout(body: dict) -> dict:
    """Revoke the refresh token's family."""
    token = body.get("refresh_token")
    if not token:
        raise ValidationError("Invalid request body", details=["refresh_token is required"])
    if not tokens.revoke_family(token):
        raise AuthenticationError("Invalid refresh token")
    return {"logged_out": True}
