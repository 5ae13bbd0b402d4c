"""DASH playback of private videos: Shaka Player in Chromium, from the HLS ladder's own segments."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlparse

import requests

from tests.api.playback.conftest import unique_email
from tests.api.playback.test_playback import make_video_for_member

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


def _token(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


def test_shaka_plays_the_private_dash_manifest_and_switches(browser, player_site, hd_video, stack):
    assert hd_video["dash_url"] and "/dash/manifest.mpd?token=" in hd_video["dash_url"]
    page = browser.new_page()
    fetched: list[str] = []
    page.on("request", lambda req: fetched.append(req.url))
    try:
        page.goto(f"{player_site}/player.html")
        page.evaluate("url => playDash(url)", hd_video["dash_url"])
        page.wait_for_function("document.getElementById('dash').currentTime > 2", timeout=60_000)
        page.evaluate("() => selectDashHeight(360)")
        page.wait_for_function("document.getElementById('dash').videoHeight === 360"
                               " && document.getElementById('dash').currentTime > 4.5", timeout=60_000)
        state = page.evaluate("""() => { const v = document.getElementById('dash');
            return {time: v.currentTime, height: v.videoHeight, events: window.events,
                    active: window.dashPlayer.getVariantTracks().find(t => t.active).height}; }""")
    finally:
        page.close()
    assert not [e for e in state["events"] if e["type"] in ("dash-error", "play-refused")], state["events"]
    tracks = next(e for e in state["events"] if e["type"] == "dash-tracks")
    assert tracks["heights"] == [360, 480, 720]
    assert state["active"] == 360 and state["height"] == 360
    assert any(e["type"] == "variantchanged" and e["height"] == 360 for e in state["events"])
    # The segments come from the private bucket through presigned URLs; these are the HLS segments.
    segments = [u for u in fetched if ".m4s" in u]
    assert segments and all(u.startswith(stack.env["S3_ENDPOINT_URL"]) and "X-Amz-Signature=" in u
                            for u in segments)
    assert any("/segments/360p_" in u for u in segments) and any("/segments/720p_" in u or "/segments/480p_" in u
                                                                   for u in segments)


def test_dash_manifest_is_served_like_the_playlists(hd_video, s3):
    vid = hd_video["id"]
    origin = {"Origin": "https://clips.example.com"}
    resp = requests.get(hd_video["dash_url"], headers=origin, timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/dash+xml"
    assert resp.headers["Access-Control-Allow-Origin"] == "*" and "private" in resp.headers["Cache-Control"]
    root = ET.fromstring(resp.text)
    urls = [e.get("sourceURL") for e in root.iter(f"{{{NS['d']}}}Initialization")]
    urls += [e.get("media") for e in root.iter(f"{{{NS['d']}}}SegmentURL")]
    assert urls and all("X-Amz-Signature=" in u for u in urls)
    # Every URI is one of the objects the HLS playlists name: no second copy of the media.
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="clipstream", Prefix=f"processed-videos/{vid}/")["Contents"]}
    named = {urlparse(u).path.split("/clipstream/", 1)[1] for u in urls}
    assert named <= keys
    assert {k for k in keys if k.endswith(".m4s") or k.endswith("_init.mp4")} == named
    for url in (urls[0], urls[-1]):
        got = requests.get(url, headers=origin, timeout=10)
        assert got.status_code == 200 and got.content
        assert requests.get(url.split("?")[0], timeout=10).status_code == 403  # the bucket stays private


def test_dash_manifest_refusals(hd_video, member, live_api, google_key, make_video):
    from chalice.test import Client

    import app as app_module
    from tests.conftest import _sign_in_with

    vid, token = hd_video["id"], _token(hd_video["dash_url"])
    base = f"{live_api}/api/videos/{vid}/dash/manifest.mpd"

    def get(url: str) -> tuple[int, dict]:
        resp = requests.get(url, timeout=10)
        body = resp.json()
        assert "Signature" not in json.dumps(body)  # nothing presigned leaks into an error
        return resp.status_code, body

    status, body = get(base)                                      # neither bearer nor token
    assert status == 401 and body["error"]
    assert get(f"{base}?token={token}x")[0] == 401                # forged
    hls_token = _token(hd_video["hls_url"])
    assert requests.get(f"{base}?token={hls_token}", timeout=10).status_code == 200  # one kind of token for both
    other = make_video_for_member(member, make_video)
    assert get(f"{live_api}/api/videos/{other}/dash/manifest.mpd?token={token}")[0] == 401  # names another video
    assert get(f"{live_api}/api/videos/not-a-uuid/dash/manifest.mpd?token={token}")[0] in (400, 404)
    with Client(app_module.app, stage_name="local") as client:
        outsider = _sign_in_with(client, google_key, unique_email())
        resp = client.http.get(f"/api/videos/{vid}/dash/manifest.mpd", headers=outsider["headers"])
        assert resp.status_code == 403 and "Signature" not in resp.body.decode()
        # A member with the bearer token gets the manifest; a video still processing answers 202.
        assert client.http.get(f"/api/videos/{vid}/dash/manifest.mpd",
                               headers=member["me"]["headers"]).status_code == 200
        processing = client.http.get(f"/api/videos/{other}/dash/manifest.mpd", headers=member["me"]["headers"])
        assert processing.status_code == 202 and json.loads(processing.body)["processing_index"] == 1
        # The stream URLs of a still-processing video hand out no manifest at all.
        resp = client.http.get(f"/videos/{other}/stream", headers=member["me"]["headers"])
        assert resp.status_code == 202 and "dash_url" not in json.loads(resp.body)


def test_dash_url_is_null_without_a_stored_manifest(hd_video, member, s3):
    """A video transcoded before the MPD existed: no dash_url rather than one that 404s."""
    from chalicelib import db

    vid = hd_video["id"]
    key = f"processed-videos/{vid}/manifest.mpd"
    row = db.fetch_one("SELECT key, kind, size_bytes, content_type FROM video_assets WHERE video_id = %s AND key = %s",
                       (vid, key))
    assert row["kind"] == "dash_manifest" and row["content_type"] == "application/dash+xml"
    db.execute("DELETE FROM video_assets WHERE video_id = %s AND key = %s", (vid, key))
    try:
        resp = member["client"].http.get(f"/videos/{vid}/stream", headers=member["me"]["headers"])
        body = json.loads(resp.body)
        assert resp.status_code == 200 and body["dash_url"] is None and body["hls_url"]
    finally:
        db.execute("INSERT INTO video_assets (video_id, key, kind, size_bytes, content_type) VALUES (%s, %s, %s, %s, %s)",
                   (vid, key, row["kind"], row["size_bytes"], row["content_type"]))
    assert re.search(r"/dash/manifest\.mpd\?token=", json.loads(member["client"].http.get(
        f"/videos/{vid}/stream", headers=member["me"]["headers"]).body)["dash_url"])
