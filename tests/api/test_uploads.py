"""Upload → S3 event → Step Functions, exactly once (the upload/state-machine issue)."""
from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from tests.helpers import video_row, wait_for_fallbacks, wait_for_final

TRANSCODE_FN = "clipstream-local-pipeline_transcode"


def _post(client, path, body, headers):
    resp = client.http.post(path, headers=headers, body=body if isinstance(body, (str, bytes)) else json.dumps(body))
    return resp.status_code, json.loads(resp.body) if resp.body else None


def _new_video(client, me, stream, data=b"clip bytes", **overrides):
    body = {"title": "Nice shot", "filename": "clip.mp4", "size_bytes": len(data),
            "content_type": "video/mp4", **overrides}
    status, resp = _post(client, f"/streams/{stream['id']}/videos", body, me["headers"])
    assert status == 201, resp
    return resp


@pytest.fixture()
def creator(sign_in, make_stream):
    me = sign_in()
    stream = make_stream({"id": me["user"]["id"]})
    return me, stream


def _add_member(stream, user_id, role):
    from chalicelib import db
    db.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, %s)",
               (stream["id"], user_id, role))


def test_presigned_put_upload_processes_to_complete(client, creator, clips):
    me, stream = creator
    data = clips[0].read_bytes()
    created = _new_video(client, me, stream, data)
    assert created["processing_index"] == 1
    assert f"raw-uploads/{created['id']}.mp4" in created["upload_url"]
    assert "X-Amz-Expires" in created["upload_url"] and "X-Amz-Signature" in created["upload_url"]
    # A plain HTTP client uploads straight to storage.
    put = requests.put(created["upload_url"], data=data, headers={**created["upload_headers"], "Content-Type": "video/mp4"}, timeout=30)
    assert put.status_code == 200, put.text
    row = wait_for_final(created["id"], 60)
    assert (row["processing_index"], row["status"]) == (0, "complete")
    assert wait_for_fallbacks(created["id"], 60)["status"] == "succeeded"   # after playable
    resp = client.http.get(f"/videos/{created['id']}/processing", headers=me["headers"])
    body = json.loads(resp.body)
    assert body["status"] == "complete" and body["processing_index"] == 0 and body["stage"] == "complete"
    assert body["execution_arn"].startswith("arn:aws:states:")
    assert body["started_at"] and body["finished_at"] and body["failure_reason"] is None
    stages = [h["stage"] for h in body["history"]]
    # Dedup first; Transcode runs beside Transcribe -> Embed, so their order varies; the MP4
    # fallbacks are made after the video became playable.
    assert stages[0] == "dedup" and stages[-1] == "mp4_fallbacks"
    assert sorted(stages[1:-1]) == ["embed", "transcode", "transcribe"]
    assert stages.index("transcribe") < stages.index("embed")


def test_presigned_post_upload_processes_to_complete(client, creator, clips):
    me, stream = creator
    data = clips[1].read_bytes()
    created = _new_video(client, me, stream, data, filename="clip.mov", content_type="video/quicktime")
    form = created["upload"]
    assert form["fields"]["key"] == f"raw-uploads/{created['id']}.mov"
    assert form["fields"]["Content-Type"] == "video/quicktime"
    policy = json.loads(__import__("base64").b64decode(form["fields"]["policy"]))
    assert ["content-length-range", len(data), len(data)] in policy["conditions"]
    resp = requests.post(form["url"], data=form["fields"], files={"file": ("clip.mov", data)}, timeout=30)
    assert resp.status_code in (200, 204), resp.text
    row = wait_for_final(created["id"], 60)
    assert row["status"] == "complete"


