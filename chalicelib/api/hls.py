"""HLS delivery of private videos to players that cannot send headers.

The bucket stays private. `GET /videos/{id}/stream` hands out the URL of a
master playlist served by the API with a short-lived playback token in its
query string (an HMAC-signed JWT naming the viewer and the video); the API
rewrites the stored playlists so variant URIs point back at the API with the
same token and segment URIs are presigned S3 GETs that expire with it.
Chosen over signed cookies or a public bucket because it works with every
player (hls.js, Safari, FFmpeg, ExoPlayer) and needs no CDN.

Caching: playlists are `private, max-age=30` (they carry the token and
fresh signatures; a player re-reads them, a shared cache never keeps them);
segments and MP4 fallbacks are stored with `private, max-age=31536000,
immutable` (their bytes never change under a key), which S3 sends back on
every presigned GET. CORS: the API routes answer `*` (the token, not the
origin, is the credential) and the bucket's CORS rules allow GET from any
origin, so hls.js on any site can fetch segments.

`GET /api/videos/{id}/stream/{quality}` is the MP4 fallback for players
without HLS (a plain <video src>): a 302 to a presigned GET of the
rendition's MP4, which the Fallbacks state stores just after the video
becomes playable (see pipeline/finalize.py); until then it answers 202
(`retry_after_s`), and 404 if that state failed for good.
"""
from __future__ import annotations

import re
import time

from chalicelib import access, failures, storage
from chalicelib.auth import tokens
from chalicelib.config import get_settings
from chalicelib.errors import AuthenticationError, NotFoundError, NotReadyError

PLAYBACK_TTL_S = 3600
MP4_RETRY_AFTER_S = 5   # the Fallbacks state takes seconds for a minute of 1080p
QUALITIES = ("360p", "480p", "720p", "1080p")
_URI_ATTR = re.compile(r'URI="([^"]+)"')
PLAYLIST_HEADERS = {
    "Content-Type": "application/vnd.apple.mpegurl",
    "Access-Control-Allow-Origin": "*",
    # Playlists embed expiring URLs: players must not keep them around.
    "Cache-Control": "private, max-age=30",
}


def playback_token(user_id: str, video_id: str, ttl_s: int = PLAYBACK_TTL_S, share_id: str | None = None) -> str:
    """A token allowing this viewer to play this video until it expires (and, for a share link, while it works)."""
    now = int(time.time())
    claims = {"sub": str(user_id), "vid": str(video_id), "typ": "playback",
              "iss": tokens.ISSUER, "iat": now, "exp": now + ttl_s}
    return tokens.sign({**claims, "shr": share_id} if share_id else claims)


def _check_token(token: str | None, video_id: str) -> dict:
    invalid = AuthenticationError("Invalid or expired token")
    if not token:
        raise invalid
    claims = tokens.verify(token, typ="playback", require=("exp", "iat", "sub", "vid"), leeway=0)
    if claims.get("vid") != video_id:
        raise invalid
    return claims


def master_url(user_id: str, video_id: str, share_id: str | None = None) -> str:
    """Where a player opens the video (the API, with a playback token)."""
    base = get_settings().public_base_url
    token = playback_token(user_id, video_id, share_id=share_id)
    return f"{base}/api/videos/{video_id}/hls/master.m3u8?token={token}"


def _read(key: str) -> str:
    try:
        return storage.read_text(key)
    except storage.ObjectMissing:
        raise NotFoundError("Stream not found") from None


def _authorize(user: dict | None, video_id: str, token: str | None) -> dict:
    """The video row, for a signed-in member or a valid playback token."""
    if user is not None:
        viewer = user
    else:
        claims = _check_token(token, video_id)
        if claims.get("shr"):
            # A share link's token plays only while the link works: revoked, expired or orphaned links stop here.
            from chalicelib.api import social
            social.working_share(str(claims["shr"]), video_id)
        viewer = {"id": claims["sub"]}
    video = access.require_video_access(viewer, video_id)
    if video["status"] == "failed":
        raise NotFoundError("Stream not found",
                            failure_reason=failures.public_reason(video["failure_public"], True))
    if video["processing_index"] == -1:
        original = access.visible_video(viewer, video["duplicate_of"])
        raise NotFoundError("Stream not found", duplicate_of=str(original["id"]) if original else None)
    if video["processing_index"] != 0:
        raise NotReadyError("Video still processing", processing_index=video["processing_index"])
    return video


def master(user: dict | None, video_id: str, token: str | None) -> str:
    """The stored master playlist with variant URIs pointing back at the API."""
    video = _authorize(user, video_id, token)
    token = token or playback_token(str(user["id"]), video_id)
    base = get_settings().public_base_url
    lines = []
    for line in _read(storage.master_playlist_key(str(video["id"]))).splitlines():
        if line and not line.startswith("#") and line.endswith(".m3u8"):
            quality = line[:-len(".m3u8")]
            line = f"{base}/api/videos/{video_id}/hls/{quality}/playlist.m3u8?token={token}"
        lines.append(line)
    from chalicelib.api import captions  # captions builds on this module
    lines = captions.master_with_subtitles(lines, str(video["id"]), token)
    return "\n".join(lines) + "\n"


def media_playlist(user: dict | None, video_id: str, quality: str, token: str | None) -> str:
    """A rendition's playlist with every segment (and init) URI presigned."""
    if quality not in QUALITIES:
        raise NotFoundError("Stream not found")
    _authorize(user, video_id, token)
    prefix = storage.processed_prefix(video_id)
    ttl = PLAYBACK_TTL_S + 300
    lines = []
    for line in _read(storage.rendition_playlist_key(video_id, quality)).splitlines():
        if line.startswith("#EXT-X-MAP:"):
            line = _URI_ATTR.sub(lambda m: f'URI="{storage.presigned_get(prefix + m.group(1), ttl)}"', line)
        elif line and not line.startswith("#"):
            line = storage.presigned_get(prefix + line, ttl)
        lines.append(line)
    return "\n".join(lines) + "\n"


def mp4_url(user: dict | None, video_id: str, quality: str, token: str | None) -> str:
    """A presigned GET of the rendition's MP4 fallback, valid as long as a playback token."""
    if quality not in QUALITIES:
        raise NotFoundError("Stream not found", details=[f"quality must be one of {', '.join(QUALITIES)}"])
    _authorize(user, video_id, token)
    key = storage.mp4_fallback_key(video_id, quality)
    if storage.head(key) is None:
        from chalicelib.pipeline import progress

        if storage.head(storage.rendition_playlist_key(video_id, quality)) is None:
            raise NotFoundError("Stream not found", details=[f"no {quality} rendition for this video"])
        if progress.side_stage_failed(video_id, progress.FALLBACKS_STAGE):
            raise NotFoundError("Stream not found", details=[f"the {quality} MP4 fallback could not be made;"
                                                             " the HLS stream plays"])
        # The video is playable (HLS) before its MP4s exist: the Fallbacks state writes them next.
        raise NotReadyError("MP4 fallback not ready", details=[
            f"the {quality} MP4 is written just after the video becomes playable; HLS plays now"],
            retry_after_s=MP4_RETRY_AFTER_S)
    # A <video> element keeps issuing Range requests against the same URL while it plays.
    return storage.presigned_get(key, PLAYBACK_TTL_S + 300)
