"""Videos of a stream: list, details, edits and deletion (reference/000 Video Management)."""
from __future__ import annotations

import json
import threading
import uuid

import pytest

from tests.helpers import call, wait_for

BUCKET = "clipstream"



def add_member(stream_id, who, role):
    from chalicelib import db
    db.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, %s)",
               (stream_id, who["user"]["id"], role))


def video_keys(vid: str) -> list[str]:
    """One object under every prefix a video's files live in."""
    return [f"raw-uploads/{vid}.mp4", f"processed-videos/{vid}/master.m3u8",
            f"processed-videos/{vid}/720p/index.m3u8", f"processed-videos/{vid}/720p/seg_000.ts",
            f"thumbnails/{vid}.jpg", f"thumbnails/{vid}_processing.jpg",
            f"thumbnails/{vid}_duplicate.jpg", f"transcripts/{vid}.json",
            f"embeddings/{vid}.json", f"clips/{vid}/clip-1.mp4",
            f"thumbnails/{vid}_custom_0f8fad5b-d9cb-469f-a165-70867728950e.jpg",
            f"thumbnail-uploads/{vid}/0f8fad5b-d9cb-469f-a165-70867728950e"]


def put_objects(s3, vid):
    for key in video_keys(vid):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")


def stored_keys_of(s3, vid) -> list[str]:
    """Every key in the whole bucket that mentions the video (a full listing)."""
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys += [o["Key"] for o in page.get("Contents", []) if vid in o["Key"]]
    return keys


def rows_of(vid) -> dict:
    from chalicelib import db
    out = {}
    for table in ("videos", "likes", "shares", "pipeline_executions", "stage_runs"):
        column = "id" if table == "videos" else "video_id"
        out[table] = db.fetch_one(f"SELECT count(*) AS n FROM {table} WHERE {column} = %s", (vid,))["n"]
    return out


@pytest.fixture()
def crew(client, sign_in, make_video):
    """A stream with an admin, a creator who uploaded two videos, a viewer and an outsider."""
    admin, creator, viewer, outsider = sign_in(), sign_in(), sign_in(), sign_in()
    status, stream = call(client, "POST", "/streams", admin, {"name": "Crew"})
    assert status == 201
    add_member(stream["id"], creator, "creator")
    add_member(stream["id"], viewer, "viewer")
    uploader = {"id": creator["user"]["id"]}
    first = make_video(stream, uploader, title="first")
    second = make_video(stream, uploader, title="second")
    return {"sid": stream["id"], "stream": stream, "admin": admin, "creator": creator,
            "viewer": viewer, "outsider": outsider,
            "first": str(first["id"]), "second": str(second["id"])}


# ---------------------------------------------------------------- list

def test_list_videos_newest_first_with_thumbnail_urls(client, crew, stack):
    status, body = call(client, "GET", f"/streams/{crew['sid']}/videos", crew["viewer"])
    assert status == 200
    assert [v["id"] for v in body["videos"]] == [crew["second"], crew["first"]]
    assert body["total"] == 2 and body["page"] == 1
    item = body["videos"][0]
    assert set(item) == {"id", "title", "duration", "processing_index", "status", "uploaded_at",
                         "uploaded_by", "thumbnail_url"}
    assert item["title"] == "second" and item["processing_index"] == 1 and item["status"] == "queued"
    assert item["uploaded_by"] == crew["creator"]["user"]["id"] and item["uploaded_at"].endswith("Z")
    assert item["thumbnail_url"] == f"{stack.env['PUBLIC_BASE_URL']}/files/videos/{crew['second']}/thumbnail"


def test_list_videos_paginates(client, crew):
    status, page2 = call(client, "GET", f"/streams/{crew['sid']}/videos?page=2&limit=1", crew["admin"])
    assert status == 200 and [v["id"] for v in page2["videos"]] == [crew["first"]]
    assert (page2["page"], page2["limit"], page2["total"]) == (2, 1, 2)
    status, empty = call(client, "GET", f"/streams/{crew['sid']}/videos?page=9", crew["admin"])
    assert status == 200 and empty["videos"] == [] and empty["total"] == 2
    status, bad = call(client, "GET", f"/streams/{crew['sid']}/videos?limit=abc", crew["admin"])
    assert status == 400 and bad["details"] == ["limit must be an integer"]
    status, huge = call(client, "GET", f"/streams/{crew['sid']}/videos?page=99999999999999999999", crew["admin"])
    assert status == 400 and huge["error"] == "Invalid pagination"


