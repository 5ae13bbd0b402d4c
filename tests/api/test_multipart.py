"""Resumable multipart uploads: drop half-way, resume, one object, one execution."""
from __future__ import annotations

import struct
import time

import pytest
import requests

from tests.helpers import call, video_row, wait_for, wait_for_final

MiB = 2**20
BUCKET = "clipstream"


@pytest.fixture(scope="module")
def big_clip(tmp_path_factory):
    """A real clip padded to 12 MiB + a few bytes with a top-level MP4 `free` box (players skip it)."""
    from tests.media import clips as make
    folder = tmp_path_factory.mktemp("multipart")
    data = make.make_clip(folder / "big.mp4", scene="cellauto", duration=2.0, size=(128, 72),
                          seed=4242).read_bytes()
    pad = 12 * MiB + 12345 - len(data)
    return data + struct.pack(">I", pad) + b"free" + bytes(pad - 8)


@pytest.fixture()
def creator(sign_in, make_stream):
    me = sign_in()
    return me, make_stream({"id": me["user"]["id"]})


def _start(client, me, stream, size, **extra):
    body = {"title": "Long match", "filename": "match.mp4", "size_bytes": size, "content_type": "video/mp4",
            "upload": "multipart", "part_size_bytes": 5 * MiB, **extra}
    return call(client, "POST", f"/streams/{stream['id']}/videos", me, body)


def _send(part: dict, data: bytes) -> requests.Response:
    start = (part["part_number"] - 1) * 5 * MiB
    return requests.put(part["url"], data=data[start:start + part["size"]], headers=part["headers"], timeout=60)


def _executions(video_id: str) -> int:
    from chalicelib import db
    return db.fetch_one("SELECT count(*) AS n FROM pipeline_executions WHERE video_id = %s", (video_id,))["n"]


def _open_uploads(s3, video_id: str) -> list[str]:
    return [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=BUCKET, Prefix=f"raw-uploads/{video_id}.")
            .get("Uploads", [])]


def test_an_interrupted_upload_resumes_to_one_identical_object_and_one_execution(client, creator, big_clip, s3):
    me, stream = creator
    status, created = _start(client, me, stream, len(big_clip))
    assert status == 201, created
    vid, upload_id = created["id"], created["upload_id"]
    assert created["upload_method"] == "MULTIPART" and created["processing_index"] == 1
    assert [(p["part_number"], p["size"]) for p in created["parts"]] == [
        (1, 5 * MiB), (2, 5 * MiB), (3, 2 * MiB + 12345)]
    assert created["received"] == [] and created["part_count"] == 3
    # The first part arrives; the second is cut off mid-body (the connection drops).
    first = _send(created["parts"][0], big_clip)
    assert first.status_code == 200, first.text
    cut = requests.put(created["parts"][1]["url"], data=big_clip[5 * MiB:7 * MiB],
                       headers={"Content-Length": str(2 * MiB)}, timeout=60)
    assert cut.status_code == 403          # the signed Content-Length is 5 MiB: storage keeps nothing
    time.sleep(2)
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=f"raw-uploads/{vid}").get("KeyCount") == 0
    assert _executions(vid) == 0
    # Resume: storage has part 1; fresh URLs for 2 and 3.
    status, state = call(client, "GET", f"/videos/{vid}/multipart?upload_id={upload_id}", me)
    assert status == 200, state
    assert [p["part_number"] for p in state["received"]] == [1]
    assert state["received"][0]["etag"] == first.headers["ETag"].strip('"')
    assert [p["part_number"] for p in state["parts"]] == [2, 3]
    etags = {1: state["received"][0]["etag"]}
    for part in reversed(state["parts"]):                       # parts may arrive in any order
        resp = _send(part, big_clip)
        assert resp.status_code == 200, resp.text
        etags[part["part_number"]] = resp.headers["ETag"]
    assert _executions(vid) == 0
    body = {"upload_id": upload_id, "parts": [{"part_number": n, "etag": etags[n]} for n in (1, 2, 3)]}
    status, done = call(client, "POST", f"/videos/{vid}/multipart/complete", me, body)
    assert status == 200, done
    assert done["upload"] == "complete" and done["size_bytes"] == len(big_clip)
    assert s3.get_object(Bucket=BUCKET, Key=f"raw-uploads/{vid}.mp4")["Body"].read() == big_clip
    wait_for(lambda: _executions(vid) == 1, 30)
    # A repeated completion (the answer was lost) answers the same and starts nothing.
    assert call(client, "POST", f"/videos/{vid}/multipart/complete", me, body) == (200, done)
    assert _open_uploads(s3, vid) == []
    row = wait_for_final(vid, 120)
    assert row["status"] == "complete", row
    assert _executions(vid) == 1


