"""Hostile uploads and failure reasons, through the real API and pipeline.

A playlist, concat list or SDP file uploaded as .mp4 (POST + presigned PUT) ends failed
with the public reason "not a video file"; FFmpeg opens nothing it names. A viewer, the
uploader and a stream admin see only the fixed public reason; the detail (paths, hosts,
SQL, FFmpeg's words) is the platform admins' alone.
"""
from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest
import requests

from chalicelib import failures
from tests.helpers import call, wait_for_final
from tests.media import clips as make

pytestmark = pytest.mark.attack  # hostile callers: counted in bench/results/reliability.json

PLATFORM_ADMIN = "admin@example.com"  # ADMIN_EMAILS of the test stack
# What must never reach a non-admin: the upload's bytes, FFmpeg's words, our paths and hosts.
SECRETS = ("/tmp", "/etc/passwd", "10.0.3.7", "EXTM3U", "ffconcat", "whitelist", "SELECT",
           "db.internal", "/var/task", "source.mp4", "playlist", "concat", "SDP", "Error")


class _Recorder(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append(self.path)
        self.send_error(404)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def listener():
    srv = _Recorder()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def crew(client, sign_in, make_stream):
    """A stream owned by a platform admin, with a creator (the uploader) and a viewer."""
    root = sign_in(PLATFORM_ADMIN)
    stream = make_stream({"id": root["user"]["id"]})
    creator, viewer, stream_admin = sign_in(), sign_in(), sign_in()
    from chalicelib import db
    for who, role in ((creator, "creator"), (viewer, "viewer"), (stream_admin, "admin")):
        db.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, %s)",
                   (stream["id"], who["user"]["id"], role))
    return {"root": root, "creator": creator, "viewer": viewer, "stream_admin": stream_admin,
            "stream": stream}


def _upload(client, crew, path: Path) -> str:
    data = path.read_bytes()
    status, created = call(client, "POST", f"/streams/{crew['stream']['id']}/videos",
                           crew["creator"], {"title": "Nice shot", "filename": "clip.mp4",
                                             "size_bytes": len(data), "content_type": "video/mp4"})
    assert status == 201, created
    put = requests.put(created["upload_url"], data=data, headers={**created["upload_headers"], "Content-Type": "video/mp4"},
                       timeout=30)
    assert put.status_code == 200, put.text
    return created["id"]


def _assert_public_only(body: dict | None, expected: str, *extra: str) -> None:
    assert body is not None
    assert body["failure_reason"] == expected
    assert "failure_detail" not in body
    text = json.dumps(body)
    for secret in SECRETS + extra:
        assert secret not in text, (secret, text)


def test_hostile_uploads_fail_as_not_a_video_and_open_nothing(client, crew, listener, tmp_path):
    base = f"http://127.0.0.1:{listener.server_address[1]}"
    targets = [f"{base}/stolen.ts", "file:///etc/passwd", "/etc/passwd"]
    hostile = {
        "HLS playlist": make.hls_playlist(tmp_path / "playlist.mp4", targets),
        "concat list": make.concat_list(tmp_path / "concat.mp4", targets),
        "SDP session": make.sdp_session(tmp_path / "session.mp4", 5004),
    }
    uploaded = {name: _upload(client, crew, path) for name, path in hostile.items()}
    for name, vid in uploaded.items():
        row = wait_for_final(vid, 90)
        assert (row["status"], row["failed_stage"]) == ("failed", "dedup"), name
        assert row["failure_public"] == failures.NOT_A_VIDEO, (name, row["failure_reason"])
        assert "not a video file" in row["failure_reason"], name
        assert "root:x:0:0" not in row["failure_reason"]

        for who in ("creator", "viewer", "stream_admin"):
            status, body = call(client, "GET", f"/videos/{vid}", crew[who])
            assert status == 200
            _assert_public_only(body, "not a video file", base)
            status, body = call(client, "GET", f"/videos/{vid}/processing", crew[who])
            assert status == 200
            _assert_public_only(body, "not a video file", base)
            assert [h["error"] for h in body["history"]] == ["not a video file"]
            status, body = call(client, "GET", f"/videos/{vid}/stream", crew[who])
            assert status == 422
            _assert_public_only(body, "not a video file", base)
            status, body = call(client, "GET", f"/api/videos/{vid}/hls/master.m3u8", crew[who])
            assert status == 404
            _assert_public_only(body, "not a video file", base)

        status, body = call(client, "GET", f"/videos/{vid}", crew["root"])
        assert status == 200 and body["failure_reason"] == "not a video file"
        assert body["failure_detail"] == row["failure_reason"]
        status, body = call(client, "GET", f"/videos/{vid}/processing", crew["root"])
        assert body["failure_detail"] == row["failure_reason"]
        assert body["history"][0]["error"].startswith("PermanentStepError: not a usable video")
    assert listener.requests == []

    status, queue = call(client, "GET", "/processing/queue", crew["root"])
    assert status == 200
    details = {f["video_id"]: f for f in queue["recent_failures"]}
    for name, vid in uploaded.items():
        assert details[vid]["failure_reason"] == "not a video file"
        assert name.split()[0].lower() in details[vid]["failure_detail"].lower()
    status, body = call(client, "GET", "/processing/queue", crew["stream_admin"])
    assert status == 403 and "recent_failures" not in json.dumps(body)


def test_an_internal_failure_shows_viewers_only_the_generic_reason(client, crew, clips):
    """A step that died on the database: the detail names a host, a path and SQL."""
    from chalicelib.pipeline import finalize

    vid = _upload(client, crew, clips[0])
    wait_for_final(vid, 90)
    from chalicelib import db
    db.execute("UPDATE videos SET status = 'running', processing_index = 2 WHERE id = %s", (vid,))
    cause = json.dumps({"errorType": "OperationalError", "errorMessage": (
        'connection to server at "db.internal.example" (10.0.3.7), port 5432 failed in '
        '/var/task/chalicelib/db/__init__.py while running SELECT * FROM videos WHERE id = 1')})
    finalize.mark_failed({"video_id": vid, "execution": None, "failed_stage": "transcode",
                          "error": {"Error": "OperationalError", "Cause": cause}})

    for who in ("creator", "viewer", "stream_admin"):
        for path in (f"/videos/{vid}", f"/videos/{vid}/processing"):
            status, body = call(client, "GET", path, crew[who])
            assert status == 200
            _assert_public_only(body, "processing failed, we are on it")
        status, body = call(client, "GET", f"/videos/{vid}/stream", crew[who])
        assert status == 422
        _assert_public_only(body, "processing failed, we are on it")

    status, body = call(client, "GET", f"/videos/{vid}", crew["root"])
    assert body["failure_reason"] == "processing failed, we are on it"
    assert "db.internal.example" in body["failure_detail"] and "SELECT" in body["failure_detail"]


def test_a_stranger_sees_nothing_of_a_failed_video(client, crew, sign_in, tmp_path):
    vid = _upload(client, crew, make.concat_list(tmp_path / "concat.mp4", ["/etc/passwd"]))
    assert wait_for_final(vid, 90)["status"] == "failed"
    stranger = sign_in()
    for path in (f"/videos/{vid}", f"/videos/{vid}/processing", f"/videos/{vid}/stream"):
        status, body = call(client, "GET", path, stranger)
        assert status in (403, 404) and "failure" not in json.dumps(body)
