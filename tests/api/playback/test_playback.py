"""Playback of private videos: hls.js in Chromium, CORS and cache headers, the MP4 fallback."""
from __future__ import annotations

import json
import re
import subprocess
from urllib.parse import parse_qs, urlparse

import requests

from tests.api.playback.conftest import unique_email


def _token(hls_url: str) -> str:
    return parse_qs(urlparse(hls_url).query)["token"][0]


def _extinf_total(playlist: str) -> float:
    return sum(float(d) for d in re.findall(r"#EXTINF:([\d.]+)", playlist))


def test_hls_js_plays_the_private_video_in_chromium(browser, player_site, hd_video, live_api, stack):
    """A real player on another origin: playlists from the API, segments from the bucket, playback advances."""
    page = browser.new_page()
    try:
        page.goto(f"{player_site}/player.html")
        assert page.evaluate("Hls.isSupported()")
        # Debian's Chromium decodes what the ladder makes: H.264 High + AAC-LC in fMP4.
        assert page.evaluate("""MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f,mp4a.40.2"')""")
        page.evaluate("url => playHls(url)", hd_video["hls_url"])
        page.wait_for_function("document.getElementById('hls').currentTime > 3", timeout=60_000)
        played = page.evaluate("""() => { const v = document.getElementById('hls');
            return {time: v.currentTime, width: v.videoWidth, height: v.videoHeight,
                    frames: v.getVideoPlaybackQuality().totalVideoFrames, events: window.events}; }""")
    finally:
        page.close()
    errors = [e for e in played["events"] if e["type"] in ("error", "unsupported", "play-refused")]
    assert not [e for e in errors if e.get("fatal", True)], errors
    manifest = next(e for e in played["events"] if e["type"] == "manifest")
    assert sorted(level["height"] for level in manifest["levels"]) == [360, 480, 720]
    assert played["frames"] > 60 and played["width"] in (640, 854, 1280)
    fragments = [e["url"] for e in played["events"] if e["type"] == "fragment"]
    # Segments come straight from the (private) bucket through presigned URLs, not through the API.
    assert fragments and all(u.startswith(stack.env["S3_ENDPOINT_URL"]) and "X-Amz-Signature=" in u
                             for u in fragments)


def test_mp4_fallback_plays_in_chromium(browser, player_site, hd_video, live_api):
    """A plain <video src> (no MSE) follows the redirect to the MP4 and plays it."""
    vid, token = hd_video["id"], _token(hd_video["hls_url"])
    page = browser.new_page()
    try:
        page.goto(f"{player_site}/player.html")
        page.evaluate("url => playMp4(url)", f"{live_api}/api/videos/{vid}/stream/480p?token={token}")
        page.wait_for_function("document.getElementById('mp4').currentTime > 2", timeout=60_000)
        state = page.evaluate("""() => { const v = document.getElementById('mp4');
            return {duration: v.duration, height: v.videoHeight, events: window.events}; }""")
    finally:
        page.close()
    assert state["height"] == 480 and abs(state["duration"] - 9.0) < 0.3, state
    assert not [e for e in state["events"] if e["type"] == "mp4-error"], state["events"]


def test_playlists_and_segments_carry_cors_and_cache_headers(hd_video, s3):
    origin = {"Origin": "https://clips.example.com"}
    master = requests.get(hd_video["hls_url"], headers=origin, timeout=10)
    assert master.status_code == 200
    assert master.headers["Access-Control-Allow-Origin"] == "*"
    assert master.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    # Playlists hold the token and fresh signatures: short-lived, never in shared caches.
    cache = master.headers["Cache-Control"]
    assert "private" in cache and int(re.search(r"max-age=(\d+)", cache).group(1)) <= 60

    variant = next(ln for ln in master.text.splitlines() if ln.startswith("http"))
    media = requests.get(variant, headers=origin, timeout=10)
    assert media.status_code == 200 and media.headers["Access-Control-Allow-Origin"] == "*"
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', media.text).group(1)
    segment = next(ln for ln in media.text.splitlines() if ln.startswith("http"))
    for url in (init, segment):
        got = requests.get(url, headers=origin, timeout=10)
        assert got.status_code == 200 and got.content
        assert got.headers["Access-Control-Allow-Origin"] in ("*", origin["Origin"])
        assert "immutable" in got.headers["Cache-Control"]
        # The bucket itself stays private: the same object without a signature is refused.
        assert requests.get(url.split("?")[0], timeout=10).status_code == 403