@pytest.mark.attack
def test_a_second_object_for_a_published_video_changes_nothing(client, creator, clips, s3):
    """The POST policy is still valid after the upload: a re-sent form (S3 POST cannot refuse an
    overwrite) starts nothing, and the published video's files stay as they were."""
    from chalicelib import db
    me, stream = creator
    data = clips[3].read_bytes()
    created = _new_video(client, me, stream, data)
    form = created["upload"]
    assert requests.post(form["url"], data=form["fields"], files={"file": ("a.mp4", data)},
                         timeout=30).status_code in (200, 204)
    assert wait_for_final(created["id"], 60)["status"] == "complete"
    master = f"processed-videos/{created['id']}/master.m3u8"
    before = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket="clipstream",
                                                                Prefix=f"processed-videos/{created['id']}/")["Contents"]}
    other = clips[4].read_bytes()[:len(data)].ljust(len(data), b"\0")   # same size, other bytes
    assert requests.post(form["url"], data=form["fields"], files={"file": ("a.mp4", other)},
                         timeout=30).status_code in (200, 204)
    # The PUT URL refuses outright: If-None-Match: * is signed.
    put = requests.put(created["upload_url"], data=other,
                       headers={**created["upload_headers"], "Content-Type": "video/mp4"}, timeout=30)
    assert put.status_code == 412
    time.sleep(3)   # the bucket's notification is delivered asynchronously
    runs = db.fetch_all("SELECT etag FROM pipeline_executions WHERE video_id = %s", (created["id"],))
    assert len(runs) == 1
    after = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket="clipstream",
                                                               Prefix=f"processed-videos/{created['id']}/")["Contents"]}
    assert after == before and master in after
    assert wait_for_final(created["id"], 5)["status"] == "complete"


def test_direct_upload_of_a_small_clip(client, creator, s3, clips):
    me, stream = creator
    data = clips[2].read_bytes()
    resp = client.http.post(f"/streams/{stream['id']}/videos?filename=small.mp4&title=Small",
                            headers={**me["headers"], "Content-Type": "video/mp4"}, body=data)
    assert resp.status_code == 201, resp.body
    created = json.loads(resp.body)
    assert set(created) == {"id", "processing_index"}
    assert s3.get_object(Bucket="clipstream", Key=f"raw-uploads/{created['id']}.mp4")["Body"].read() == data
    assert wait_for_final(created["id"], 60)["status"] == "complete"


@pytest.mark.parametrize("overrides,status,expected", [
    ({"filename": "clip.mkv"}, 400, {"error": "Invalid video file", "details": ["file must be .mp4, .avi, or .mov"]}),
    ({"filename": "clip"}, 400, {"error": "Invalid video file", "details": ["file must be .mp4, .avi, or .mov"]}),
    ({"size_bytes": 2 * 1024**3 + 1}, 413, {"error": "File too large", "max_size": "2GB"}),
    ({"size_bytes": 0}, 400, None),
    ({"size_bytes": "12"}, 400, None),
    ({"content_type": "image/png"}, 400, None),
    ({"filename": None}, 400, {"error": "Invalid video file", "details": ["filename is required"]}),
    ({"title": "x" * 201}, 400, None),
])
def test_upload_validation(client, creator, overrides, status, expected):
    me, stream = creator
    body = {"title": "t", "filename": "clip.mp4", "size_bytes": 10, "content_type": "video/mp4", **overrides}
    got_status, got = _post(client, f"/streams/{stream['id']}/videos", body, me["headers"])
    assert got_status == status, got
    if expected:
        assert got == expected
    else:
        assert got["error"] == "Invalid video file" and got["details"]


def test_path_traversal_in_filename_never_reaches_the_key(client, creator):
    from chalicelib import db

    me, stream = creator
    created = _new_video(client, me, stream, filename="../../etc/passwd.mp4")
    row = db.fetch_one("SELECT filename, raw_key FROM videos WHERE id = %s", (created["id"],))
    assert row["filename"] == "passwd.mp4"
    assert row["raw_key"] == f"raw-uploads/{created['id']}.mp4"


