"""The web pages: small static pages served by the API itself (same origin, same sign-in).

`/web` (a stream's clips), `/web/upload`, `/web/watch` and `/docs` are plain HTML
and JavaScript from chalicelib/web/, no build step. They hold no data: every
page signs in with an app token (pasted, or from POST /auth/verify with a
Google ID token; `make token` mints one on the local stack) and calls the same
API routes any client calls. hls.js and Swagger UI are the npm files,
vendored (tests/web/test_pages.py checks they equal tests/tools' copies):
nothing is loaded from a CDN. Each page gets a Content-Security-Policy that
allows scripts from this origin only, and media from storage's origin.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from chalice import Response

from chalicelib.config import get_settings
from chalicelib.errors import NotFoundError

WEB = Path(__file__).resolve().parents[1] / "web"
PAGES = {"streams": "index.html", "upload": "upload.html", "watch": "watch.html", "docs": "docs.html"}
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
ASSETS = ("app.js", "streams.js", "upload.js", "watch.js", "docs.js", "style.css",
          "hls.min.js", "swagger-ui-bundle.js", "swagger-ui.css")
ASSET_CACHE = "public, max-age=3600"


@lru_cache(maxsize=None)
def _read(name: str) -> tuple[str, str]:
    """(text, ETag) of one file of chalicelib/web."""
    text = (WEB / name).read_text(encoding="utf-8")
    return text, '"%s"' % hashlib.sha256(text.encode()).hexdigest()[:32]


def storage_origin() -> str:
    """The origin presigned URLs point at (for the pages' Content-Security-Policy)."""
    s = get_settings()
    endpoint = s.s3_public_endpoint_url or s.s3_endpoint_url
    if endpoint:
        parts = urlsplit(endpoint)
        return f"{parts.scheme}://{parts.netloc}"
    return "https://*.amazonaws.com"


def _security_headers() -> dict[str, str]:
    media = storage_origin()
    csp = ("default-src 'self'; script-src 'self'; worker-src 'self' blob:; "
           f"style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: {media}; "
           f"media-src 'self' blob: data: {media}; connect-src 'self' {media}; "
           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer"}


def page(name: str) -> Response:
    """One page's HTML (no data in it: the page calls the API with the user's token)."""
    text, etag = _read(PAGES[name])
    return Response(body=text, headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache",
                                        "ETag": etag, **_security_headers()})


def asset(name: str, if_none_match: str | None) -> Response:
    """A script or stylesheet of the pages; 404 for any other name; 304 when the ETag matches."""
    if name not in ASSETS:
        raise NotFoundError("Not found", details=[f"no asset named {name[:64]!r}"])
    text, etag = _read(name)
    headers = {"Content-Type": TYPES[Path(name).suffix], "Cache-Control": ASSET_CACHE, "ETag": etag,
               "X-Content-Type-Options": "nosniff"}
    if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(body="", status_code=304, headers=headers)
    return Response(body=text, headers=headers)
