"""Google ID token verification with google-auth, against a configurable certs URL.

In AWS the certs URL is Google's; locally and in tests it is the stack's own
endpoint publishing our RSA key, and the very same code verifies the tokens.
Public keys are cached for as long as the endpoint's Cache-Control allows.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from chalicelib.config import get_settings
from chalicelib.errors import AuthenticationError, UnavailableError

logger = logging.getLogger(__name__)

CLOCK_SKEW_S = 30
_DEFAULT_MAX_AGE_S = 300
_MAX_AGE = re.compile(r"max-age=(\d+)")
MAX_SUB_LENGTH = 255  # OpenID Connect: at most 255 ASCII characters
MAX_EMAIL_LENGTH = 320


class _CachedResponse:
    def __init__(self, status: int, headers: dict, data: bytes) -> None:
        self.status, self.headers, self.data = status, headers, data


class CachingRequest:
    """A google-auth transport Request that caches GET responses per Cache-Control."""

    def __init__(self) -> None:
        import google.auth.transport.requests
        import requests

        session = requests.Session()
        self._inner = google.auth.transport.requests.Request(session=session)
        self._cache: dict[str, tuple[float, _CachedResponse]] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                 timeout: float | None = 10, **kwargs: Any) -> Any:
        if method != "GET":
            return self._inner(url, method=method, body=body, headers=headers, timeout=timeout, **kwargs)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(url)
        if hit and hit[0] > now:
            return hit[1]
        resp = self._inner(url, method="GET", headers=headers, timeout=timeout, **kwargs)
        if resp.status == 200:
            match = _MAX_AGE.search(resp.headers.get("cache-control", "") or "")
            max_age = int(match.group(1)) if match else _DEFAULT_MAX_AGE_S
            cached = _CachedResponse(resp.status, dict(resp.headers), resp.data)
            with self._lock:
                self._cache[url] = (now + max_age, cached)
            return cached
        return resp

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


_request: CachingRequest | None = None


def certs_request() -> CachingRequest:
    """The process-wide caching transport (reused by warm Lambdas)."""
    global _request
    if _request is None:
        _request = CachingRequest()
    return _request


def verify_id_token(token: str) -> dict[str, Any]:
    """The verified claims of a Google ID token, or AuthenticationError.

    Signature against the published keys (RS256 only: google-auth refuses
    'none' and HMAC), `aud` among the configured client IDs (none configured:
    every token refused), issuer Google's, `iat`/`exp` present and valid with
    a small leeway, a `sub` (the account) and an email Google has verified
    (`email_verified` true: false or missing is refused).
    """
    import google.auth.exceptions
    from google.oauth2 import id_token

    settings = get_settings()
    invalid = AuthenticationError("Invalid Google ID token")
    if not isinstance(token, str) or not token or len(token) > 8192:
        raise invalid
    if not settings.google_client_ids:
        logger.warning("no Google client IDs configured: refusing every ID token")
        raise invalid
    try:
        claims = id_token.verify_token(
            token, certs_request(), audience=list(settings.google_client_ids),
            certs_url=settings.google_certs_url, clock_skew_in_seconds=CLOCK_SKEW_S)
    except google.auth.exceptions.TransportError as exc:
        logger.error("could not fetch Google certificates: %s", exc)
        raise UnavailableError("Failed to verify token with Google") from exc
    except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
        # google-auth raises ValueError subclasses for bad signatures, claims and shapes.
        logger.info("refused ID token: %s", exc)
        raise invalid from None
    if claims.get("iss") not in settings.google_issuers:
        raise invalid
    sub, email = claims.get("sub"), claims.get("email")
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUB_LENGTH:
        raise invalid
    if not isinstance(email, str) or "@" not in email or len(email) > MAX_EMAIL_LENGTH:
        raise invalid
    # Only an address Google has verified says who the account is: false or
    # missing is refused (older tokens carry the string "true").
    verified = claims.get("email_verified")
    if verified is not True and verified != "true":  # `is`: 1 == True
        raise AuthenticationError("Invalid Google ID token", details=[
            "email_verified must be true: sign in with a Google account whose email is verified"])
    return claims