def test_viewer_and_outsider_cannot_upload(client, creator, sign_in):
    me, stream = creator
    viewer, outsider = sign_in(), sign_in()
    _add_member(stream, viewer["user"]["id"], "viewer")
    body = {"filename": "a.mp4", "size_bytes": 10, "content_type": "video/mp4"}
    assert _post(client, f"/streams/{stream['id']}/videos", body, viewer["headers"]) == \
        (403, {"error": "Creator access required"})
    assert _post(client, f"/streams/{stream['id']}/videos", body, outsider["headers"]) == \
        (403, {"error": "Access denied"})
    assert _post(client, f"/streams/{uuid.uuid4()}/videos", body, me["headers"]) == \
        (404, {"error": "Stream not found"})
    assert _post(client, f"/streams/{stream['id']}/videos", "{bad json", me["headers"])[0] == 400


@pytest.mark.attack
def test_reissue_upload_url_only_for_the_uploader_before_upload(client, creator, sign_in):
    me, stream = creator
    created = _new_video(client, me, stream)
    status, again = _post(client, f"/videos/{created['id']}/upload-url", {}, me["headers"])
    assert status == 200 and again["upload_url"] and again["upload"]["fields"]["key"].endswith(".mp4")
    other = sign_in()
    _add_member(stream, other["user"]["id"], "creator")
    assert _post(client, f"/videos/{created['id']}/upload-url", {}, other["headers"])[0] == 403
    headers = {**again["upload_headers"], "Content-Type": "video/mp4"}
    # Storage itself holds the client to the declared size (a signed Content-Length).
    assert requests.put(again["upload_url"], data=b"bytes", headers=headers, timeout=30).status_code == 403
    assert requests.put(again["upload_url"], data=b"clip bytes" * 50, headers=headers, timeout=30).status_code == 403
    assert _post(client, f"/videos/{created['id']}/upload-url", {}, me["headers"])[0] == 200
    assert requests.put(again["upload_url"], data=b"clip bytes", headers=headers, timeout=30).status_code == 200
    # The URL fills its video once: a second PUT is refused (If-None-Match: * is signed).
    second = requests.put(again["upload_url"], data=b"CLIP BYTES", headers=headers, timeout=30)
    assert second.status_code == 412, second.text
    wait_for_final(created["id"], 60)
    assert _post(client, f"/videos/{created['id']}/upload-url", {}, me["headers"]) == \
        (409, {"error": "Video already uploaded"})


def test_stream_is_202_while_processing(client, creator):
    me, stream = creator
    created = _new_video(client, me, stream)
    resp = client.http.get(f"/videos/{created['id']}/stream", headers=me["headers"])
    assert resp.status_code == 202
    body = json.loads(resp.body)
    assert body["error"] == "Video still processing" and body["processing_index"] == 1
    assert body["estimated_time"]


def _s3_event(key: str, etag: str) -> dict:
    return {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": "clipstream"},
                                "object": {"key": key, "size": 5, "eTag": etag}}}]}


def test_events_that_start_nothing(stack, s3, creator, client):
    from chalicelib.pipeline import start

    assert start.handle_event({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "clipstream"}) == \
        {"started": [], "duplicates": [], "ignored": []}
    unknown = start.handle_event(_s3_event("raw-uploads/not-a-video.txt", "abc"))
    assert unknown["ignored"] == ["raw-uploads/not-a-video.txt"]
    orphan_key = f"raw-uploads/{uuid.uuid4()}.mp4"
    assert start.handle_event(_s3_event(orphan_key, "abc"))["ignored"] == [orphan_key]


