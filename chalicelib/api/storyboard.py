"""Scrub-bar previews of a video, private like its HLS (see chalicelib/media/storyboard.py).

`GET /videos/{id}/storyboard.vtt` (bearer or playback token) serves the
WebVTT thumbnails track the transcode stored, with each sprite sheet's URI
presigned for as long as a playback token lives and its `#xywh=` fragment kept.
"""
from __future__ import annotations

import re

from chalicelib import storage
from chalicelib.api import hls
from chalicelib.errors import NotFoundError

VTT_HEADERS = {**hls.PLAYLIST_HEADERS, "Content-Type": "text/vtt; charset=utf-8"}
_SHEET = re.compile(r"^(storyboard/sprite_\d{3}\.jpg)(#xywh=\d+,\d+,\d+,\d+)$")


def track(user: dict | None, video_id: str, token: str | None) -> str:
    """The thumbnails track with presigned sheet URIs."""
    video = hls._authorize(user, video_id, token)
    prefix = storage.processed_prefix(str(video["id"]))
    try:
        text = storage.read_text(storage.storyboard_key(str(video["id"])))
    except storage.ObjectMissing:
        raise NotFoundError("Storyboard not found",
                            details=["this video was transcoded before storyboards were made"]) from None
    ttl = hls.PLAYBACK_TTL_S + 300
    lines = []
    for line in text.splitlines():
        m = _SHEET.match(line)
        lines.append(storage.presigned_get(prefix + m.group(1), ttl) + m.group(2) if m else line)
    return "\n".join(lines) + "\n"
