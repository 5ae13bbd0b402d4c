"""Duplicate and reordered upload events: one execution, or a clean ignore, each time."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import call, wait_for, wait_for_final
from tests.reliability.conftest import new_video, objects_of, put_bytes

pytestmark = pytest.mark.reliability

ON_UPLOAD_FN = "clipstream-local-on_upload"


def _event(key: str, etag: str) -> dict:
    return {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": "clipstream"},
                                "object": {"key": key, "size": 5, "eTag": etag}}}]}


def _executions(video_id: str) -> list[dict]:
    from chalicelib import db
    return db.fetch_all("SELECT * FROM pipeline_executions WHERE video_id = %s", (video_id,))


def _lambda(stack):
    import boto3
    return boto3.client("lambda", endpoint_url=stack.env["AWS_ENDPOINT_URL"])


def test_the_same_event_ten_times_at_once_starts_one_execution(stack, client, crew, clips, s3, sfn, figures):
    """Ten asynchronous invocations of the trigger Lambda (plus the bucket's own notification) at once."""
    from infra.local.emulator import DISPATCHER

    data = clips[0].read_bytes()
    created = new_video(client, crew.me, crew.stream, "ten.mp4", len(data))
    put_bytes(created, data)
    etag = s3.head_object(Bucket="clipstream", Key=f"raw-uploads/{created['id']}.mp4")["ETag"]
    lam = _lambda(stack)
    payload = json.dumps(_event(f"raw-uploads/{created['id']}.mp4", etag))
    before = DISPATCHER.invocations[ON_UPLOAD_FN]
    barrier = threading.Barrier(10)

    def deliver(_):
        barrier.wait()
        return lam.invoke(FunctionName=ON_UPLOAD_FN, InvocationType="Event", Payload=payload)["StatusCode"]

    with ThreadPoolExecutor(10) as pool:
        assert list(pool.map(deliver, range(10))) == [202] * 10
    wait_for(lambda: DISPATCHER.invocations[ON_UPLOAD_FN] - before >= 10 and
             DISPATCHER.in_flight[ON_UPLOAD_FN] == 0, 60)
    assert wait_for_final(created["id"], 120)["status"] == "complete"
    [execution] = _executions(created["id"])
    runs = sfn.list_executions(stateMachineArn=stack.env["STATE_MACHINE_ARN"], maxResults=1000)["executions"]
    assert [e["name"] for e in runs if e["name"].startswith(created["id"])] == [execution["execution_name"]]
    figures.counts["duplicate_events_delivered"] += 11


def test_events_for_deleted_videos_start_nothing(stack, client, crew, clips, s3, figures):
    from chalicelib import db
    from chalicelib.pipeline import start

    # Deleted for good: the row is gone when S3's late copy of the event arrives.
    data = clips[1].read_bytes()
    created = new_video(client, crew.me, crew.stream, "gone.mp4", len(data))
    key = f"raw-uploads/{created['id']}.mp4"
    put_bytes(created, data)
    etag = s3.head_object(Bucket="clipstream", Key=key)["ETag"]
    wait_for_final(created["id"], 120)
    assert call(client, "DELETE", f"/videos/{created['id']}", crew.me)[0] == 204
    assert start.handle_event(_event(key, etag)) == {"started": [], "duplicates": [], "ignored": [key]}
    assert _executions(created["id"]) == [] and objects_of(s3, created["id"]) == []

    # Being deleted: marked (say storage failed half-way through the DELETE), row still there.
    other = new_video(client, crew.me, crew.stream, "going.mp4", 10)
    key = f"raw-uploads/{other['id']}.mp4"
    db.execute("UPDATE videos SET deleted_at = now() WHERE id = %s", (other["id"],))
    s3.put_object(Bucket="clipstream", Key=key, Body=data)      # its own notification fires too
    assert start.handle_event(_event(key, "late-etag")) == {"started": [], "duplicates": [], "ignored": [key]}
    time.sleep(1.0)
    assert _executions(other["id"]) == []
    figures.counts["duplicate_events_delivered"] += 3


def test_an_event_before_the_row_commits_is_ignored_then_starts_once(stack, client, crew, clips, s3, figures):
    """The API commits the row before it hands out any upload URL; an event that still
    overtakes an uncommitted row is ignored without waiting, and the redelivery starts it once."""
    import uuid

    import psycopg2

    from chalicelib import storage
    from chalicelib.pipeline import start

    vid = str(uuid.uuid4())
    key = storage.raw_key(vid, "mp4")
    data = clips[2].read_bytes()
    conn = psycopg2.connect(stack.env["DATABASE_URL"])
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO videos (id, stream_id, uploaded_by, title, filename, content_type, ext,"
                " size_bytes, raw_key) VALUES (%s, %s, %s, 'early', 'early.mp4', 'video/mp4', 'mp4', %s, %s)",
                (vid, crew.stream["id"], crew.me["user"]["id"], len(data), key))
        etag = s3.put_object(Bucket="clipstream", Key=key, Body=data)["ETag"]
        started = time.monotonic()
        assert start.handle_event(_event(key, etag))["ignored"] == [key]
        assert time.monotonic() - started < 5                   # not blocked by the open transaction
        conn.commit()
    finally:
        conn.close()
    outcomes = [start.handle_event(_event(key, etag)) for _ in range(3)]
    # The bucket's own notification is a redelivery too: between them, one start.
    assert sum(len(o["started"]) for o in outcomes) <= 1, outcomes
    assert wait_for_final(vid, 120)["status"] == "complete"
    assert len(_executions(vid)) == 1
    figures.counts["duplicate_events_delivered"] += 5
