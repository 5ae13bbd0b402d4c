"""File serving (reference/000 File Serving): thumbnails by state, stream redirects.

Thumbnails are small, so the API returns their bytes (members only, behind
the bearer token an <img> cannot send — frontends fetch them and use a blob
URL, or use the presigned URLs of the share view). Chalice, like API
Gateway, returns binary bodies only when the request's Accept header matches
a binary type: browsers send `image/avif,...,image/*,*/*;q=0.8` for <img>,
whose `*/*` matches; `Accept: image/jpeg` does too. Video bytes never pass
through the API: /stream redirects to a short-lived presigned URL.
"""
from __future__ import annotations

from chalice import Response

from chalicelib import storage
from chalicelib.api import videos
from chalicelib.config import get_settings
from chalicelib.errors import NotFoundError

JPEG = "image/jpeg"
FINAL_CACHE = "private, max-age=86400"
OVERLAY_CACHE = "private, max-age=60"
STREAM_TTL_S = 300


def thumbnail_candidates(video: dict) -> list[tuple[str, str]]:
    """(key, Cache-Control) of the thumbnails that fit the video's state, best first."""
    vid = str(video["id"])
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
    """The thumbnail for the video's state as image/jpeg; 404 JSON when none exists."""
    video = videos.visible_video(user, video_id)
    client, bucket = storage.s3_client(), get_settings().bucket
    for key, cache in thumbnail_candidates(video):
        try:
            obj = client.get_object(Bucket=bucket, Key=key)
        except client.exceptions.NoSuchKey:
            continue
        etag = obj["ETag"]
        headers = {"ETag": etag, "Cache-Control": cache}
        if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
            obj["Body"].close()
            return Response(body="", status_code=304, headers=headers)
        return Response(body=obj["Body"].read(), status_code=200,
                        headers={**headers, "Content-Type": JPEG})
    raise NotFoundError("Thumbnail not found")


def stream_redirect(user: dict, video_id: str) -> Response:
    """302 to a presigned URL of the best stored rendition: HLS master, else the raw upload."""
    video = videos.visible_video(user, video_id)
    candidates = [video["raw_key"]]
    if video["processing_index"] == 0:
        candidates.insert(0, storage.master_playlist_key(str(video["id"])))
    for key in candidates:
        if storage.head(key) is not None:
            return Response(body="", status_code=302, headers={
                "Location": storage.presigned_get(key, STREAM_TTL_S), "Cache-Control": "no-store"})
    raise NotFoundError("Video file not found")
