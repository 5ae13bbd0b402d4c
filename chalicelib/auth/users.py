"""Who is calling: users from Google claims, the current user from the bearer token."""
from __future__ import annotations

from typing import Any

from chalicelib import db
from chalicelib.auth import tokens
from chalicelib.config import get_settings
from chalicelib.errors import AuthenticationError, ForbiddenError


def upsert_from_google(claims: dict[str, Any]) -> dict:
    """Create or update the user a verified Google ID token names."""
    email = str(claims["email"]).strip().lower()
    name = str(claims.get("name") or email.split("@")[0])[:200]
    avatar = claims.get("picture")
    return db.fetch_one(
        "INSERT INTO users (google_sub, email, name, avatar) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (email) DO UPDATE SET google_sub = EXCLUDED.google_sub,"
        "   name = EXCLUDED.name, avatar = EXCLUDED.avatar, updated_at = now()"
        " RETURNING *", (str(claims["sub"]), email, name, avatar))


def bearer_token(request: Any) -> str | None:
    header = (request.headers or {}).get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# The user row behind each verified token, for the token's lifetime in this container:
# a warm API Lambda then answers a signed-in request without a users query. Rows are
# never deleted and their id and email (all that access and admin checks read) never
# change; a new sign-in, which may change name or avatar, comes with a new token.
_users_by_token = tokens.TokenCache()


def current_user(request: Any) -> dict:
    """The signed-in user, or 401."""
    token = bearer_token(request)
    if token is None:
        raise AuthenticationError("Authentication required")
    user = _users_by_token.get(token)
    if user is not None:
        return dict(user)  # a copy: callers may add keys
    claims = tokens.decode_access_token(token)
    user = db.fetch_one("SELECT * FROM users WHERE id = %s", (claims["sub"],))
    if user is None:
        raise AuthenticationError("Invalid or expired token")
    _users_by_token.put(token, claims["exp"], dict(user))
    return user


def is_platform_admin(user: dict) -> bool:
    """Platform admins are configured by email (ADMIN_EMAILS)."""
    return user["email"].lower() in get_settings().admin_emails


def require_platform_admin(user: dict) -> None:
    if not is_platform_admin(user):
        raise ForbiddenError("Admin access required")


def public(user: dict) -> dict:
    """The user fields the API shows."""
    return {"id": str(user["id"]), "email": user["email"], "name": user["name"],
            "avatar": user["avatar"]}
