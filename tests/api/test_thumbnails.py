"""Custom thumbnails through the API: presigned upload, check and re-encode, serve, remove."""
from __future__ import annotations

import io
import uuid
import zipfile

import pytest
import requests
from PIL import Image

from tests.api.test_files import FINAL, DUPLICATE, follow, get_thumbnail, put_thumbnails, set_state
from tests.api.test_videos import BUCKET, add_member, call
from tests.media.test_custom_thumbnail import image_bytes


@pytest.fixture()
def crew(client, sign_in, make_video, s3):
    """A stream with its admin, a creator who uploaded the video, a viewer; a stranger outside."""
    admin, creator, viewer, stranger = sign_in(), sign_in(), sign_in(), sign_in()
    status, stream = call(client, "POST", "/streams", admin, {"name": "Thumbs"})
    assert status == 201
    add_member(stream["id"], creator, "creator")
    add_member(stream["id"], viewer, "viewer")
    vid = str(make_video(stream, {"id": creator["user"]["id"]})["id"])
    put_thumbnails(s3, vid)
    set_state(vid, 0, "complete")
    return {"admin": admin, "creator": creator, "viewer": viewer, "stranger": stranger, "vid": vid}


def upload(client, who, vid, data: bytes, content_type: str = "image/png", declared: str | None = None):
    """POST for a presigned PUT, PUT the bytes to storage; the POST's answer."""
    status, got = call(client, "POST", f"/videos/{vid}/thumbnail", who,
                       {"content_type": declared or content_type, "size_bytes": len(data)})
    assert status == 201, got
    put = requests.put(got["upload_url"], data=data, headers=got["upload_headers"], timeout=30)
    assert put.status_code == 200, put.text
    return got


def set_custom(client, who, vid, data: bytes, content_type: str = "image/png"):
    got = upload(client, who, vid, data, content_type)
    return call(client, "PUT", f"/videos/{vid}/thumbnail", who, {"upload_id": got["upload_id"]})


def custom_key(vid):
    from chalicelib import db
    return db.fetch_one("SELECT custom_thumbnail_key FROM videos WHERE id = %s", (vid,))["custom_thumbnail_key"]


def keys(s3, vid):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"thumbnails/{vid}").get("Contents", []))


def uploads(s3, vid):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"thumbnail-uploads/{vid}/").get("Contents", [])]


def served(client, who, vid) -> bytes:
    return follow(get_thumbnail(client, who, vid)).content


@pytest.mark.parametrize("who", ["creator", "admin"])
def test_uploader_or_stream_admin_sets_a_custom_thumbnail_and_removes_it(client, crew, s3, who):
    vid = crew["vid"]
    created = upload(client, crew[who], vid, image_bytes("PNG", size=(1600, 900)))
    assert f"thumbnail-uploads/{vid}/{created['upload_id']}" in created["upload_url"]
    assert created["upload_headers"] == {"Content-Type": "image/png", "If-None-Match": "*"}
    assert created["max_size"] == "5MB"
    status, body = call(client, "PUT", f"/videos/{vid}/thumbnail", crew[who], {"upload_id": created["upload_id"]})
    assert status == 200, body
    assert body["custom_thumbnail"] is True and (body["width"], body["height"]) == (1280, 720)
    # Viewers get the re-encoded JPEG, not the upload; the upload itself is gone.
    resp = get_thumbnail(client, crew["viewer"], vid)
    assert resp.headers["Cache-Control"] == "private, max-age=300"
    image = follow(resp)
    assert image.headers["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(image.content)) as img:
        assert img.format == "JPEG" and img.size == (1280, 720)
    assert keys(s3, vid) == sorted([f"thumbnails/{vid}.jpg", f"thumbnails/{vid}_processing.jpg",
                                    f"thumbnails/{vid}_duplicate.jpg", custom_key(vid)])
    assert not uploads(s3, vid)
    # Deleting it returns to the representative frame and removes the JPEG.
    old = custom_key(vid)
    assert call(client, "DELETE", f"/videos/{vid}/thumbnail", crew[who])[0] == 204
    assert custom_key(vid) is None and old not in keys(s3, vid)
    assert served(client, crew["viewer"], vid) == FINAL
    assert call(client, "DELETE", f"/videos/{vid}/thumbnail", crew[who])[0] == 204   # nothing set: still 204


def test_a_new_thumbnail_replaces_the_old_one_and_a_duplicate_keeps_its_overlay(client, crew, s3):
    vid = crew["vid"]
    assert set_custom(client, crew["creator"], vid, image_bytes("WEBP"), "image/webp")[0] == 200
    first = custom_key(vid)
    status, body = set_custom(client, crew["admin"], vid, image_bytes("JPEG", color=(0, 0, 250)), "image/jpeg")
    assert status == 200, body
    assert custom_key(vid) != first and first not in keys(s3, vid)
    with Image.open(io.BytesIO(served(client, crew["viewer"], vid))) as img:
        assert img.getpixel((300, 170))[2] > 200        # the blue one
    set_state(vid, -1, "duplicate")
    assert served(client, crew["viewer"], vid) == DUPLICATE


def _polyglot() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("index.html", "<script>alert(document.cookie)</script>")
    return image_bytes("PNG") + archive.getvalue()


def _bomb() -> bytes:
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, "PNG", optimize=True)
    return out.getvalue()


