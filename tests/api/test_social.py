"""Likes and share links (reference/000 Social Features; GET /share/{code})."""
from __future__ import annotations

import datetime as dt
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import pytest
import requests

from tests.api.test_videos import BUCKET, add_member, call


@pytest.fixture()
def crew(client, sign_in, make_video):
    """A stream with an admin who uploaded a video, a viewer and an outsider."""
    admin, viewer, outsider = sign_in(), sign_in(), sign_in()
    status, stream = call(client, "POST", "/streams", admin, {"name": "Social"})
    assert status == 201
    add_member(stream["id"], viewer, "viewer")
    video = make_video(stream, {"id": admin["user"]["id"]}, title="clutch")
    return {"sid": stream["id"], "admin": admin, "viewer": viewer, "outsider": outsider,
            "vid": str(video["id"])}


def complete(vid, bitrates="{480,720}"):
    from chalicelib import db
    db.execute("UPDATE videos SET processing_index = 0, status = 'complete', duration_s = 31.5,"
               " bitrates = %s, description = 'nice' WHERE id = %s", (bitrates, vid))


# ---------------------------------------------------------------- likes

def test_like_toggles_and_counts(client, crew):
    path = f"/videos/{crew['vid']}"
    assert call(client, "GET", f"{path}/likes", crew["viewer"]) == (200, {"total_likes": 0, "liked": False})
    assert call(client, "POST", f"{path}/like", crew["viewer"]) == (200, {"liked": True, "total_likes": 1})
    assert call(client, "POST", f"{path}/like", crew["admin"]) == (200, {"liked": True, "total_likes": 2})
    assert call(client, "GET", f"{path}/likes", crew["viewer"]) == (200, {"total_likes": 2, "liked": True})
    assert call(client, "POST", f"{path}/like", crew["viewer"]) == (200, {"liked": False, "total_likes": 1})
    assert call(client, "GET", f"{path}/likes", crew["viewer"]) == (200, {"total_likes": 1, "liked": False})
    assert call(client, "GET", path, crew["admin"])[1]["total_likes"] == 1


def test_like_errors(client, crew):
    for method, suffix in (("POST", "like"), ("GET", "likes")):
        assert call(client, method, f"/videos/{crew['vid']}/{suffix}", crew["outsider"]) == \
            (403, {"error": "Access denied"})
        assert call(client, method, f"/videos/{uuid.uuid4()}/{suffix}", crew["viewer"]) == \
            (404, {"error": "Video not found"})
        assert call(client, method, f"/videos/x/{suffix}", crew["viewer"]) == (404, {"error": "Video not found"})
        assert call(client, method, f"/videos/{crew['vid']}/{suffix}")[0] == 401


def test_a_double_click_from_many_tabs_never_counts_twice(live_api, crew):
    """Concurrent toggles over HTTP (chalice local): one row per user, counts never above 1."""
    url = f"{live_api}/videos/{crew['vid']}/like"
    headers = crew["viewer"]["headers"]
    barrier = threading.Barrier(8)

    def click(_):
        barrier.wait()
        return requests.post(url, headers=headers, timeout=30)

    for _ in range(3):
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(click, range(8)))
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        assert all(r.json()["total_likes"] in (0, 1) for r in responses)
        state = requests.get(f"{url}s", headers=headers, timeout=30).json()
        assert state["total_likes"] == (1 if state["liked"] else 0)
        from chalicelib import db
        assert db.fetch_one("SELECT count(*) AS n FROM likes WHERE video_id = %s",
                            (crew["vid"],))["n"] == state["total_likes"]


def test_concurrent_likes_of_different_users_all_count(live_api, crew, sign_in):
    fans = [sign_in() for _ in range(6)]
    for fan in fans:
        add_member(crew["sid"], fan, "viewer")
    barrier = threading.Barrier(len(fans))

    def like(fan):
        barrier.wait()
        return requests.post(f"{live_api}/videos/{crew['vid']}/like", headers=fan["headers"], timeout=30)

    with ThreadPoolExecutor(len(fans)) as pool:
        responses = list(pool.map(like, fans))
    assert all(r.status_code == 200 and r.json()["liked"] for r in responses)
    assert max(r.json()["total_likes"] for r in responses) == len(fans)
    assert requests.get(f"{live_api}/videos/{crew['vid']}/likes", headers=fans[0]["headers"],
                        timeout=30).json() == {"total_likes": len(fans), "liked": True}


# ---------------------------------------------------------------- shares

def test_share_link_defaults_to_seven_days(client, crew, stack):
    status, body = call(client, "POST", f"/videos/{crew['vid']}/share", crew["viewer"])
    assert status == 201
    assert body["share_url"] == f"{stack.env['PUBLIC_BASE_URL']}/share/{body['code']}"
    assert len(body["code"]) >= 22                                   # 128 random bits
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    left = expires - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=7) - dt.timedelta(minutes=1) < left <= dt.timedelta(days=7)
    status, other = call(client, "POST", f"/videos/{crew['vid']}/share", crew["admin"], {"expires_in_hours": 2})
    assert status == 201 and other["code"] != body["code"]
    expires = dt.datetime.fromisoformat(other["expires_at"].replace("Z", "+00:00"))
    assert expires - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(hours=2)


