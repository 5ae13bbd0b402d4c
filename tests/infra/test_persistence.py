"""The emulator's objects are written through to disk and come back, as they were, at a start."""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from infra.local import persistence


def _moto_backend(bucket: str):
    from moto.s3.models import s3_backends
    partition, account = s3_backends.bucket_accounts[bucket]
    return s3_backends[account][partition]


def _moto_bucket(name: str):
    return _moto_backend(name).get_bucket(name)


@pytest.fixture()
def bucket(stack, s3):
    """A bucket of this test's own, emptied and removed afterwards."""
    name = f"persist-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    yield name
    for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


def _files(stack, bucket: str) -> dict[str, dict]:
    root = stack.config.data_dir / "s3"
    return {header["key"]: header for b, header, _, _ in persistence.stored_objects(root) if b == bucket}


def test_every_acknowledged_write_is_on_disk_with_its_headers(stack, s3, bucket):
    body = b"segment bytes " * 1000
    s3.put_object(Bucket=bucket, Key="processed-videos/v/hls/720p/seg_000.ts", Body=body,
                  ContentType="video/mp2t", CacheControl="public, max-age=31536000, immutable",
                  Metadata={"source": "transcode"})
    s3.put_object(Bucket=bucket, Key="a", Body=b"file a")
    s3.put_object(Bucket=bucket, Key="a/b", Body=b"file under a/")  # "a" is a key and a folder
    s3.put_object(Bucket=bucket, Key="odd/../ké y/.", Body=b"odd")
    s3.copy_object(Bucket=bucket, Key="copied.ts",
                   CopySource={"Bucket": bucket, "Key": "processed-videos/v/hls/720p/seg_000.ts"})
    files = _files(stack, bucket)

    assert set(files) == {"processed-videos/v/hls/720p/seg_000.ts", "a", "a/b", "odd/../ké y/.", "copied.ts"}
    seg = files["processed-videos/v/hls/720p/seg_000.ts"]
    head = s3.head_object(Bucket=bucket, Key="processed-videos/v/hls/720p/seg_000.ts")
    assert seg["etag"] == head["ETag"].strip('"') == hashlib.md5(body).hexdigest()
    assert seg["metadata"]["content-type"] == "video/mp2t"
    assert seg["metadata"]["cache-control"] == "public, max-age=31536000, immutable"
    assert seg["metadata"]["x-amz-meta-source"] == "transcode"
    assert files["copied.ts"]["metadata"]["content-type"] == "video/mp2t"

    s3.delete_object(Bucket=bucket, Key="a")
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "copied.ts"}, {"Key": "odd/../ké y/."}]})
    assert set(_files(stack, bucket)) == {"processed-videos/v/hls/720p/seg_000.ts", "a/b"}


def test_multipart_upload_is_on_disk_once_completed(stack, s3, bucket):
    part = b"x" * (5 * 1024 * 1024)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="processed-videos/v/720p.mp4",
                                        ContentType="video/mp4")
    etags = [s3.upload_part(Bucket=bucket, Key="processed-videos/v/720p.mp4", UploadId=upload["UploadId"],
                            PartNumber=n, Body=part + bytes([n]))["ETag"] for n in (1, 2)]
    assert "processed-videos/v/720p.mp4" not in _files(stack, bucket)  # parts are not an object yet
    s3.complete_multipart_upload(Bucket=bucket, Key="processed-videos/v/720p.mp4", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n}
                                                            for n, e in zip((1, 2), etags)]})
    header = _files(stack, bucket)["processed-videos/v/720p.mp4"]
    assert header["etag"].endswith("-2")
    assert header["size"] == 2 * len(part) + 2
    assert header["metadata"]["content-type"] == "video/mp4"


