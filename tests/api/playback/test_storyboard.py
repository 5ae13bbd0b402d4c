"""Scrub-bar previews: the stored WebVTT thumbnails track, served privately like the HLS."""
from __future__ import annotations

import io
import json
import re
from urllib.parse import parse_qs, urlparse

import requests
from PIL import Image

from tests.api.playback.conftest import unique_email

CUE = re.compile(r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)\n")


def _token(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


def test_storyboard_track_points_at_private_sheets(hd_video, member, stack, live_api):
    from chalicelib import db

    vid, token = hd_video["id"], _token(hd_video["hls_url"])
    resp = requests.get(f"{live_api}/videos/{vid}/storyboard.vtt?token={token}", timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/vtt")
    assert resp.headers["Access-Control-Allow-Origin"] == "*" and "private" in resp.headers["Cache-Control"]
    cues = CUE.findall(resp.text)
    assert resp.text.startswith("WEBVTT\n") and len(cues) == 9            # 9 s clip, one preview a second
    assert cues[0][:2] == ("00:00:00.000", "00:00:01.000") and cues[-1][1] == "00:00:09.000"
    sheets = {url for _, _, url, *_ in cues}
    assert len(sheets) == 1
    (url,) = sheets
    assert url.startswith(stack.env["S3_ENDPOINT_URL"]) and "X-Amz-Signature=" in url
    got = requests.get(url, timeout=10)
    assert got.status_code == 200 and got.headers["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(got.content)) as img:
        assert img.size == (800, 450)                                     # 5 x 5 tiles of 160 x 90
        for _, _, _, x, y, w, h in cues:
            assert int(x) + int(w) <= img.width and int(y) + int(h) <= img.height
    assert requests.get(url.split("?")[0], timeout=10).status_code == 403  # the bucket stays private
    kinds = {r["key"].rsplit("/", 1)[-1]: r["kind"] for r in db.fetch_all(
        "SELECT key, kind FROM video_assets WHERE video_id = %s AND kind = 'storyboard'", (vid,))}
    assert kinds == {"storyboard.vtt": "storyboard", "sprite_000.jpg": "storyboard"}
    # A member's bearer token works too.
    by_bearer = member["client"].http.get(f"/videos/{vid}/storyboard.vtt", headers=member["me"]["headers"])
    assert by_bearer.status_code == 200 and len(CUE.findall(by_bearer.body.decode())) == 9


def test_storyboard_refusals(hd_video, speech_video, google_key):
    from chalice.test import Client

    import app as app_module
    from tests.conftest import _sign_in_with

    vid = hd_video["id"]
    with Client(app_module.app, stage_name="local") as client:
        for query in ("", f"?token={_token(hd_video['hls_url'])}x", f"?token={_token(speech_video['hls_url'])}"):
            resp = client.http.get(f"/videos/{vid}/storyboard.vtt{query}")
            assert resp.status_code == 401 and "X-Amz" not in resp.body.decode()
        outsider = _sign_in_with(client, google_key, unique_email())
        resp = client.http.get(f"/videos/{vid}/storyboard.vtt", headers=outsider["headers"])
        assert resp.status_code == 403 and "X-Amz" not in resp.body.decode()
        assert json.loads(resp.body)["error"]


def test_storyboard_missing_is_404_not_500(hd_video, member, s3):
    """A video transcoded before storyboards existed: 404 with details."""
    vid = hd_video["id"]
    key = f"processed-videos/{vid}/storyboard.vtt"
    body = s3.get_object(Bucket="clipstream", Key=key)["Body"].read()
    s3.delete_object(Bucket="clipstream", Key=key)
    try:
        resp = member["client"].http.get(f"/videos/{vid}/storyboard.vtt", headers=member["me"]["headers"])
        assert resp.status_code == 404 and json.loads(resp.body)["details"]
    finally:
        s3.put_object(Bucket="clipstream", Key=key, Body=body, ContentType="text/vtt")