def test_minio_webhook_uses_the_same_code_path(client, creator, s3, stack):
    me, stream = creator
    created = _new_video(client, me, stream)
    key = f"raw-uploads/{created['id']}.mp4"
    # MinIO has no Lambda notification: take the bucket's away while the object lands.
    rules = s3.get_bucket_notification_configuration(Bucket="clipstream")
    rules.pop("ResponseMetadata", None)
    s3.put_bucket_notification_configuration(Bucket="clipstream", NotificationConfiguration={})
    try:
        etag = s3.put_object(Bucket="clipstream", Key=key, Body=b"clip bytes")["ETag"]
    finally:
        s3.put_bucket_notification_configuration(Bucket="clipstream", NotificationConfiguration=rules)
    event = {"EventName": "s3:ObjectCreated:Put", "Key": f"clipstream/{key}", **_s3_event(key, etag)}
    assert _post(client, "/webhooks/minio/upload-complete", event,
                 {"Content-Type": "application/json", "Authorization": "Bearer wrong"}) == \
        (401, {"error": "Invalid webhook secret"})
    status, body = _post(client, "/webhooks/minio/upload-complete", event,
                         {"Content-Type": "application/json",
                          "Authorization": f"Bearer {stack.env['MINIO_WEBHOOK_SECRET']}"})
    assert status == 200 and len(body["started"]) == 1
    status, again = _post(client, "/webhooks/minio/upload-complete", event,
                          {"Content-Type": "application/json",
                           "Authorization": f"Bearer {stack.env['MINIO_WEBHOOK_SECRET']}"})
    assert again["duplicates"] == body["started"]


def _upload(client, me, stream, data):
    created = _new_video(client, me, stream, data)
    requests.put(created["upload_url"], data=data, headers={**created["upload_headers"], "Content-Type": "video/mp4"}, timeout=30)
    return created["id"]


def test_failing_step_fails_only_its_video_then_retry_completes_without_duplicates(client, creator, sign_in,
                                                                                   clips):
    from chalicelib import db
    from infra.local.emulator import DISPATCHER

    me, stream = creator
    DISPATCHER.inject_fault(TRANSCODE_FN, RuntimeError("encoder exploded"), times=1)
    bad = _upload(client, me, stream, clips[0].read_bytes())
    row = wait_for_final(bad, 60)
    assert row["status"] == "failed" and row["failed_stage"] == "transcode"
    assert row["failure_reason"] == "RuntimeError: encoder exploded"
    assert row["processing_index"] == 2
    good = _upload(client, me, stream, clips[1].read_bytes())
    assert wait_for_final(good, 60)["status"] == "complete"
    body = json.loads(client.http.get(f"/videos/{bad}/processing", headers=me["headers"]).body)
    # The uploader sees the public reason; the exception text is the platform admins'.
    assert body["status"] == "failed" and body["failure_reason"] == "processing failed, we are on it"
    assert "exploded" not in json.dumps(body)

    admin = sign_in("admin@example.com")
    assert _post(client, "/admin/processing/retry", {"video_id": bad}, me["headers"]) == \
        (403, {"error": "Admin access required"})
    status, resp = _post(client, "/admin/processing/retry", {"video_id": bad}, admin["headers"])
    assert status == 200 and resp["retried"][0]["outcome"] == "started"
    row = wait_for_final(bad, 60)
    assert (row["status"], row["processing_index"]) == ("complete", 0)
    runs = db.fetch_all("SELECT stage, status, resumed FROM stage_runs WHERE video_id = %s ORDER BY id", (bad,))
    # Dedup ran once and its result was reused; the transcode function crashed
    # before its code ran, then ran once; nothing ran twice.
    # (Transcode runs beside Transcribe -> Embed, whose runs may land in either execution:
    # each stage succeeded exactly once for real, every other success is a reuse.)
    got = [(r["stage"], r["status"], r["resumed"]) for r in runs]
    assert got[0] == ("dedup", "succeeded", False) and ("dedup", "succeeded", True) in got
    for stage in ("dedup", "transcode", "transcribe", "embed"):
        assert got.count((stage, "succeeded", False)) == 1, (stage, got)
    assert all(status == "succeeded" for _, status, _ in got)
    assert len(db.fetch_all("SELECT 1 FROM pipeline_executions WHERE video_id = %s", (bad,))) == 2
    # Retrying a complete video is refused.
    assert _post(client, "/admin/processing/retry", {"video_id": bad}, admin["headers"])[0] == 409


