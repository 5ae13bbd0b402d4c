"""Who is calling: users from Google claims, the current user from the bearer token."""
from __future__ import annotations

from typing import Any

from chalicelib import db
from chalicelib.auth import tokens
from chalicelib.config import get_settings
from chalicelib.errors import AuthenticationError, ForbiddenError


def upsert_from_google(claims: dict[str, Any]) -> dict:
    """The user a verified Google ID token names, created or updated.

    The account is the Google `sub`: the same sub with a new email is the same
    user with the email updated. A sub seen for the first time takes over an
    existing row only if that row has no sub yet (made before accounts were
    bound to subs) and carries the token's email; otherwise it is a new
    account, even when another account carries the same email (an address
    that changed hands gets none of its previous owner's streams or grants).
    The first account to sign in with an email claims it (see is_platform_admin).
    """
    sub = str(claims["sub"])
    email = str(claims["email"]).strip().lower()
    name = str(claims.get("name") or email.split("@")[0])[:200]
    avatar = claims.get("picture")
    fields = {"sub": sub, "email": email, "name": name, "avatar": avatar}
    with db.transaction() as cur:
        cur.execute("UPDATE users SET email = %(email)s, name = %(name)s, avatar = %(avatar)s,"
                    " updated_at = now() WHERE google_sub = %(sub)s RETURNING *", fields)
        user = cur.fetchone()
        if user is None:  # bind an unbound row with this email, once (rechecked under its lock)
            cur.execute("UPDATE users SET google_sub = %(sub)s, name = %(name)s, avatar = %(avatar)s,"
                        " updated_at = now() WHERE email = %(email)s AND google_sub IS NULL"
                        " RETURNING *", fields)
            user = cur.fetchone()
        if user is None:  # a new account; a concurrent first sign-in of the same sub updates
            cur.execute("INSERT INTO users (google_sub, email, name, avatar)"
                        " VALUES (%(sub)s, %(email)s, %(name)s, %(avatar)s)"
                        " ON CONFLICT (google_sub) DO UPDATE SET email = EXCLUDED.email,"
                        "   name = EXCLUDED.name, avatar = EXCLUDED.avatar, updated_at = now()"
                        " RETURNING *", fields)
            user = cur.fetchone()
        cur.execute("INSERT INTO email_claims (email, user_id) VALUES (%s, %s)"
                    " ON CONFLICT (email) DO NOTHING", (email, user["id"]))
        cur.execute("SELECT user_id FROM email_claims WHERE email = %s", (email,))
        user["owns_email"] = cur.fetchone()["user_id"] == user["id"]
    return user


def bearer_token(request: Any) -> str | None:
    header = (request.headers or {}).get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# The user row behind each verified token, for the token's lifetime in this container:
# a warm API Lambda then answers a signed-in request without a users query. Rows are
# never deleted and their id (all that access checks read) never changes; a new
# sign-in, which may change email, name or avatar, comes with a new token (an older
# token shows the account's previous email until it expires).
_users_by_token = tokens.TokenCache()


# The row plus whether the account claimed its email first (is_platform_admin reads it).
_USER_SELECT = ("SELECT u.*, EXISTS (SELECT 1 FROM email_claims c WHERE c.email = u.email"
                " AND c.user_id = u.id) AS owns_email FROM users u WHERE u.id = %s")


# The request's bearer token and what it proved, kept on the request object so the
# rate limiter and the route read the header and verify the token once per request.
_PARSED = "_clipstream_bearer"


def _parsed(request: Any) -> tuple[str | None, dict | None, AuthenticationError | None]:
    """(token, its claims, why it is invalid) for the request, worked out on first use."""
    parsed = getattr(request, _PARSED, None)
    if parsed is None:
        token, claims, error = bearer_token(request), None, None
        if token is not None:
            try:
                claims = tokens.decode_access_token(token)
            except AuthenticationError as exc:
                error = exc
        parsed = (token, claims, error)
        setattr(request, _PARSED, parsed)
    return parsed


def bearer_claims(request: Any) -> dict | None:
    """The claims of the request's valid bearer token; None without a token, 401 for an invalid one."""
    _, claims, error = _parsed(request)
    if error is not None:
        raise error
    return claims


def current_user(request: Any) -> dict:
    """The signed-in user, or 401."""
    token, _, _ = _parsed(request)
    if token is None:
        raise AuthenticationError("Authentication required")
    user = _users_by_token.get(token)
    if user is not None:
        return dict(user)  # a copy: callers may add keys
    claims = bearer_claims(request)
    user = db.fetch_one(_USER_SELECT, (claims["sub"],))
    if user is None:
        raise AuthenticationError("Invalid or expired token")
    _users_by_token.put(token, claims["exp"], dict(user))
    return user


def is_platform_admin(user: dict) -> bool:
    """A platform admin: the email is in ADMIN_EMAILS and this account claimed it first.

    The grant follows the account that first signed in with the address, not
    the address: a Google account that later carries the same email (the
    address reused after the first was deleted, or renamed to it) is not an
    admin. A user without `owns_email` (not from current_user) is looked up.
    """
    email = str(user.get("email") or "").lower()
    if email not in get_settings().admin_emails:
        return False
    if "owns_email" in user:  # loaded with the user (current_user), so no query inside a transaction
        return bool(user["owns_email"])
    return db.fetch_one("SELECT 1 AS claimed FROM email_claims WHERE email = %s AND user_id = %s",
                        (email, str(user["id"]))) is not None


def require_platform_admin(user: dict) -> None:
    if not is_platform_admin(user):
        raise ForbiddenError("Admin access required")


def public(user: dict) -> dict:
    """The user fields the API shows."""
    return {"id": str(user["id"]), "email": user["email"], "name": user["name"],
            "avatar": user["avatar"]}
