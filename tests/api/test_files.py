"""File serving: thumbnails by processing state, stream redirects (reference/000 File Serving)."""
from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.api.test_videos import BUCKET, add_member, call

FINAL, PROCESSING, DUPLICATE = b"\xff\xd8final", b"\xff\xd8processing", b"\xff\xd8duplicate"


@pytest.fixture()
def crew(client, sign_in, make_video, s3):
    admin, viewer, outsider = sign_in(), sign_in(), sign_in()
    status, stream = call(client, "POST", "/streams", admin, {"name": "Files"})
    assert status == 201
    add_member(stream["id"], viewer, "viewer")
    vid = str(make_video(stream, {"id": admin["user"]["id"]})["id"])
    return {"admin": admin, "viewer": viewer, "outsider": outsider, "vid": vid}


def put_thumbnails(s3, vid):
    for suffix, data in (("", FINAL), ("_processing", PROCESSING), ("_duplicate", DUPLICATE)):
        s3.put_object(Bucket=BUCKET, Key=f"thumbnails/{vid}{suffix}.jpg", Body=data, ContentType="image/jpeg")


def set_state(vid, index, status):
    from chalicelib import db
    db.execute("UPDATE videos SET processing_index = %s, status = %s WHERE id = %s", (index, status, vid))


def get_thumbnail(client, who, vid, accept="image/jpeg", **extra):
    headers = {**who["headers"], **({"Accept": accept} if accept else {}), **extra}
    return client.http.get(f"/files/videos/{vid}/thumbnail", headers=headers)


def follow(resp):
    """The image behind a thumbnail redirect, fetched like a client with no credentials for storage."""
    assert resp.status_code == 302, (resp.status_code, resp.body)
    return requests.get(resp.headers["Location"], timeout=10)


@pytest.mark.parametrize("index,status,expected,cache", [
    (1, "running", PROCESSING, "private, max-age=60"),
    (3, "running", PROCESSING, "private, max-age=60"),
    (0, "complete", FINAL, "private, max-age=86400"),
    (-1, "duplicate", DUPLICATE, "private, max-age=86400"),
])
def test_thumbnail_follows_the_processing_state(client, crew, s3, index, status, expected, cache):
    put_thumbnails(s3, crew["vid"])
    set_state(crew["vid"], index, status)
    resp = get_thumbnail(client, crew["viewer"], crew["vid"])
    assert resp.status_code == 302 and not resp.body
    assert resp.headers["ETag"].startswith('"')
    assert "X-Amz-Signature" in resp.headers["Location"]
    # A cached redirect must not outlive the presigned URL it points at (900 s here).
    assert resp.headers["Cache-Control"] == ("private, max-age=60" if cache.endswith("=60") else "private, max-age=840")
    image = follow(resp)
    assert image.status_code == 200 and image.content == expected
    assert image.headers["Content-Type"] == "image/jpeg"
    assert image.headers["Cache-Control"] == cache
    assert image.headers["ETag"] == resp.headers["ETag"]