def test_mp4_fallback_is_the_rendition_as_one_file(hd_video, member, s3, tmp_path, live_api):
    """302 to a presigned MP4 that FFmpeg decodes whole, as long as the rendition's playlist says."""
    from chalicelib.media.ffmpeg import ffmpeg_exe

    vid, token = hd_video["id"], _token(hd_video["hls_url"])
    for quality in ("480p", "720p"):
        resp = requests.get(f"{live_api}/api/videos/{vid}/stream/{quality}?token={token}",
                            allow_redirects=False, timeout=10)
        assert resp.status_code == 302 and resp.headers["Cache-Control"] == "no-store"
        location = resp.headers["Location"]
        assert f"processed-videos/{vid}/{quality}.mp4" in location and "X-Amz-Signature=" in location
        got = requests.get(location, timeout=30)
        assert got.status_code == 200 and got.headers["Content-Type"] == "video/mp4"
        path = tmp_path / f"{quality}.mp4"
        path.write_bytes(got.content)

        playlist = s3.get_object(Bucket="clipstream", Key=f"processed-videos/{vid}/{quality}.m3u8")
        expected = _extinf_total(playlist["Body"].read().decode())
        decoded = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "null",
                                  "-progress", "pipe:1", "-"], capture_output=True, text=True, timeout=60)
        assert decoded.returncode == 0 and not decoded.stderr.strip(), decoded.stderr
        out_us = [int(v) for v in re.findall(r"^out_time_us=(\d+)$", decoded.stdout, re.M)]
        assert abs(out_us[-1] / 1e6 - expected) < 0.1, (out_us[-1], expected)

    # A signed-in member may use the bearer token instead of the playback token.
    resp = member["client"].http.get(f"/api/videos/{vid}/stream/720p", headers=member["me"]["headers"])
    assert resp.status_code == 302 and f"/{vid}/720p.mp4" in resp.headers["Location"]


def test_mp4_fallback_refusals(hd_video, member, live_api, stack, google_key, make_video):
    from chalice.test import Client

    import app as app_module
    from tests.conftest import _sign_in_with

    vid, token = hd_video["id"], _token(hd_video["hls_url"])
    base = f"{live_api}/api/videos/{vid}/stream"

    def get(url: str, **kw) -> tuple[int, dict]:
        resp = requests.get(url, allow_redirects=False, timeout=10, **kw)
        return resp.status_code, resp.json()

    assert get(f"{base}/1080p?token={token}")[0] == 404           # the 720p source has no 1080p
    status, body = get(f"{base}/4k?token={token}")
    assert status == 404 and body["details"]
    assert get(f"{base}/720p")[0] == 401                           # neither bearer nor token
    assert get(f"{base}/720p?token={token}x")[0] == 401
    other = make_video_for_member(member, make_video)
    assert get(f"{live_api}/api/videos/{other}/stream/720p?token={token}")[0] == 401  # token names another video
    with Client(app_module.app, stage_name="local") as client:
        outsider = _sign_in_with(client, google_key, unique_email())
        assert client.http.get(f"/api/videos/{vid}/stream/720p",
                               headers=outsider["headers"]).status_code == 403
        processing = client.http.get(f"/api/videos/{other}/stream/720p", headers=member["me"]["headers"])
        assert processing.status_code == 202 and json.loads(processing.body)["processing_index"] == 1


def make_video_for_member(member, make_video) -> str:
    """A video row still at processing_index 1 in the member's stream."""
    video = make_video({"id": member["stream_id"]}, {"id": member["me"]["user"]["id"]}, title="pending")
    return str(video["id"])


def test_files_stream_redirect_plays_in_ffmpeg(hd_video, member, live_api):
    """GET /files/videos/{id}/stream leads to a playlist whose every link is signed: FFmpeg decodes it."""
    from chalicelib.media.ffmpeg import ffmpeg_exe

    vid = hd_video["id"]
    resp = requests.get(f"{live_api}/files/videos/{vid}/stream", headers=member["me"]["headers"],
                        allow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text
    location = resp.headers["Location"]
    decoded = subprocess.run([ffmpeg_exe(), "-v", "error", "-protocol_whitelist", "http,https,tcp,tls",
                              "-i", location, "-map", "0:v:0", "-f", "null", "-"],
                             capture_output=True, text=True, timeout=120)
    assert decoded.returncode == 0 and "403" not in decoded.stderr, decoded.stderr
