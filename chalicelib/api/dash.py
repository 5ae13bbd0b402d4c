"""DASH delivery of private videos, the same way as HLS (see chalicelib/api/hls.py).

`dash_url` is the API's `/api/videos/{id}/dash/manifest.mpd?token=...` with a
playback token; the API reads the MPD the transcode stored beside the HLS
playlists and presigns every URI in it (init and media segments, the captions
file), valid as long as the token. The media bytes are the HLS ladder's fMP4
segments: nothing is encoded or stored twice.
"""
from __future__ import annotations

import re
from xml.sax.saxutils import escape

from chalicelib import db, storage
from chalicelib.api import captions, hls
from chalicelib.config import get_settings

MANIFEST_HEADERS = {**hls.PLAYLIST_HEADERS, "Content-Type": "application/dash+xml"}
_URI_ATTR = re.compile(r'\b(sourceURL|media)="([^"]+)"')
_BASE_URL = re.compile(r"<BaseURL>([^<]+)</BaseURL>")


def has_manifest(video_id: str) -> bool:
    """Whether the transcode stored an MPD for this video (videos transcoded before DASH have none)."""
    return db.fetch_one("SELECT 1 AS ok FROM video_assets WHERE video_id = %s AND key = %s",
                        (video_id, storage.dash_manifest_key(video_id))) is not None


def manifest_url(user_id: str, video_id: str, share_id: str | None = None) -> str:
    """Where a DASH player opens the video (the API, with a playback token)."""
    token = hls.playback_token(user_id, video_id, share_id=share_id)
    return f"{get_settings().public_base_url}/api/videos/{video_id}/dash/manifest.mpd?token={token}"


def manifest(user: dict | None, video_id: str, token: str | None) -> str:
    """The stored MPD with every segment, init and captions URI presigned."""
    video = hls._authorize(user, video_id, token)
    prefix = storage.processed_prefix(str(video["id"]))
    ttl = hls.PLAYBACK_TTL_S + 300

    def presign(rel: str) -> str:
        return escape(storage.presigned_get(prefix + rel, ttl))

    text = hls._read(storage.dash_manifest_key(str(video["id"])))
    text = _URI_ATTR.sub(lambda m: f'{m.group(1)}="{presign(m.group(2))}"', text)
    text = _BASE_URL.sub(lambda m: f"<BaseURL>{presign(m.group(1))}</BaseURL>", text)
    return captions.mpd_with_subtitles(text, str(video["id"]), token or hls.playback_token(str(user["id"]), video_id))