def test_list_videos_errors(client, crew):
    assert call(client, "GET", f"/streams/{crew['sid']}/videos", crew["outsider"]) == \
        (403, {"error": "Access denied"})
    assert call(client, "GET", f"/streams/{uuid.uuid4()}/videos", crew["admin"]) == \
        (404, {"error": "Stream not found"})
    assert call(client, "GET", "/streams/not-an-id/videos", crew["admin"]) == \
        (404, {"error": "Stream not found"})
    assert call(client, "GET", f"/streams/{crew['sid']}/videos")[0] == 401


# ---------------------------------------------------------------- details

def test_get_video_details(client, crew):
    from chalicelib import db

    db.execute("UPDATE videos SET duration_s = 12.5, width = 1280, height = 720, fps = 60,"
               " video_codec = 'h264', audio_codec = 'aac', bitrates = '{480,720}',"
               " description = 'gg', tags = '{clutch}' WHERE id = %s", (crew["first"],))
    db.execute("INSERT INTO likes (video_id, user_id) VALUES (%s, %s)",
               (crew["first"], crew["viewer"]["user"]["id"]))
    status, body = call(client, "GET", f"/videos/{crew['first']}", crew["viewer"])
    assert status == 200
    assert body["id"] == crew["first"] and body["stream_id"] == crew["sid"]
    assert (body["title"], body["description"], body["tags"]) == ("first", "gg", ["clutch"])
    assert (body["status"], body["processing_index"], body["failure_reason"]) == ("queued", 1, None)
    assert (body["duration"], body["width"], body["height"], body["fps"]) == (12.5, 1280, 720, 60)
    assert body["codecs"] == {"video": "h264", "audio": "aac"}
    assert body["size"] == 0 and body["bitrates"] == [480, 720]
    assert (body["total_likes"], body["liked"]) == (1, True)
    status, other = call(client, "GET", f"/videos/{crew['first']}", crew["admin"])
    assert (other["total_likes"], other["liked"]) == (1, False)


def test_get_video_errors(client, crew):
    assert call(client, "GET", f"/videos/{crew['first']}", crew["outsider"]) == \
        (403, {"error": "Access denied"})
    assert call(client, "GET", f"/videos/{uuid.uuid4()}", crew["admin"]) == \
        (404, {"error": "Video not found"})
    assert call(client, "GET", "/videos/123", crew["admin"]) == (404, {"error": "Video not found"})


# ---------------------------------------------------------------- edits

def test_uploader_and_stream_admin_edit_metadata(client, crew):
    path = f"/videos/{crew['first']}"
    status, body = call(client, "PUT", path, crew["creator"],
                        {"title": "  Ace  ", "description": "round 12", "tags": ["ace", "ace", " vandal "]})
    assert status == 200
    assert (body["title"], body["description"], body["tags"]) == ("Ace", "round 12", ["ace", "vandal"])
    status, body = call(client, "PUT", path, crew["admin"], {"tags": []})
    assert status == 200 and body["tags"] == [] and body["title"] == "Ace"
    assert call(client, "GET", path, crew["viewer"])[1]["description"] == "round 12"


def test_only_uploader_or_admin_may_edit(client, crew, sign_in):
    other_creator = sign_in()
    add_member(crew["sid"], other_creator, "creator")
    path = f"/videos/{crew['first']}"
    denied = (403, {"error": "Only the uploader or a stream admin can change this video"})
    assert call(client, "PUT", path, crew["viewer"], {"title": "x"}) == denied
    assert call(client, "PUT", path, other_creator, {"title": "x"}) == denied
    assert call(client, "PUT", path, crew["outsider"], {"title": "x"}) == (403, {"error": "Access denied"})
    assert call(client, "PUT", f"/videos/{uuid.uuid4()}", crew["admin"], {"title": "x"}) == \
        (404, {"error": "Video not found"})


@pytest.mark.parametrize("body,details", [
    ({"title": ""}, ["title must be a non-empty string"]),
    ({"title": "   "}, ["title must be a non-empty string"]),
    ({"title": 5}, ["title must be a non-empty string"]),
    ({"title": "x" * 201}, ["title must be at most 200 characters"]),
    ({"description": "x" * 5001}, ["description must be at most 5000 characters"]),
    ({"description": ["no"]}, ["description must be a string"]),
    ({"tags": "fps"}, ["tags must be a list of strings"]),
    ({"tags": [1]}, ["tags must be a list of strings"]),
    ({"tags": [f"t{i}" for i in range(21)]}, ["tags must have at most 20 items"]),
    ({"tags": ["x" * 41]}, ["each tag must be 1 to 40 characters"]),
    ({"tags": [""]}, ["each tag must be 1 to 40 characters"]),
    ({}, ["at least one of title, description, tags is required"]),
    ({"owner": "me", "title": "x" * 201}, ["unknown field: owner", "title must be at most 200 characters"]),
])
def test_edit_validation(client, crew, body, details):
    assert call(client, "PUT", f"/videos/{crew['first']}", crew["creator"], body) == \
        (400, {"error": "Invalid video data", "details": details})