def test_thumbnail_with_a_browser_accept_header_and_etag(client, crew, s3):
    put_thumbnails(s3, crew["vid"])
    set_state(crew["vid"], 0, "complete")
    browser = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
    first = get_thumbnail(client, crew["viewer"], crew["vid"], accept=browser)
    assert follow(first).content == FINAL
    again = get_thumbnail(client, crew["viewer"], crew["vid"], **{"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.body
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Cache-Control"] == "private, max-age=86400"
    # Storage answers the same conditional GET itself.
    assert requests.get(first.headers["Location"], headers={"If-None-Match": first.headers["ETag"]},
                        timeout=10).status_code == 304
    stale = get_thumbnail(client, crew["viewer"], crew["vid"], **{"If-None-Match": '"other"'})
    assert follow(stale).content == FINAL


@pytest.mark.parametrize("accept", [None, "*/*", "image/jpeg", "application/json", "text/html"])
def test_thumbnail_whatever_the_accept_header(client, crew, s3, accept):
    """Chalice (like API Gateway) answered 400 to a binary body without a matching Accept."""
    put_thumbnails(s3, crew["vid"])
    set_state(crew["vid"], 0, "complete")
    assert follow(get_thumbnail(client, crew["viewer"], crew["vid"], accept=accept)).content == FINAL


def test_failed_video_falls_back_to_what_exists(client, crew, s3):
    s3.put_object(Bucket=BUCKET, Key=f"thumbnails/{crew['vid']}_processing.jpg", Body=PROCESSING)
    set_state(crew["vid"], 2, "failed")
    assert follow(get_thumbnail(client, crew["viewer"], crew["vid"])).content == PROCESSING


def test_thumbnail_not_found_and_access(client, crew, s3):
    resp = get_thumbnail(client, crew["viewer"], crew["vid"])
    assert resp.status_code == 404 and json.loads(resp.body) == {"error": "Thumbnail not found"}
    set_state(crew["vid"], 0, "complete")
    s3.put_object(Bucket=BUCKET, Key=f"thumbnails/{crew['vid']}_processing.jpg", Body=PROCESSING)
    assert get_thumbnail(client, crew["viewer"], crew["vid"]).status_code == 404   # only the final one fits
    put_thumbnails(s3, crew["vid"])
    resp = get_thumbnail(client, crew["outsider"], crew["vid"])
    assert resp.status_code == 403 and json.loads(resp.body) == {"error": "Access denied"}
    resp = get_thumbnail(client, crew["viewer"], str(uuid.uuid4()))
    assert resp.status_code == 404 and json.loads(resp.body) == {"error": "Video not found"}
    resp = client.http.get(f"/files/videos/{crew['vid']}/thumbnail", headers={"Accept": "image/jpeg"})
    assert resp.status_code == 401


@pytest.mark.parametrize("accept", [None, "*/*", "image/jpeg",
                                    "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"])
def test_thumbnail_over_http(live_api, crew, s3, accept):
    """Like curl: no Accept at all (requests would send */*, so it is removed), */*, image/jpeg, a browser's."""
    put_thumbnails(s3, crew["vid"])
    set_state(crew["vid"], 0, "complete")
    url = f"{live_api}/files/videos/{crew['vid']}/thumbnail"
    with requests.Session() as session:
        session.headers.pop("Accept")
        headers = {**crew["viewer"]["headers"], **({"Accept": accept} if accept else {})}
        first = session.get(url, headers=headers, allow_redirects=False, timeout=30)
        assert first.request.headers.get("Accept") == accept
        assert first.status_code == 302 and first.headers["Location"].startswith("http")
        resp = session.get(url, headers=headers, timeout=30)          # follows the redirect
    assert resp.status_code == 200 and resp.content == FINAL
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.headers["Cache-Control"] == "private, max-age=86400"
    assert "Authorization" not in resp.request.headers                # the token never goes to storage
    outsider = requests.get(url, headers=crew["outsider"]["headers"], allow_redirects=False, timeout=30)
    assert outsider.status_code == 403 and "Location" not in outsider.headers


def test_stream_redirects_to_the_best_rendition(client, crew, s3):
    vid = crew["vid"]
    resp = client.http.get(f"/files/videos/{vid}/stream", headers=crew["viewer"]["headers"])
    assert resp.status_code == 404 and json.loads(resp.body) == {"error": "Video file not found"}

    s3.put_object(Bucket=BUCKET, Key=f"raw-uploads/{vid}.mp4", Body=b"raw bytes")
    resp = client.http.get(f"/files/videos/{vid}/stream", headers=crew["viewer"]["headers"])
    assert resp.status_code == 302 and resp.headers["Cache-Control"] == "no-store"
    assert f"/raw-uploads/{vid}.mp4" in resp.headers["Location"]
    assert "X-Amz-Expires=300" in resp.headers["Location"]
    assert requests.get(resp.headers["Location"], timeout=10).content == b"raw bytes"

    s3.put_object(Bucket=BUCKET, Key=f"processed-videos/{vid}/master.m3u8", Body=b"#EXTM3U\n")
    set_state(vid, 0, "complete")
    resp = client.http.get(f"/files/videos/{vid}/stream", headers=crew["viewer"]["headers"])
    # The API's master playlist with a playback token: its variants and segments are signed too.
    assert resp.status_code == 302 and f"/api/videos/{vid}/hls/master.m3u8?token=" in resp.headers["Location"]


def test_stream_access(client, crew):
    resp = client.http.get(f"/files/videos/{crew['vid']}/stream", headers=crew["outsider"]["headers"])
    assert resp.status_code == 403
    resp = client.http.get(f"/files/videos/{uuid.uuid4()}/stream", headers=crew["viewer"]["headers"])
    assert resp.status_code == 404 and json.loads(resp.body) == {"error": "Video not found"}
