"""Captions: a WebVTT subtitles rendition in the HLS master, a text AdaptationSet in the MPD, the file route."""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlparse

import requests

from tests.api.playback.conftest import unique_email


def _token(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


def test_hls_js_shows_the_captions_in_chromium(browser, player_site, speech_video):
    master = requests.get(speech_video["hls_url"], timeout=10).text
    (media,) = [ln for ln in master.splitlines() if ln.startswith("#EXT-X-MEDIA:")]
    assert 'TYPE=SUBTITLES' in media and 'LANGUAGE="en"' in media and "DEFAULT=NO" in media
    assert all('SUBTITLES="subs"' in ln for ln in master.splitlines() if ln.startswith("#EXT-X-STREAM-INF"))
    page = browser.new_page()
    try:
        page.goto(f"{player_site}/player.html")
        page.evaluate("url => playHls(url)", speech_video["hls_url"])
        page.wait_for_function("window.player && window.player.subtitleTracks.length === 1", timeout=60_000)
        page.evaluate("() => showCaptions()")
        page.wait_for_function("captionCues().some(t => t.cues.length > 0)", timeout=60_000)
        tracks = page.evaluate("() => captionCues()")
        events = page.evaluate("() => window.events")
    finally:
        page.close()
    assert not [e for e in events if e["type"] == "error" and e.get("fatal", True)], events
    shown = [t for t in tracks if t["cues"]]
    assert len(shown) == 1 and shown[0]["kind"] in ("subtitles", "captions") and shown[0]["mode"] == "showing"
    text = " ".join(c["text"] for c in shown[0]["cues"]).lower()
    assert "left" in text, shown
    # The cues sit where the words are spoken (the espeak sentence is in the first seconds).
    assert all(0.0 <= c["start"] < c["end"] <= 6.5 for c in shown[0]["cues"]), shown


def test_captions_file_and_segments(speech_video, member):
    vid, token = speech_video["id"], _token(speech_video["hls_url"])
    client = member["client"]
    resp = client.http.get(f"/videos/{vid}/captions.vtt", headers=member["me"]["headers"])
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/vtt")
    body = resp.body.decode()
    assert body.startswith("WEBVTT\n") and "-->" in body and "left" in body.lower()
    # A player's view: the token in the URL instead of the bearer.
    assert client.http.get(f"/videos/{vid}/captions.vtt?token={token}").body.decode() == body

    playlist = client.http.get(f"/api/videos/{vid}/captions.m3u8?token={token}")
    assert playlist.status_code == 200
    uris = [ln for ln in playlist.body.decode().splitlines() if ln and not ln.startswith("#")]
    assert len(uris) == 2 and all(f"token={token}" in u for u in uris)       # 6 s in 4 s windows
    first = client.http.get(urlparse(uris[0])._replace(scheme="", netloc="").geturl())
    assert first.status_code == 200 and "X-TIMESTAMP-MAP=" in first.body.decode()
    missing = client.http.get(f"/api/videos/{vid}/captions/00002.vtt?token={token}")
    assert missing.status_code == 404 and json.loads(missing.body)["details"]
    assert client.http.get(f"/api/videos/{vid}/captions/..%2F480p.m3u8?token={token}").status_code == 404


def test_captions_refusals(speech_video, member, hd_video, google_key):
    from chalice.test import Client

    import app as app_module
    from tests.conftest import _sign_in_with

    vid, token = speech_video["id"], _token(speech_video["hls_url"])
    other_token = _token(hd_video["hls_url"])
    with Client(app_module.app, stage_name="local") as client:
        for path in (f"/videos/{vid}/captions.vtt", f"/api/videos/{vid}/captions.m3u8",
                     f"/api/videos/{vid}/captions/00000.vtt"):
            for query in ("", f"?token={token}x", f"?token={other_token}"):   # none, forged, another video's
                resp = client.http.get(path + query)
                assert resp.status_code == 401, (path, query, resp.body)
                assert "left" not in resp.body.decode().lower()
        outsider = _sign_in_with(client, google_key, unique_email())
        resp = client.http.get(f"/videos/{vid}/captions.vtt", headers=outsider["headers"])
        assert resp.status_code == 403 and "left" not in resp.body.decode().lower()


def test_no_speech_no_captions_track(hd_video, member):
    """A clip nobody speaks in has no SUBTITLES rendition, no text AdaptationSet and no captions file."""
    from chalicelib import db

    vid = hd_video["id"]
    assert db.fetch_all("SELECT 1 FROM transcript_segments WHERE video_id = %s AND text <> ''", (vid,)) == []
    master = requests.get(hd_video["hls_url"], timeout=10).text
    assert "#EXT-X-MEDIA" not in master and "SUBTITLES" not in master
    assert "text/vtt" not in requests.get(hd_video["dash_url"], timeout=10).text
    resp = member["client"].http.get(f"/videos/{vid}/captions.vtt", headers=member["me"]["headers"])
    assert resp.status_code == 404 and json.loads(resp.body)["error"] == "Captions not found"


def test_shaka_lists_the_dash_captions(browser, player_site, speech_video):
    mpd = requests.get(speech_video["dash_url"], timeout=10).text
    assert re.search(r'<AdaptationSet id="1" contentType="text" mimeType="text/vtt" lang="en">', mpd)
    page = browser.new_page()
    try:
        page.goto(f"{player_site}/player.html")
        page.evaluate("url => playDash(url)", speech_video["dash_url"])
        page.wait_for_function("window.events.some(e => e.type === 'dash-tracks' || e.type === 'dash-error')",
                               timeout=60_000)
        events = page.evaluate("() => window.events")
    finally:
        page.close()
    assert not [e for e in events if e["type"] == "dash-error"], events
    tracks = next(e for e in events if e["type"] == "dash-tracks")
    assert tracks["text"] == [{"kind": "subtitle", "language": "en"}], tracks