def test_restore_brings_objects_back_as_they_were_without_events(stack, s3, bucket):
    from infra.local.emulator import DISPATCHER

    s3.put_object(Bucket=bucket, Key="raw-uploads/x.mp4", Body=b"\x00\x01raw", ContentType="video/mp4",
                  Metadata={"k": "v"})
    s3.put_object_tagging(Bucket=bucket, Key="raw-uploads/x.mp4",
                          Tagging={"TagSet": [{"Key": "kept", "Value": "yes"}]})
    s3.put_object(Bucket=bucket, Key="thumbnails/x.jpg", Body=b"jpeg", ContentType="image/jpeg",
                  CacheControl="public, max-age=60")
    before = {k: s3.head_object(Bucket=bucket, Key=k) for k in ("raw-uploads/x.mp4", "thumbnails/x.jpg")}
    # What the next start finds on disk: this bucket's folder only.
    root = Path(tempfile.mkdtemp(prefix="clipstream-restore-"))
    try:
        shutil.copytree(stack.config.data_dir / "s3" / bucket, root / bucket)
        (root / bucket / "half-written@.tmp-0123").write_bytes(b"crash")  # a write cut short
        moto_bucket = _moto_bucket(bucket)
        moto_bucket.keys.clear()  # the emulator's memory, gone (no hook sees this)
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
        invocations = dict(DISPATCHER.invocations)

        assert persistence.restore(root) == {bucket: 2}

        for key, was in before.items():
            now = s3.head_object(Bucket=bucket, Key=key)
            for field in ("ETag", "ContentType", "ContentLength", "Metadata", "LastModified"):
                assert now.get(field) == was.get(field), (key, field)
        assert s3.head_object(Bucket=bucket, Key="thumbnails/x.jpg")["CacheControl"] == "public, max-age=60"
        assert s3.get_object(Bucket=bucket, Key="raw-uploads/x.mp4")["Body"].read() == b"\x00\x01raw"
        assert s3.get_object_tagging(Bucket=bucket, Key="raw-uploads/x.mp4")["TagSet"] == [
            {"Key": "kept", "Value": "yes"}]
        assert dict(DISPATCHER.invocations) == invocations  # no upload event for old objects
        assert not (root / bucket / "half-written@.tmp-0123").exists()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_restore_skips_damaged_files_and_unknown_buckets(stack, tmp_path):
    good = persistence.object_path(tmp_path, "no-such-bucket", "k")
    good.parent.mkdir(parents=True)
    good.write_bytes(b"clipstream-s3-object 1 " + b'{"key":"k","size":1}\n' + b"x")
    assert persistence.restore(tmp_path) == {}
    assert good.exists()  # kept for a start whose deploy creates the bucket
    short = persistence.object_path(tmp_path, "no-such-bucket", "short")
    short.write_bytes(b"clipstream-s3-object 1 " + b'{"key":"short","size":10}\n' + b"x")
    assert [h["key"] for _, h, _, _ in persistence.stored_objects(tmp_path)] == ["k"]


def test_reset_refuses_while_the_stack_runs_and_removes_data_otherwise(stack, tmp_path):
    with pytest.raises(RuntimeError, match="running"):
        persistence.reset(stack.config.data_dir)
    assert (stack.config.data_dir / "pgdata" / "PG_VERSION").exists()
    for name in ("pgdata", "s3/clipstream"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "jwt-secret").write_text("s")
    (tmp_path / "google-dev-key.pem").write_text("k")
    assert sorted(persistence.reset(tmp_path)) == ["jwt-secret", "pgdata", "s3"]
    assert [p.name for p in tmp_path.iterdir()] == ["google-dev-key.pem"]


def test_recover_starts_an_upload_whose_trigger_never_ran(stack, make_user, make_stream, make_video, clips):
    """Bytes stored, event lost with the stack: the next start processes the upload, once."""
    from chalicelib import db
    from tests.helpers import wait_for_final

    user = make_user()
    video = make_video(make_stream(user), user)
    vid = str(video["id"])
    backend = _moto_backend("clipstream")
    backend.put_object("clipstream", video["raw_key"], clips[0].read_bytes(), disable_notification=True)
    assert db.fetch_all("SELECT 1 FROM pipeline_executions WHERE video_id = %s", (vid,)) == []

    summary = persistence.recover()

    assert vid in summary["started"]
    assert wait_for_final(vid)["status"] == "complete"
    assert vid not in persistence.recover()["started"]  # claimed once: a second start does nothing
    assert len(db.fetch_all("SELECT 1 FROM pipeline_executions WHERE video_id = %s", (vid,))) == 1


def test_recover_fails_a_highlight_run_whose_execution_is_gone(stack, make_user, make_stream, make_video):
    from chalicelib import db

    user = make_user()
    video = make_video(make_stream(user), user)
    vid = str(video["id"])
    db.execute("UPDATE videos SET status = 'complete', processing_index = 0 WHERE id = %s", (vid,))
    machine = stack.env["CLIPS_STATE_MACHINE_ARN"]
    db.execute("INSERT INTO moment_runs (video_id, execution_name, execution_arn, status)"
               " VALUES (%s, 'gone', %s, 'extracting')",
               (vid, machine.replace(":stateMachine:", ":execution:") + ":gone"))
    done = db.fetch_one("INSERT INTO moments (video_id, start_s, end_s, title, score, reason, clip_status,"
                        " clip_key) VALUES (%s, 0, 1, 't', 1, 'r', 'ready', 'clips/x') RETURNING id", (vid,))
    cut = db.fetch_one("INSERT INTO moments (video_id, start_s, end_s, title, score, reason, clip_status)"
                       " VALUES (%s, 1, 2, 't', 1, 'r', 'extracting') RETURNING id", (vid,))

    assert vid in persistence.recover()["highlights_failed"]

    run = db.fetch_one("SELECT status, error FROM moment_runs WHERE video_id = %s", (vid,))
    assert run == {"status": "failed", "error": persistence.INTERRUPTED}
    states = {str(r["id"]): (r["clip_status"], r["clip_error"])
              for r in db.fetch_all("SELECT id, clip_status, clip_error FROM moments WHERE video_id = %s", (vid,))}
    assert states == {str(done["id"]): ("ready", None), str(cut["id"]): ("failed", persistence.INTERRUPTED)}
    assert db.fetch_one("SELECT status FROM videos WHERE id = %s", (vid,))["status"] == "complete"