@pytest.mark.parametrize("data,content_type,detail", [
    (b"just some text, not an image at all", "image/png", "not a PNG image"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "image/jpeg", "not a JPEG image"),
    (_polyglot(), "image/png", "bytes follow the end of the image"),
    (_bomb(), "image/png", "decompression bomb"),
    (image_bytes("JPEG"), "image/png", "not a PNG image"),       # the client lied about the type
])
def test_bad_images_get_400_with_details_and_change_nothing(client, crew, s3, data, content_type, detail):
    vid = crew["vid"]
    assert set_custom(client, crew["creator"], vid, image_bytes("PNG"))[0] == 200
    before_key, before_bytes = custom_key(vid), served(client, crew["viewer"], vid)
    status, body = set_custom(client, crew["creator"], vid, data, content_type)
    assert status == 400, body
    assert body["error"] == "Invalid thumbnail image" and any(detail in d for d in body["details"]), body
    assert custom_key(vid) == before_key and served(client, crew["viewer"], vid) == before_bytes
    assert not uploads(s3, vid)     # the refused upload is not kept


def test_the_request_is_checked_before_any_upload(client, crew):
    vid = crew["vid"]
    for body, detail in [
        ({"content_type": "image/svg+xml", "size_bytes": 100}, "content_type must be one of"),
        ({"content_type": "image/gif", "size_bytes": 100}, "content_type must be one of"),
        ({"content_type": "image/png", "size_bytes": 5 * 1024 * 1024 + 1}, "size_bytes must be at most 5242880"),
        ({"content_type": "image/png", "size_bytes": 0}, "size_bytes must be greater than 0"),
        ({"content_type": "image/png", "size_bytes": "12"}, "size_bytes must be an integer"),
    ]:
        status, got = call(client, "POST", f"/videos/{vid}/thumbnail", crew["creator"], body)
        assert status == 400 and any(detail in d for d in got["details"]), (body, got)
    for upload_id in (None, "", "not-a-uuid"):
        status, got = call(client, "PUT", f"/videos/{vid}/thumbnail", crew["creator"], {"upload_id": upload_id})
        assert status == 400 and got["details"], (upload_id, got)
    # A well-formed id nothing was uploaded for is unknown: 404, as for any id.
    status, got = call(client, "PUT", f"/videos/{vid}/thumbnail", crew["creator"], {"upload_id": str(uuid.uuid4())})
    assert status == 404 and got["error"] == "Thumbnail upload not found"
    assert custom_key(vid) is None