def test_byte_identical_upload_is_a_duplicate(client, creator, clips):
    me, stream = creator
    data = clips[2].read_bytes()
    first = _upload(client, me, stream, data)
    assert wait_for_final(first, 60)["status"] == "complete"
    second = _upload(client, me, stream, data)
    row = wait_for_final(second, 60)
    assert (row["processing_index"], row["status"]) == (-1, "duplicate")
    assert str(row["duplicate_of"]) == first and row["similarity"] == 1.0


def test_admin_views(client, creator, sign_in):
    me, stream = creator
    admin = sign_in("admin@example.com")
    for path in ("/processing/queue", "/processing/stats", "/admin/duplicates"):
        assert client.http.get(path, headers=me["headers"]).status_code == 403
        resp = client.http.get(path, headers=admin["headers"])
        assert resp.status_code == 200, (path, resp.body)
    queue = json.loads(client.http.get("/processing/queue", headers=admin["headers"]).body)
    assert {"queue_length", "current_job", "estimated_wait"} <= set(queue)
    stats = json.loads(client.http.get("/processing/stats", headers=admin["headers"]).body)
    assert any(s["stage"] == "dedup" and s["runs"] > 0 and s["p95_seconds"] >= s["mean_seconds"] * 0
               for s in stats["stages"])
    assert _post(client, "/admin/processing/retry", {}, admin["headers"])[0] == 400
    assert _post(client, "/admin/processing/retry", {"video_id": str(uuid.uuid4())}, admin["headers"]) == \
        (404, {"error": "Video not found"})
    assert video_row(str(uuid.uuid4())) is None


@pytest.fixture()
def quota(monkeypatch, stack):
    """USER_STORAGE_QUOTA_BYTES for one test."""
    from chalicelib import config

    def set_quota(value: int) -> None:
        monkeypatch.setenv("USER_STORAGE_QUOTA_BYTES", str(value))
        config.reset_settings()

    yield set_quota
    monkeypatch.undo()
    config.reset_settings()


@pytest.mark.attack
def test_the_storage_quota_is_checked_when_the_upload_url_is_issued(client, creator, quota):
    from chalicelib import db
    me, stream = creator
    quota(1000)
    body = {"title": "q", "filename": "q.mp4", "content_type": "video/mp4"}
    first = _post(client, f"/streams/{stream['id']}/videos", {**body, "size_bytes": 600}, me["headers"])
    assert first[0] == 201
    count = db.fetch_one("SELECT count(*) AS n FROM videos WHERE uploaded_by = %s", (me["user"]["id"],))["n"]
    status, refused = _post(client, f"/streams/{stream['id']}/videos", {**body, "size_bytes": 500}, me["headers"])
    assert status == 413 and refused["error"] == "Storage quota exceeded"
    assert (refused["quota_bytes"], refused["used_bytes"]) == (1000, 600) and refused["details"]
    assert db.fetch_one("SELECT count(*) AS n FROM videos WHERE uploaded_by = %s", (me["user"]["id"],))["n"] == count
    # The direct upload counts the same way.
    resp = client.http.post(f"/streams/{stream['id']}/videos?filename=d.mp4", headers={
        "Authorization": me["headers"]["Authorization"], "Content-Type": "video/mp4"}, body=b"\0" * 500)
    assert resp.status_code == 413
    # Deleting a video makes room again.
    assert client.http.delete(f"/videos/{first[1]['id']}", headers=me["headers"]).status_code in (200, 204)
    assert _post(client, f"/streams/{stream['id']}/videos", {**body, "size_bytes": 500}, me["headers"])[0] == 201


@pytest.mark.attack
def test_concurrent_uploads_cannot_overrun_the_quota(creator, quota):
    from concurrent.futures import ThreadPoolExecutor

    from chalicelib.api import uploads
    from chalicelib.errors import PayloadTooLargeError
    me, stream = creator
    quota(1000)
    fields = {"title": "r", "filename": "r.mp4", "ext": "mp4", "content_type": "video/mp4", "size_bytes": 300}

    def attempt(_: int) -> bool:
        try:
            uploads._insert(me["user"], str(stream["id"]), fields)
            return True
        except PayloadTooLargeError:
            return False

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    assert sum(results) == 3
