"""Captions of a video, from its word-timed transcript (chalicelib/media/captions.py).

Served by the API from the transcript rows, so they exist as soon as the
transcribe step has stored the transcript and never disagree with it:

- `GET /videos/{id}/captions.vtt`: the whole WebVTT file (bearer or playback token);
- the HLS master gets a SUBTITLES rendition (EXT-X-MEDIA, DEFAULT=NO) whose
  playlist `/api/videos/{id}/captions.m3u8` lists segmented WebVTT
  (`/api/videos/{id}/captions/{n}.vtt`), all with the viewer's playback token;
- the DASH manifest gets a text/vtt AdaptationSet pointing at the file.

A clip without speech has no cues: no rendition, no AdaptationSet, and 404
for the file, rather than an empty track.
"""
from __future__ import annotations

import re

from chalicelib import db
from chalicelib.api import hls
from chalicelib.config import get_settings
from chalicelib.errors import NotFoundError
from chalicelib.media import captions

VTT_HEADERS = {**hls.PLAYLIST_HEADERS, "Content-Type": "text/vtt; charset=utf-8"}
GROUP_ID = "subs"
_SEGMENT_NAME = re.compile(r"^(\d{1,5})\.vtt$")
_LANGUAGES = {"en": "English"}


def _cues(video_id: str) -> tuple[list[captions.Cue], str]:
    """The video's cues and language ("en" when the transcript does not say)."""
    rows = db.fetch_all("SELECT s.start_s, s.end_s, s.text, s.words, t.language FROM transcript_segments s"
                        " JOIN transcripts t USING (video_id) WHERE s.video_id = %s ORDER BY s.idx", (video_id,))
    language = (rows[0]["language"] if rows else None) or "en"
    return captions.cues_from_segments(rows), language


def _require_cues(video_id: str) -> tuple[list[captions.Cue], str]:
    cues, language = _cues(video_id)
    if not cues:
        raise NotFoundError("Captions not found", details=["this video has no speech to caption"])
    return cues, language


def _token(user: dict | None, video_id: str, token: str | None) -> str:
    return token or hls.playback_token(str(user["id"]), video_id)


def file(user: dict | None, video_id: str, token: str | None) -> str:
    """The whole WebVTT file."""
    hls._authorize(user, video_id, token)
    return captions.webvtt(_require_cues(video_id)[0])


def file_url(video_id: str, token: str) -> str:
    return f"{get_settings().public_base_url}/videos/{video_id}/captions.vtt?token={token}"


def hls_playlist(user: dict | None, video_id: str, token: str | None) -> str:
    """The subtitles media playlist: one WebVTT segment per media segment window."""
    video = hls._authorize(user, video_id, token)
    _require_cues(video_id)
    token = _token(user, video_id, token)
    base = get_settings().public_base_url
    return captions.hls_playlist(float(video["duration_s"] or 0.0),
                                 lambda i: f"{base}/api/videos/{video_id}/captions/{i:05d}.vtt?token={token}")


def hls_segment(user: dict | None, video_id: str, name: str, token: str | None) -> str:
    """One segment of the segmented WebVTT."""
    video = hls._authorize(user, video_id, token)
    m = _SEGMENT_NAME.match(name)
    count = captions.segment_count(float(video["duration_s"] or 0.0))
    if not m or int(m.group(1)) >= count:
        raise NotFoundError("Captions not found", details=[f"segments are 00000.vtt to {count - 1:05d}.vtt"])
    return captions.segment(_require_cues(video_id)[0], int(m.group(1)))


def master_with_subtitles(lines: list[str], video_id: str, token: str) -> list[str]:
    """The master playlist's lines with the SUBTITLES rendition, when the video has speech."""
    cues, language = _cues(video_id)
    if not cues:
        return lines
    base = get_settings().public_base_url
    name = _LANGUAGES.get(language, language)
    media = (f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{GROUP_ID}",NAME="{name}",LANGUAGE="{language}",'
             f'DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,'
             f'URI="{base}/api/videos/{video_id}/captions.m3u8?token={token}"')
    out: list[str] = []
    for line in lines:
        if line.startswith("#EXT-X-STREAM-INF:"):
            if media not in out:
                out.append(media)  # renditions are declared before the variants that use them
            line += f',SUBTITLES="{GROUP_ID}"'
        out.append(line)
    return out


def mpd_with_subtitles(text: str, video_id: str, token: str) -> str:
    """The MPD with a text/vtt AdaptationSet pointing at the captions file, when the video has speech."""
    from chalicelib.media import dash

    cues, language = _cues(video_id)
    if not cues:
        return text
    return text.replace("  </Period>", dash.captions_adaptation_set(file_url(video_id, token), language)
                        + "  </Period>", 1)