def test_storage_holds_the_client_to_the_declared_size_and_one_use(client, crew, s3):
    vid = crew["vid"]
    data = image_bytes("PNG")
    got = call(client, "POST", f"/videos/{vid}/thumbnail", crew["creator"],
               {"content_type": "image/png", "size_bytes": len(data)})[1]
    bigger = requests.put(got["upload_url"], data=data + b"x" * 1000, headers=got["upload_headers"], timeout=30)
    assert bigger.status_code == 403
    svg = requests.put(got["upload_url"], data=data, timeout=30,
                       headers={**got["upload_headers"], "Content-Type": "image/svg+xml"})
    assert svg.status_code == 403
    assert requests.put(got["upload_url"], data=data, headers=got["upload_headers"], timeout=30).status_code == 200
    status, first = call(client, "PUT", f"/videos/{vid}/thumbnail", crew["creator"], {"upload_id": got["upload_id"]})
    assert status == 200 and not uploads(s3, vid)
    key, objects = custom_key(vid), keys(s3, vid)
    # A repeated PUT (a client's or the API's retry) gives the same answer and changes nothing.
    assert call(client, "PUT", f"/videos/{vid}/thumbnail", crew["creator"], {"upload_id": got["upload_id"]}) \
        == (200, first)
    assert custom_key(vid) == key and keys(s3, vid) == objects
    # Once removed, the used upload id sets nothing again: its bytes are gone.
    assert call(client, "DELETE", f"/videos/{vid}/thumbnail", crew["creator"])[0] == 204
    status, body = call(client, "PUT", f"/videos/{vid}/thumbnail", crew["creator"], {"upload_id": got["upload_id"]})
    assert status == 404 and body["error"] == "Thumbnail upload not found" and custom_key(vid) is None


def test_an_upload_id_of_another_video_does_not_carry_over(client, crew, make_video, s3):
    from chalicelib import db
    stream = db.fetch_one("SELECT * FROM streams s JOIN videos v ON v.stream_id = s.id WHERE v.id = %s",
                          (crew["vid"],))
    other = str(make_video({"id": stream["stream_id"]}, {"id": crew["creator"]["user"]["id"]})["id"])
    got = upload(client, crew["creator"], crew["vid"], image_bytes("PNG"))
    status, body = call(client, "PUT", f"/videos/{other}/thumbnail", crew["creator"], {"upload_id": got["upload_id"]})
    assert status == 404 and body["error"] == "Thumbnail upload not found"
    assert custom_key(other) is None and custom_key(crew["vid"]) is None


@pytest.mark.parametrize("who,expected", [("viewer", 403), ("stranger", 403)])   # as PUT /videos/{id} answers them
def test_viewers_and_strangers_are_refused_and_change_nothing(client, crew, s3, who, expected):
    vid = crew["vid"]
    assert set_custom(client, crew["creator"], vid, image_bytes("PNG"))[0] == 200
    before_key, before_objects = custom_key(vid), keys(s3, vid)
    mine = upload(client, crew["creator"], vid, image_bytes("JPEG"), "image/jpeg")   # waiting for its PUT
    assert call(client, "POST", f"/videos/{vid}/thumbnail", crew[who],
                {"content_type": "image/png", "size_bytes": 100})[0] == expected
    assert call(client, "PUT", f"/videos/{vid}/thumbnail", crew[who], {"upload_id": mine["upload_id"]})[0] == expected
    assert call(client, "DELETE", f"/videos/{vid}/thumbnail", crew[who])[0] == expected
    assert call(client, "DELETE", f"/videos/{vid}/thumbnail", None)[0] == 401
    assert custom_key(vid) == before_key
    assert keys(s3, vid) == before_objects
    assert uploads(s3, vid) == [f"thumbnail-uploads/{vid}/{mine['upload_id']}"]


def test_a_demoted_uploader_can_no_longer_change_it(client, crew):
    from chalicelib import db
    db.execute("UPDATE stream_members SET role = 'viewer' WHERE user_id = %s", (crew["creator"]["user"]["id"],))
    status, body = call(client, "POST", f"/videos/{crew['vid']}/thumbnail", crew["creator"],
                        {"content_type": "image/png", "size_bytes": 100})
    assert status == 403, body
