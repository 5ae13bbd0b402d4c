"""App access tokens (JWT) and rotating refresh tokens.

Access tokens, and the playback tokens of chalicelib.api.hls, are HS256 JWTs
(RFC 7519 claims over an RFC 7515 compact JWS) signed and verified here with
the standard library's hmac, hashlib, base64 and json. Not PyJWT: it imports
`cryptography` at import time for its RSA and EC algorithms, which costs
35-50 ms of every cold start of every Lambda that loads app.py although HS256
needs none of it, and the other maintained JOSE libraries (joserfc,
python-jose, authlib, jwcrypto) do the same. The verifier is strict: the
algorithm is pinned (no "none", no RS/ES confusion), the signature is checked
in constant time before the payload is parsed, and the claims are checked as
PyJWT checks them; tests/api/test_tokens.py holds it to PyJWT's verdicts and
mints with PyJWT to prove the tokens interoperate.

A verified access token is remembered (by its exact string, until it
expires) by this container, so repeated requests skip the HMAC and JSON work.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import threading
import time
import uuid
from functools import lru_cache
from typing import Any, Iterable

from chalicelib import db
from chalicelib.config import get_settings
from chalicelib.errors import AuthenticationError

logger = logging.getLogger(__name__)

ALGORITHMS = ["HS256"]  # pinned: a token naming any other algorithm is refused
ISSUER = "clipstream"
LEEWAY_S = 5
MAX_TOKEN_LENGTH = 4096
ACCESS_CLAIMS = ("exp", "iat", "sub", "iss")
_HEADER = {"alg": ALGORITHMS[0], "typ": "JWT"}
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


# A rotated key is read again after this long (Powertools keeps the value meanwhile).
SECRET_MAX_AGE_S = 300


@lru_cache(maxsize=1)
def _secrets() -> Any:
    """Powertools' Secrets Manager provider on our client (the configured endpoint and role)."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from chalicelib import aws
    return SecretsProvider(boto3_client=aws.client("secretsmanager"))


def signing_key() -> str:
    """The JWT key: JWT_SECRET locally, a Secrets Manager secret in AWS (cached SECRET_MAX_AGE_S)."""
    settings = get_settings()
    if settings.jwt_secret_arn:
        return _secrets().get(settings.jwt_secret_arn, max_age=SECRET_MAX_AGE_S)
    secret = settings.jwt_secret
    if len(secret) < 32:
        raise RuntimeError("JWT_SECRET must be set to at least 32 characters")
    return secret


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# ---------------------------------------------------------------- HS256 JWT

def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(segment: str) -> bytes:
    if len(segment) % 4 == 1:  # no base64 text has this length
        raise ValueError("bad base64url length")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _mac(signing_input: str) -> bytes:
    return hmac.new(signing_key().encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest()


def sign(claims: dict[str, Any]) -> str:
    """An HS256 JWT carrying claims, signed with the app's key."""
    head = _b64encode(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    return f"{head}.{body}.{_b64encode(_mac(f'{head}.{body}'))}"


def verify(token: Any, *, typ: str, require: Iterable[str], leeway: float = LEEWAY_S) -> dict[str, Any]:
    """The claims of an HS256 JWT we signed, of type typ, with the required claims; else 401."""
    invalid = AuthenticationError("Invalid or expired token")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise invalid
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT.fullmatch(p) for p in parts) or not parts[2]:
        raise invalid
    try:
        header = json.loads(_b64decode(parts[0]))
        signature = _b64decode(parts[2])
    except (ValueError, RecursionError):  # binascii.Error and JSON errors are ValueErrors
        raise invalid from None
    if not isinstance(header, dict) or header.get("alg") != ALGORITHMS[0] or "crit" in header:
        raise invalid
    if not hmac.compare_digest(signature, _mac(f"{parts[0]}.{parts[1]}")):
        raise invalid
    try:
        claims = json.loads(_b64decode(parts[1]))
    except (ValueError, RecursionError):
        raise invalid from None
    if not isinstance(claims, dict) or not _claims_valid(claims, typ, require, leeway):
        raise invalid
    return claims


def _numeric_date(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _claims_valid(claims: dict, typ: str, require: Iterable[str], leeway: float) -> bool:
    """RFC 7519 registered claims as PyJWT checks them, plus our issuer and token type."""
    now = time.time()
    if any(name not in claims for name in require):
        return False
    if any(name in claims and not _numeric_date(claims[name]) for name in ("exp", "iat", "nbf")):
        return False
    if "exp" in claims and claims["exp"] <= now - leeway:
        return False
    if any(name in claims and claims[name] > now + leeway for name in ("iat", "nbf")):
        return False
    if "aud" in claims:  # we never issue audiences: a token meant for someone else
        return False
    if "sub" in claims and not isinstance(claims["sub"], str):
        return False
    return claims.get("iss") == ISSUER and claims.get("typ") == typ


class TokenCache:
    """Values derived from verified tokens, kept per container until the token expires.

    Keyed by the token's exact string, so a hit is a token already verified.
    cachetools' TLRUCache: each entry lives until its own expiry; when full it
    drops expired entries first, then the least recently used. Locked, as
    cachetools' caches are not thread-safe (the local emulator runs threads).
    """

    def __init__(self, size: int = 1024) -> None:
        import cachetools

        self._cache = cachetools.TLRUCache(maxsize=size, ttu=lambda _token, entry, _now: entry[0], timer=time.time)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._cache)

    def get(self, token: str) -> Any | None:
        with self._lock:
            entry = self._cache.get(token)
        return None if entry is None else entry[1]

    def put(self, token: str, expires_at: float, value: Any) -> None:
        with self._lock:
            self._cache[token] = (expires_at, value)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


_verified = TokenCache()


def issue_access_token(user: dict) -> tuple[str, dt.datetime]:
    """(token, expiry time) for a user row."""
    now = _now()
    exp = now + dt.timedelta(seconds=get_settings().jwt_ttl_s)
    claims = {"sub": str(user["id"]), "email": user["email"], "iss": ISSUER, "typ": "access",
              "iat": int(now.timestamp()), "exp": int(exp.timestamp()), "jti": uuid.uuid4().hex}
    return sign(claims), exp


def decode_access_token(token: str) -> dict[str, Any]:
    """The claims of a valid app token, or AuthenticationError."""
    claims = _verified.get(token)
    if claims is not None:
        return dict(claims)
    claims = verify(token, typ="access", require=ACCESS_CLAIMS)
    try:
        uuid.UUID(claims["sub"])
    except (ValueError, TypeError, AttributeError):
        raise AuthenticationError("Invalid or expired token") from None
    _verified.put(token, claims["exp"], dict(claims))
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