@pytest.mark.attack
def test_wrong_completions_are_4xx_and_store_nothing(client, creator, big_clip, s3, sign_in, make_stream):
    me, stream = creator
    _, created = _start(client, me, stream, len(big_clip))
    vid, upload_id = created["id"], created["upload_id"]
    etags = {p["part_number"]: _send(p, big_clip).headers["ETag"] for p in created["parts"][:2]}
    # Another video of the same user, and another user's video: their upload ids are foreign here.
    _, mine = _start(client, me, stream, len(big_clip), title="other")
    other = sign_in()
    _, theirs = _start(client, other, make_stream({"id": other["user"]["id"]}), len(big_clip))
    parts3 = [{"part_number": n, "etag": etags.get(n, '"00"')} for n in (1, 2, 3)]
    cases = [
        ({"upload_id": upload_id, "parts": [parts3[1], parts3[0], parts3[2]]}, 400, "ascending"),
        ({"upload_id": upload_id, "parts": [parts3[0], parts3[0], parts3[2]]}, 400, "ascending"),
        ({"upload_id": upload_id, "parts": parts3[:2]}, 400, "missing parts: 3"),
        ({"upload_id": upload_id, "parts": parts3 + [{"part_number": 4, "etag": "x"}]}, 400, "no such parts"),
        ({"upload_id": upload_id, "parts": parts3}, 400, "part 3: storage has not received it"),
        ({"upload_id": upload_id, "parts": [parts3[0], {"part_number": 2, "etag": etags[1]}, parts3[2]]}, 400,
         "part 2: etag does not match"),
        ({"upload_id": upload_id, "parts": [{"part_number": "1", "etag": etags[1]}]}, 400, "integer part_number"),
        ({"upload_id": upload_id}, 400, "parts must be a list"),
        ({"parts": parts3}, 400, "upload_id is required"),
        ({"upload_id": mine["upload_id"], "parts": parts3}, 404, "not an upload of this video"),
        ({"upload_id": theirs["upload_id"], "parts": parts3}, 404, "not an upload of this video"),
    ]
    for body, want, detail in cases:
        status, resp = call(client, "POST", f"/videos/{vid}/multipart/complete", me, body)
        assert status == want and any(detail in d for d in resp["details"]), (body, status, resp)
    # The other user may not complete, inspect or abort this upload with its own id.
    assert call(client, "POST", f"/videos/{vid}/multipart/complete", other,
                {"upload_id": upload_id, "parts": parts3})[0] in (403, 404)
    assert call(client, "GET", f"/videos/{vid}/multipart", other)[0] in (403, 404)
    assert call(client, "DELETE", f"/videos/{vid}/multipart?upload_id={upload_id}", other)[0] in (403, 404)
    assert call(client, "GET", f"/videos/{vid}/multipart?upload_id={mine['upload_id']}", me)[0] == 404
    assert call(client, "DELETE", f"/videos/{vid}/multipart?upload_id={theirs['upload_id']}", me)[0] == 404
    # Over-size and under-size parts: the URL is bound to the part's size, storage refuses.
    last = created["parts"][2]
    tail = big_clip[10 * MiB:]
    assert requests.put(last["url"], data=tail + b"x", timeout=60).status_code == 403
    assert requests.put(last["url"], data=tail[:-1], timeout=60).status_code == 403
    # Nothing stored, nothing started; the upload is still open with its two parts, and so are the others.
    time.sleep(2)
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=f"raw-uploads/{vid}").get("KeyCount") == 0
    assert _executions(vid) == 0 and video_row(vid)["processing_index"] == 1
    status, state = call(client, "GET", f"/videos/{vid}/multipart", me)
    assert status == 200 and [p["part_number"] for p in state["received"]] == [1, 2]
    assert _open_uploads(s3, mine["id"]) == [mine["upload_id"]]
    assert _open_uploads(s3, theirs["id"]) == [theirs["upload_id"]]


@pytest.mark.attack
def test_a_second_object_for_the_video_is_refused(client, creator, big_clip, s3):
    """A single PUT got there first: completing is a 409, and only the first object ever ran."""
    me, stream = creator
    _, created = _start(client, me, stream, len(big_clip))
    vid = created["id"]
    etags = [_send(p, big_clip).headers["ETag"] for p in created["parts"]]
    status, single = call(client, "POST", f"/videos/{vid}/upload-url", me)
    assert status == 200
    other = bytes(reversed(big_clip))
    assert requests.put(single["upload_url"], data=other, headers=single["upload_headers"],
                        timeout=60).status_code == 200
    wait_for(lambda: _executions(vid) == 1, 30)
    status, resp = call(client, "POST", f"/videos/{vid}/multipart/complete", me, {
        "upload_id": created["upload_id"],
        "parts": [{"part_number": n, "etag": e} for n, e in enumerate(etags, 1)]})
    assert status == 409 and resp["error"] == "Video already uploaded"
    assert s3.get_object(Bucket=BUCKET, Key=f"raw-uploads/{vid}.mp4")["Body"].read() == other
    time.sleep(2)
    assert _executions(vid) == 1