def test_edit_rejects_strings_postgres_cannot_store(client, crew):
    for bad in ("\ud800", "nul\x00byte"):
        status, body = call(client, "PUT", f"/videos/{crew['first']}", crew["creator"], {"title": bad})
        assert status == 400 and body["error"] == "Invalid request body", bad


def test_edit_rejects_bodies_that_are_not_objects(client, crew):
    for raw in ("[]", "{bad", ""):
        status, body = call(client, "PUT", f"/videos/{crew['first']}", crew["creator"], raw or None)
        assert status == 400 and body["error"] == "Invalid request body"


def test_edit_limits_are_inclusive(client, crew):
    body = {"title": "x" * 200, "description": "d" * 5000, "tags": [f"{i:040d}" for i in range(20)]}
    status, got = call(client, "PUT", f"/videos/{crew['first']}", crew["creator"], body)
    assert status == 200 and len(got["tags"]) == 20 and len(got["title"]) == 200


# ---------------------------------------------------------------- delete

def test_delete_removes_every_object_and_row(client, crew, s3):
    from chalicelib import db

    vid, keep = crew["first"], crew["second"]
    put_objects(s3, vid)
    put_objects(s3, keep)
    db.execute("INSERT INTO likes (video_id, user_id) VALUES (%s, %s)", (vid, crew["viewer"]["user"]["id"]))
    assert call(client, "POST", f"/videos/{vid}/share", crew["viewer"])[0] == 201
    db.execute("INSERT INTO stage_runs (video_id, stage, status) VALUES (%s, 'dedup', 'succeeded')", (vid,))

    status, body = call(client, "DELETE", f"/videos/{vid}", crew["creator"])
    assert (status, body) == (204, None)
    assert stored_keys_of(s3, vid) == []
    assert rows_of(vid) == {"videos": 0, "likes": 0, "shares": 0, "pipeline_executions": 0, "stage_runs": 0}
    assert sorted(stored_keys_of(s3, keep)) == sorted(video_keys(keep))
    assert call(client, "GET", f"/videos/{vid}", crew["creator"]) == (404, {"error": "Video not found"})
    assert call(client, "DELETE", f"/videos/{vid}", crew["creator"]) == (404, {"error": "Video not found"})
    listed = call(client, "GET", f"/streams/{crew['sid']}/videos", crew["admin"])[1]
    assert [v["id"] for v in listed["videos"]] == [keep]


def test_stream_admin_may_delete_others_may_not(client, crew, s3, sign_in):
    other_creator = sign_in()
    add_member(crew["sid"], other_creator, "creator")
    vid = crew["first"]
    denied = (403, {"error": "Only the uploader or a stream admin can change this video"})
    assert call(client, "DELETE", f"/videos/{vid}", crew["viewer"]) == denied
    assert call(client, "DELETE", f"/videos/{vid}", other_creator) == denied
    assert call(client, "DELETE", f"/videos/{vid}", crew["outsider"]) == (403, {"error": "Access denied"})
    assert call(client, "DELETE", f"/videos/{uuid.uuid4()}", crew["admin"]) == (404, {"error": "Video not found"})
    assert call(client, "DELETE", "/videos/nope", crew["admin"]) == (404, {"error": "Video not found"})
    put_objects(s3, vid)
    assert call(client, "DELETE", f"/videos/{vid}", crew["admin"])[0] == 204
    assert stored_keys_of(s3, vid) == [] and rows_of(vid)["videos"] == 0