@pytest.mark.parametrize("body,details", [
    ({"expires_in_hours": 0}, ["expires_in_hours must be between 1 and 8760"]),
    ({"expires_in_hours": 8761}, ["expires_in_hours must be between 1 and 8760"]),
    ({"expires_in_hours": "24"}, ["expires_in_hours must be an integer"]),
    ({"expires_in_hours": True}, ["expires_in_hours must be an integer"]),
    ({"expires_in_hours": 1.5}, ["expires_in_hours must be an integer"]),
    ({"public": True}, ["unknown field: public"]),
])
def test_share_validation(client, crew, body, details):
    assert call(client, "POST", f"/videos/{crew['vid']}/share", crew["viewer"], body) == \
        (400, {"error": "Invalid share parameters", "details": details})


def test_share_errors(client, crew):
    assert call(client, "POST", f"/videos/{crew['vid']}/share", crew["viewer"], "[1]")[0] == 400
    for method, suffix in (("POST", "share"), ("GET", "shares")):
        assert call(client, method, f"/videos/{crew['vid']}/{suffix}", crew["outsider"]) == \
            (403, {"error": "Access denied"})
        assert call(client, method, f"/videos/{uuid.uuid4()}/{suffix}", crew["viewer"]) == \
            (404, {"error": "Video not found"})
        assert call(client, method, f"/videos/{crew['vid']}/{suffix}")[0] == 401


def test_share_counts(client, crew):
    from chalicelib import db

    assert call(client, "GET", f"/videos/{crew['vid']}/shares", crew["viewer"]) == \
        (200, {"total_shares": 0, "active_shares": 0})
    for _ in range(3):
        call(client, "POST", f"/videos/{crew['vid']}/share", crew["viewer"])
    db.execute("UPDATE shares SET expires_at = now() - interval '1 minute' WHERE code ="
               " (SELECT code FROM shares WHERE video_id = %s LIMIT 1)", (crew["vid"],))
    assert call(client, "GET", f"/videos/{crew['vid']}/shares", crew["admin"]) == \
        (200, {"total_shares": 3, "active_shares": 2})


def test_public_share_of_a_complete_video(client, crew, s3):
    complete(crew["vid"])
    vid = crew["vid"]
    s3.put_object(Bucket=BUCKET, Key=f"thumbnails/{vid}.jpg", Body=b"\xff\xd8final\xff\xd9",
                  ContentType="image/jpeg")
    s3.put_object(Bucket=BUCKET, Key=f"processed-videos/{vid}/master.m3u8", Body=b"#EXTM3U\n")
    code = call(client, "POST", f"/videos/{vid}/share", crew["viewer"])[1]["code"]
    resp = client.http.get(f"/share/{code}")                       # no Authorization header
    assert resp.status_code == 200
    body = __import__("json").loads(resp.body)
    assert (body["id"], body["title"], body["description"], body["duration"]) == (vid, "clutch", "nice", 31.5)
    assert body["stream"]["bitrates"] == [480, 720]
    assert "X-Amz-Signature" in body["thumbnail_url"]
    assert requests.get(body["thumbnail_url"], timeout=10).content == b"\xff\xd8final\xff\xd9"
    # hls_url is whatever GET /videos/{id}/stream hands out; anyone with the link can play it.
    playlist = client.http.get(urlparse(body["stream"]["hls_url"])._replace(scheme="", netloc="").geturl())
    assert playlist.status_code == 200 and playlist.body.decode().startswith("#EXTM3U")


def test_public_share_while_processing_has_no_stream(client, crew, s3):
    vid = crew["vid"]
    s3.put_object(Bucket=BUCKET, Key=f"thumbnails/{vid}_processing.jpg", Body=b"\xff\xd8p")
    code = call(client, "POST", f"/videos/{vid}/share", crew["viewer"])[1]["code"]
    status, body = call(client, "GET", f"/share/{code}")
    assert status == 200 and body["stream"] is None and body["processing_index"] == 1
    assert f"thumbnails/{vid}_processing.jpg" in body["thumbnail_url"]


def test_public_share_unknown_expired_and_deleted(client, crew):
    from chalicelib import db

    assert call(client, "GET", "/share/nope") == (404, {"error": "Share link not found"})
    assert call(client, "GET", "/share/" + "x" * 100) == (404, {"error": "Share link not found"})
    code = call(client, "POST", f"/videos/{crew['vid']}/share", crew["viewer"])[1]["code"]
    db.execute("UPDATE shares SET expires_at = now() - interval '1 second' WHERE code = %s", (code,))
    assert call(client, "GET", f"/share/{code}") == (410, {"error": "Share link expired"})
    fresh = call(client, "POST", f"/videos/{crew['vid']}/share", crew["viewer"])[1]["code"]
    assert call(client, "DELETE", f"/videos/{crew['vid']}", crew["admin"])[0] == 204
    assert call(client, "GET", f"/share/{fresh}") == (404, {"error": "Share link not found"})