@pytest.mark.parametrize("extra,status,detail", [
    ({"size_bytes": 8 * MiB}, 400, "multipart uploads are for files above 8MiB"),
    ({"part_size_bytes": MiB}, 400, "part_size_bytes must be an integer"),
    ({"part_size_bytes": "5MiB"}, 400, "part_size_bytes must be an integer"),
    ({"upload": "chunked"}, 400, 'upload must be "single" or "multipart"'),
    ({"size_bytes": 3 * 2**30}, 413, None),
])
def test_multipart_requests_are_checked_before_anything_is_made(client, creator, s3, extra, status, detail):
    from chalicelib import db
    me, stream = creator
    body = {"size_bytes": 12 * MiB, **extra}
    got, resp = _start(client, me, stream, body.pop("size_bytes"), **body)
    assert got == status, resp
    assert detail is None or any(detail in d for d in resp["details"])
    assert db.fetch_one("SELECT count(*) AS n FROM videos WHERE stream_id = %s", (stream["id"],))["n"] == 0


@pytest.mark.attack
def test_only_the_uploader_touches_the_upload(client, creator, sign_in):
    from chalicelib import db
    me, stream = creator
    _, created = _start(client, me, stream, 12 * MiB)
    vid = created["id"]
    fellow, viewer, stranger = sign_in(), sign_in(), sign_in()
    for who, role in ((fellow, "creator"), (viewer, "viewer")):
        db.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, %s)",
                   (stream["id"], who["user"]["id"], role))
    for who, want in ((fellow, {403}), (viewer, {403}), (stranger, {403, 404}), (None, {401})):
        assert call(client, "GET", f"/videos/{vid}/multipart", who)[0] in want
        assert call(client, "DELETE", f"/videos/{vid}/multipart?upload_id={created['upload_id']}", who)[0] in want
        assert call(client, "POST", f"/videos/{vid}/upload-url", who, {"upload": "multipart"})[0] in want
    # A viewer cannot start one in the stream at all.
    assert _start(client, viewer, stream, 12 * MiB)[0] == 403
    assert db.fetch_one("SELECT status FROM multipart_uploads WHERE video_id = %s", (vid,))["status"] == "open"


def test_abort_then_restart_and_deletion_aborts_open_uploads(client, creator, big_clip, s3):
    me, stream = creator
    _, created = _start(client, me, stream, len(big_clip))
    vid, first_id = created["id"], created["upload_id"]
    assert _send(created["parts"][0], big_clip).status_code == 200
    # Only one open upload per video.
    status, resp = call(client, "POST", f"/videos/{vid}/upload-url", me,
                        {"upload": "multipart", "part_size_bytes": 5 * MiB})
    assert status == 409, resp
    assert call(client, "DELETE", f"/videos/{vid}/multipart", me)[0] == 400       # upload_id is required
    assert call(client, "DELETE", f"/videos/{vid}/multipart?upload_id={first_id}", me)[0] == 204
    assert call(client, "DELETE", f"/videos/{vid}/multipart?upload_id={first_id}", me)[0] == 204   # again: a no-op
    assert _open_uploads(s3, vid) == []
    assert call(client, "GET", f"/videos/{vid}/multipart", me)[0] == 404
    status, resp = call(client, "POST", f"/videos/{vid}/multipart/complete", me,
                        {"upload_id": first_id, "parts": [{"part_number": 1, "etag": "x"}]})
    assert status == 409 and resp["error"] == "Upload was aborted"
    # Start again, send a part, then delete the video: its uploads go too (an unrecorded one as well).
    status, again = call(client, "POST", f"/videos/{vid}/upload-url", me,
                         {"upload": "multipart", "part_size_bytes": 5 * MiB})
    assert status == 200 and again["upload_id"] != first_id and len(again["parts"]) == 3
    assert _send(again["parts"][0], big_clip).status_code == 200
    stray = s3.create_multipart_upload(Bucket=BUCKET, Key=f"raw-uploads/{vid}.mp4")["UploadId"]
    assert sorted(_open_uploads(s3, vid)) == sorted([again["upload_id"], stray])
    assert call(client, "DELETE", f"/videos/{vid}", me)[0] == 204
    assert _open_uploads(s3, vid) == []
    assert video_row(vid) is None
    time.sleep(1)
    assert _executions(vid) == 0


@pytest.mark.attack
def test_the_quota_holds_for_multipart_uploads(client, creator, s3, monkeypatch):
    from chalicelib import config, db
    me, stream = creator
    monkeypatch.setenv("USER_STORAGE_QUOTA_BYTES", str(10 * MiB))
    config.reset_settings()
    try:
        status, resp = _start(client, me, stream, 12 * MiB)
    finally:
        monkeypatch.undo()
        config.reset_settings()
    assert status == 413 and resp["error"] == "Storage quota exceeded"
    assert db.fetch_one("SELECT count(*) AS n FROM videos WHERE stream_id = %s", (stream["id"],))["n"] == 0
    assert db.fetch_one("SELECT count(*) AS n FROM multipart_uploads mu JOIN videos v ON v.id = mu.video_id"
                        " WHERE v.stream_id = %s", (stream["id"],))["n"] == 0