def test_a_delete_that_fails_half_way_is_finished_by_repeating_it(client, crew, s3, monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    from chalicelib import storage

    vid = crew["first"]
    put_objects(s3, vid)
    real_delete_prefix = storage.delete_prefix
    calls = []

    def fails_after_the_first_prefix(prefix):
        calls.append(prefix)
        if len(calls) > 1:
            raise EndpointConnectionError(endpoint_url="http://storage.invalid")
        return real_delete_prefix(prefix)

    monkeypatch.setattr(storage, "delete_prefix", fails_after_the_first_prefix)
    status, body = call(client, "DELETE", f"/videos/{vid}", crew["creator"])
    assert status == 503 and body["error"].startswith("Storage unavailable")
    left = stored_keys_of(s3, vid)
    assert left and len(left) < len(video_keys(vid))          # really half-way
    # Half-deleted: hidden from every read, but the row is still there to resume from.
    assert rows_of(vid)["videos"] == 1
    assert call(client, "GET", f"/videos/{vid}", crew["creator"])[0] == 404
    assert call(client, "GET", f"/videos/{vid}/likes", crew["creator"])[0] == 404
    assert [v["id"] for v in call(client, "GET", f"/streams/{crew['sid']}/videos", crew["admin"])[1]["videos"]] \
        == [crew["second"]]
    assert call(client, "PUT", f"/videos/{vid}", crew["creator"], {"title": "x"})[0] == 404

    monkeypatch.setattr(storage, "delete_prefix", real_delete_prefix)
    assert call(client, "DELETE", f"/videos/{vid}", crew["creator"]) == (204, None)
    assert stored_keys_of(s3, vid) == []
    assert rows_of(vid) == {"videos": 0, "likes": 0, "shares": 0, "pipeline_executions": 0, "stage_runs": 0}
    assert call(client, "DELETE", f"/videos/{vid}", crew["creator"]) == (404, {"error": "Video not found"})


def test_delete_stops_a_running_execution_first(client, crew, s3, sfn, stack):
    from chalicelib import db
    from infra.local.emulator import DISPATCHER

    vid = crew["first"]
    s3.put_object(Bucket=BUCKET, Key=f"raw-uploads/{vid}.mp4", Body=b"bytes")
    started, release = threading.Event(), threading.Event()

    def stuck_dedup(event, context):
        started.set()
        release.wait(30)
        return event

    handler = "app.pipeline_dedup"
    DISPATCHER.handler_for(handler)
    real = DISPATCHER._handlers[handler]
    DISPATCHER._handlers[handler] = stuck_dedup
    try:
        name = f"{vid}-deletetest"
        arn = sfn.start_execution(stateMachineArn=stack.env["STATE_MACHINE_ARN"], name=name,
                                  input=json.dumps({"video_id": vid, "bucket": BUCKET,
                                                    "key": f"raw-uploads/{vid}.mp4",
                                                    "etag": "deletetest", "execution": name}))["executionArn"]
        db.execute("INSERT INTO pipeline_executions (video_id, etag, execution_name, execution_arn, status)"
                   " VALUES (%s, 'deletetest', %s, %s, 'running')", (vid, name, arn))
        # An execution whose ARN Step Functions no longer knows is ignored.
        db.execute("INSERT INTO pipeline_executions (video_id, etag, execution_name, execution_arn, status)"
                   " VALUES (%s, 'gone', %s, %s, 'running')",
                   (vid, f"{vid}-gone", arn.rsplit(":", 1)[0] + f":{vid}-gone"))
        assert started.wait(30)
        assert call(client, "DELETE", f"/videos/{vid}", crew["creator"]) == (204, None)
        # The emulator marks the stop once the running task returns; AWS at once.
        release.set()
        wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING", 30)
        assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    finally:
        DISPATCHER._handlers[handler] = real
        release.set()
    assert stored_keys_of(s3, vid) == [] and rows_of(vid)["videos"] == 0


def test_deleting_a_stream_deletes_its_videos_objects(client, crew, s3):
    put_objects(s3, crew["first"])
    put_objects(s3, crew["second"])
    assert call(client, "DELETE", f"/streams/{crew['sid']}", crew["creator"]) == \
        (403, {"error": "Admin access required"})
    assert len(stored_keys_of(s3, crew["first"])) == len(video_keys(crew["first"]))
    assert call(client, "DELETE", f"/streams/{crew['sid']}", crew["admin"]) == (204, None)
    assert stored_keys_of(s3, crew["first"]) == [] and stored_keys_of(s3, crew["second"]) == []
    assert rows_of(crew["first"])["videos"] == 0 and rows_of(crew["second"])["videos"] == 0


def test_uploaded_video_is_listed_and_deleted_end_to_end(client, crew, s3):
    import requests

    from tests.helpers import wait_for_final

    status, created = call(client, "POST", f"/streams/{crew['sid']}/videos", crew["creator"],
                           {"filename": "e2e.mp4", "size_bytes": 32, "content_type": "video/mp4"})
    assert status == 201
    requests.put(created["upload_url"], data=uuid.uuid4().bytes * 2,
                 headers={**created["upload_headers"], "Content-Type": "video/mp4"}, timeout=30)
    row = wait_for_final(created["id"], 60)           # whatever the pipeline made of it
    listed = call(client, "GET", f"/streams/{crew['sid']}/videos", crew["viewer"])[1]["videos"]
    assert listed[0]["id"] == created["id"]
    assert (listed[0]["processing_index"], listed[0]["status"]) == (row["processing_index"], row["status"])
    assert stored_keys_of(s3, created["id"])          # at least the raw upload
    assert call(client, "DELETE", f"/videos/{created['id']}", crew["creator"]) == (204, None)
    wait_for(lambda: stored_keys_of(s3, created["id"]) == [], 10)
    assert rows_of(created["id"])["videos"] == 0
