"""Google ID token verification with google-auth, against a configurable certs URL.

In AWS the certs URL is Google's; locally and in tests it is the stack's own
endpoint publishing our RSA key, and the very same code verifies the tokens.
Public keys are cached for as long as the endpoint's Cache-Control allows.
"""
from __future__ import annotations

import logging
from typing import Any

from chalicelib.config import get_settings
from chalicelib.errors import AuthenticationError, UnavailableError

logger = logging.getLogger(__name__)

CLOCK_SKEW_S = 30
MAX_SUB_LENGTH = 255  # OpenID Connect: at most 255 ASCII characters
MAX_EMAIL_LENGTH = 320


_request: Any = None


def certs_request() -> Any:
    """google-auth's transport on a CacheControl session, process-wide (reused by warm Lambdas).

    google-auth's documented recipe for caching Google's public keys: the
    certs response is kept for as long as its Cache-Control allows (Google
    sends max-age), so a sign-in makes no request to Google until it expires.
    """
    global _request
    if _request is None:
        import cachecontrol
        import google.auth.transport.requests
        import requests

        _request = google.auth.transport.requests.Request(session=cachecontrol.CacheControl(requests.Session()))
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
