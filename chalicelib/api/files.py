"""File serving (reference/000 File Serving): thumbnails by state, stream redirects.

A custom thumbnail (chalicelib.api.thumbnails) is served whenever one is set,
in every state but duplicate (whose overlay says what the clip is).

No bytes pass through the API. The thumbnail route answers a 302 to a
short-lived presigned GET of the stored JPEG, for every client: API Gateway
(and Chalice, which mirrors it with a 400) returns a binary body only when the
request's Accept header matches a binary media type, and API Gateway looks at
the first type only, so a request without Accept (curl -H 'Accept:', many HTTP
libraries, image proxies) and a browser's `image/avif,...` would get an error
or base64 text. A redirect works whatever the Accept header says, and S3
serves the bytes with conditional GETs. The presigned URL pins the response's
Content-Type and Cache-Control; the 302 itself may be cached only while its URL
stays valid. ETag/If-None-Match keep working on the API: a client that kept
the ETag gets 304 without a redirect. /stream redirects the same way.
"""
from __future__ import annotations

from chalice import Response

from chalicelib import storage
from chalicelib.api import hls, videos
from chalicelib.config import get_settings
from chalicelib.errors import NotFoundError

JPEG = "image/jpeg"
FINAL_CACHE = "private, max-age=86400"
OVERLAY_CACHE = "private, max-age=60"
CUSTOM_CACHE = "private, max-age=300"   # it can be replaced or removed
STREAM_TTL_S = 300
# A cached thumbnail redirect expires this long before the presigned URL it points at.
REDIRECT_MARGIN_S = 60


def thumbnail_candidates(video: dict) -> list[tuple[str, str]]:
    """(key, Cache-Control) of the thumbnails that fit the video's state, best first."""
    vid = str(video["id"])
    custom = video.get("custom_thumbnail_key")
    if custom and video["processing_index"] != -1:   # a duplicate keeps its DUPLICATE overlay
        return [(custom, CUSTOM_CACHE), *_frame_candidates(video, vid)]
    return _frame_candidates(video, vid)


def _frame_candidates(video: dict, vid: str) -> list[tuple[str, str]]:
    final = (storage.thumbnail_key(vid), FINAL_CACHE)
    processing = (storage.thumbnail_key(vid, "processing"), OVERLAY_CACHE)
    if video["processing_index"] == 0:
        return [final]
    if video["processing_index"] == -1:
        return [(storage.thumbnail_key(vid, "duplicate"), FINAL_CACHE)]
    if video["status"] == "failed":
        return [final, processing]
    return [processing]


def thumbnail_key_for(video: dict) -> str | None:
    """The key of the thumbnail to show for the video now, or None if none is stored."""
    for key, _ in thumbnail_candidates(video):
        if storage.head(key) is not None:
            return key
    return None


def thumbnail(user: dict, video_id: str, if_none_match: str | None) -> Response:
    """302 to a presigned GET of the thumbnail for the video's state; 304 if the ETag matches; 404 JSON when none."""
    video = videos.visible_video(user, video_id)
    ttl = get_settings().presign_ttl_s
    for key, cache in thumbnail_candidates(video):
        meta = storage.head(key)
        if meta is None:
            continue
        etag = meta["ETag"]
        if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
            return Response(body="", status_code=304, headers={"ETag": etag, "Cache-Control": cache})
        url = storage.presigned_get(key, ttl, ResponseContentType=JPEG, ResponseCacheControl=cache)
        return Response(body="", status_code=302, headers={
            "Location": url, "ETag": etag, "Cache-Control": _redirect_cache(cache, ttl)})
    raise NotFoundError("Thumbnail not found")


def _redirect_cache(cache: str, url_ttl_s: int) -> str:
    """cache, with a max-age short enough that a cached redirect never points at an expired URL."""
    max_age = int(cache.rsplit("max-age=", 1)[1])
    return f"private, max-age={max(0, min(max_age, url_ttl_s - REDIRECT_MARGIN_S))}"


def stream_redirect(user: dict, video_id: str) -> Response:
    """302 to the best stored rendition: the HLS master, else a presigned URL of the raw upload.

    The master goes through the API with a playback token (`hls.master_url`): its
    variant playlists and segments are relative to it and must be signed too, which a
    presigned URL of the stored master cannot give them (the bucket answers 403).
    """
    video = videos.visible_video(user, video_id)
    if video["processing_index"] == 0 and storage.head(storage.master_playlist_key(str(video["id"]))):
        return Response(body="", status_code=302, headers={
            "Location": hls.master_url(str(user["id"]), str(video["id"])), "Cache-Control": "no-store"})
    if storage.head(video["raw_key"]) is not None:
        return Response(body="", status_code=302, headers={
            "Location": storage.presigned_get(video["raw_key"], STREAM_TTL_S), "Cache-Control": "no-store"})
    raise NotFoundError("Video file not found")
