"""App access tokens (JWT) and rotating refresh tokens."""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import uuid
from functools import lru_cache
from typing import Any

import jwt

from chalicelib import db
from chalicelib.config import get_settings
from chalicelib.errors import AuthenticationError

logger = logging.getLogger(__name__)

ALGORITHMS = ["HS256"]  # pinned: a token naming any other algorithm is refused
ISSUER = "clipstream"


@lru_cache(maxsize=1)
def signing_key() -> str:
    """The JWT key: JWT_SECRET locally, a Secrets Manager secret in AWS."""
    settings = get_settings()
    if settings.jwt_secret_arn:
        import boto3
        return boto3.client("secretsmanager", region_name=settings.region).get_secret_value(
            SecretId=settings.jwt_secret_arn)["SecretString"]
    secret = settings.jwt_secret
    if len(secret) < 32:
        raise RuntimeError("JWT_SECRET must be set to at least 32 characters")
    return secret


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(ts: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z; None stays None."""
    if ts is None:
        return None
    return ts.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def issue_access_token(user: dict) -> tuple[str, str]:
    """(token, expires_at ISO) for a user row."""
    now = _now()
    exp = now + dt.timedelta(seconds=get_settings().jwt_ttl_s)
    claims = {"sub": str(user["id"]), "email": user["email"], "iss": ISSUER, "typ": "access",
              "iat": int(now.timestamp()), "exp": int(exp.timestamp()), "jti": uuid.uuid4().hex}
    return jwt.encode(claims, signing_key(), algorithm=ALGORITHMS[0]), iso(exp)


def decode_access_token(token: str) -> dict[str, Any]:
    """The claims of a valid app token, or AuthenticationError."""
    try:
        claims = jwt.decode(token, signing_key(), algorithms=ALGORITHMS, issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "iss"]}, leeway=5)
    except jwt.PyJWTError:
        raise AuthenticationError("Invalid or expired token") from None
    if claims.get("typ") != "access":
        raise AuthenticationError("Invalid or expired token")
    try:
        uuid.UUID(claims["sub"])
    except (ValueError, TypeError, AttributeError):
        raise AuthenticationError("Invalid or expired token") from None
    return claims


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_refresh_token(cur: Any, user_id: str, family_id: str | None = None) -> str:
    """A new refresh token (stored hashed) in a new or existing family."""
    token = secrets.token_urlsafe(32)
    cur.execute(
        "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at)"
        " VALUES (%s, %s, %s, now() + make_interval(secs => %s))",
        (user_id, family_id or str(uuid.uuid4()), _hash(token), get_settings().refresh_ttl_s))
    return token


def rotate_refresh_token(token: str) -> tuple[dict, str]:
    """(user row, new refresh token) for a valid refresh token, which is used up.

    A token presented a second time means it leaked: its whole family is
    revoked, so neither the thief nor the owner can go on refreshing.
    """
    invalid = AuthenticationError("Invalid refresh token")
    if not isinstance(token, str) or not token or len(token) > 200:
        raise invalid
    reuse = False
    with db.transaction() as cur:
        cur.execute("SELECT * FROM refresh_tokens WHERE token_hash = %s FOR UPDATE", (_hash(token),))
        row = cur.fetchone()
        if row is None:
            raise invalid
        if row["used_at"] is not None or row["revoked_at"] is not None:
            cur.execute("UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now())"
                        " WHERE family_id = %s", (row["family_id"],))
            reuse = row["used_at"] is not None
        elif row["expires_at"] <= _now():
            raise invalid
        else:
            cur.execute("UPDATE refresh_tokens SET used_at = now() WHERE id = %s", (row["id"],))
            new_token = issue_refresh_token(cur, row["user_id"], row["family_id"])
            cur.execute("SELECT * FROM users WHERE id = %s", (row["user_id"],))
            return cur.fetchone(), new_token
    # Committed the family's revocation above; now refuse.
    if reuse:
        logger.warning("refresh token reused: family revoked", extra={"family_id": str(row["family_id"])})
    raise invalid


def revoke_family(token: str) -> bool:
    """Log out: revoke the token's whole family; False if the token is unknown."""
    if not isinstance(token, str) or not token:
        return False
    return db.execute(
        "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE family_id ="
        " (SELECT family_id FROM refresh_tokens WHERE token_hash = %s)", (_hash(token),)) > 0
