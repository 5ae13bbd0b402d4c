"""Signed webhooks, end to end: real uploads and deletes emit events, the webhooks state machine
delivers them (signed, retried, replayable) to a real HTTP receiver, and the README's own
verification snippet judges the signatures. Hostile callers and URLs get clear 4xx and change nothing.
"""
from __future__ import annotations

import http.server
import json
import os
import re
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.helpers import call, wait_for, wait_for_final

ROOT = Path(__file__).resolve().parents[2]
PLATFORM_ADMIN = "admin@example.com"


def _readme_verifier():
    """verify_clipstream_webhook, executed from the README's snippet itself."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- webhook-verify -->\s*```python\n(.*?)```", text, re.S)
    assert block, "the README has no verification snippet"
    scope: dict = {}
    exec(compile(block.group(1), "README.md:webhook-verify", "exec"), scope)
    return scope["verify_clipstream_webhook"]


verify = _readme_verifier()


class _Receiver(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[dict] = []
        self.failures_left: dict[str, int] = {}
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def at(self, path: str) -> list[dict]:
        with self.lock:
            return [r for r in self.received if r["path"] == path]


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server: _Receiver = self.server  # type: ignore[assignment]
        with server.lock:
            server.received.append({"path": self.path, "headers": self.headers, "body": body})
            left = server.failures_left.get(self.path, 0)
            server.failures_left[self.path] = max(0, left - 1)
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        else:
            self.send_response(500 if left else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def receiver(stack):
    """A receiver on loopback, which the stack may reach only while this module runs."""
    from chalicelib.config import reset_settings

    saved = {k: os.environ.get(k) for k in ("OUTBOUND_ALLOW_HTTP", "OUTBOUND_ALLOW_HOSTS")}
    os.environ.update({"OUTBOUND_ALLOW_HTTP": "1", "OUTBOUND_ALLOW_HOSTS": "127.0.0.1"})
    reset_settings()
    server = _Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    reset_settings()


@pytest.fixture()
def crew(client, sign_in, make_stream):
    """A stream with an admin, a creator, a viewer; a stranger and a platform admin outside it."""
    from chalicelib import db
    admin = sign_in()
    stream = make_stream({"id": admin["user"]["id"]})
    creator, viewer = sign_in(), sign_in()
    for who, role in ((creator, "creator"), (viewer, "viewer")):
        db.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, %s)",
                   (stream["id"], who["user"]["id"], role))
    return {"admin": admin, "creator": creator, "viewer": viewer, "stranger": sign_in(),
            "root": sign_in(PLATFORM_ADMIN), "sid": str(stream["id"])}


def _register(client, crew, url: str, events: list[str]) -> dict:
    status, body = call(client, "POST", f"/streams/{crew['sid']}/webhooks", crew["admin"],
                        {"url": url, "events": events})
    assert status == 201, body
    return body


def _upload(client, crew, data: bytes) -> str:
    status, created = call(client, "POST", f"/streams/{crew['sid']}/videos", crew["creator"],
                           {"title": "Nice shot", "filename": "clip.mp4", "size_bytes": len(data),
                            "content_type": "video/mp4"})
    assert status == 201, created
    put = requests.put(created["upload_url"], data=data,
                       headers={**created["upload_headers"], "Content-Type": "video/mp4"}, timeout=30)
    assert put.status_code == 200, put.text
    return created["id"]


def _deliveries(client, crew, wid: str) -> list[dict]:
    status, body = call(client, "GET", f"/streams/{crew['sid']}/webhooks/{wid}/deliveries", crew["admin"])
    assert status == 200, body
    return body["deliveries"]


def _resigned(secret: str, timestamp: int, body: bytes) -> dict:
    from chalicelib.webhooks import sign
    return {"Clipstream-Webhook-Timestamp": str(timestamp), "Clipstream-Webhook-Signature": sign(secret, timestamp, body)}


def test_video_ready_arrives_once_signed_and_the_readme_snippet_verifies_it(client, crew, receiver, clips):
    from chalicelib import db
    from chalicelib.pipeline import progress

    hook = _register(client, crew, receiver.url("/ready"), ["video.ready", "video.failed"])
    assert hook["secret"].startswith("whsec_")
    vid = _upload(client, crew, clips[0].read_bytes())
    assert wait_for_final(vid)["status"] == "complete"
    got = wait_for(lambda: receiver.at("/ready"), timeout_s=60)
    wait_for(lambda: _deliveries(client, crew, hook["id"])[0]["status"] == "succeeded", timeout_s=30)
    time.sleep(1.5)
    assert len(receiver.at("/ready")) == 1
    request = got[0]
    event = json.loads(request["body"])
    assert event["type"] == "video.ready" and event["data"]["video_id"] == vid
    assert event["stream_id"] == crew["sid"] and event["data"]["status"] == "complete"
    assert request["headers"]["Clipstream-Webhook-Id"] == event["id"]
    # The README's snippet accepts the real delivery ...
    assert verify(hook["secret"], request["headers"], request["body"])
    # ... and refuses an altered body, another secret, no signature, a stale or future timestamp.
    assert not verify(hook["secret"], request["headers"], request["body"].replace(b"complete", b"deleted"))
    assert not verify("whsec_" + "x" * 43, request["headers"], request["body"])
    assert not verify(hook["secret"], {"Clipstream-Webhook-Timestamp": str(int(time.time()))}, request["body"])
    assert not verify(hook["secret"], {}, request["body"])
    stale = int(time.time()) - 301
    assert not verify(hook["secret"], _resigned(hook["secret"], stale, request["body"]), request["body"])
    future = int(time.time()) + 301
    assert not verify(hook["secret"], _resigned(hook["secret"], future, request["body"]), request["body"])
    assert verify(hook["secret"], _resigned(hook["secret"], int(time.time()), request["body"]), request["body"])
    # A retried Finalize (same execution) makes no second event and no second delivery.
    execution = db.fetch_one("SELECT execution_name FROM pipeline_executions WHERE video_id = %s", (vid,))
    progress.complete(vid, execution["execution_name"])
    events = db.fetch_all("SELECT id FROM webhook_events WHERE subject_id = %s AND type = 'video.ready'", (vid,))
    assert [str(e["id"]) for e in events] == [event["id"]]
    assert len(_deliveries(client, crew, hook["id"])) == 1


def test_a_failing_receiver_is_retried_its_attempts_listed_and_a_replay_keeps_the_event_id(
        client, crew, receiver, make_video):
    from chalicelib import db

    hook = _register(client, crew, receiver.url("/flaky"), ["video.deleted"])
    other = _register(client, crew, receiver.url("/ready-only"), ["video.ready"])
    receiver.failures_left["/flaky"] = 1
    video = make_video({"id": crew["sid"]}, {"id": crew["creator"]["user"]["id"]})
    vid = str(video["id"])
    status, _ = call(client, "DELETE", f"/videos/{vid}", crew["creator"])
    assert status == 204
    done = wait_for(lambda: [d for d in _deliveries(client, crew, hook["id"]) if d["status"] == "succeeded"],
                    timeout_s=60)
    delivery = done[0]
    assert delivery["event_type"] == "video.deleted"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    assert "500" in delivery["attempts"][0]["error"] and delivery["attempts"][1]["error"] is None
    sent = receiver.at("/flaky")
    assert len(sent) == 2 and sent[0]["body"] == sent[1]["body"]
    ids = {r["headers"]["Clipstream-Webhook-Id"] for r in sent}
    assert ids == {delivery["event_id"]}
    assert json.loads(sent[1]["body"])["data"]["video_id"] == vid
    assert _deliveries(client, crew, other["id"]) == []            # not subscribed to video.deleted
    # Replay: a new delivery of the same event (same id, same body, a fresh signature).
    status, replay = call(client, "POST", f"/streams/{crew['sid']}/webhooks/{hook['id']}/deliveries/"
                          f"{delivery['id']}/replay", crew["admin"])
    assert status == 202, replay
    assert replay["event_id"] == delivery["event_id"] and replay["replay_of"] == delivery["id"]
    wait_for(lambda: len(receiver.at("/flaky")) == 3, timeout_s=30)
    third = receiver.at("/flaky")[2]
    assert third["headers"]["Clipstream-Webhook-Id"] == delivery["event_id"] and third["body"] == sent[0]["body"]
    assert verify(hook["secret"], third["headers"], third["body"])
    assert db.fetch_one("SELECT count(*) AS n FROM webhook_events WHERE subject_id = %s", (vid,))["n"] == 1


def test_a_not_a_video_upload_sends_video_failed_and_a_redirect_is_a_failed_attempt(client, crew, receiver):
    hook = _register(client, crew, receiver.url("/failed"), ["video.failed"])
    moved = _register(client, crew, receiver.url("/redirect"), ["video.failed"])
    vid = _upload(client, crew, b"#EXTM3U\n#EXT-X-ENDLIST\n" * 10)
    assert wait_for_final(vid)["status"] == "failed"
    got = wait_for(lambda: receiver.at("/failed"), timeout_s=60)
    event = json.loads(got[0]["body"])
    assert event["type"] == "video.failed" and event["data"]["video_id"] == vid
    assert event["data"]["reason"] == "not a video file"
    assert verify(hook["secret"], got[0]["headers"], got[0]["body"])
    # The redirect to the metadata service is not followed: the attempt failed and is retried.
    attempts = wait_for(lambda: (_deliveries(client, crew, moved["id"]) or [{}])[0].get("attempts"), timeout_s=30)
    assert attempts[0]["status_code"] is None and "redirect" in attempts[0]["error"]


def test_the_same_clip_twice_in_a_stream_sends_video_duplicate_naming_the_original_never_across_streams(
        client, crew, receiver, clips, make_stream):
    from chalicelib import db
    from chalicelib.pipeline import progress

    hook = _register(client, crew, receiver.url("/dup"), ["video.duplicate", "video.ready"])
    first = _upload(client, crew, clips[2].read_bytes())
    assert wait_for_final(first)["status"] == "complete"
    second = _upload(client, crew, clips[2].read_bytes())
    row = wait_for_final(second, 120)
    assert row["status"] == "duplicate" and str(row["duplicate_of"]) == first
    got = wait_for(lambda: [r for r in receiver.at("/dup") if json.loads(r["body"])["type"] == "video.duplicate"],
                   timeout_s=60)
    wait_for(lambda: [d["status"] for d in _deliveries(client, crew, hook["id"])] == ["succeeded"] * 2, timeout_s=30)
    time.sleep(1.5)
    types = sorted(json.loads(r["body"])["type"] for r in receiver.at("/dup"))
    assert types == ["video.duplicate", "video.ready"]          # first: ready; second: duplicate, once
    event = json.loads(got[0]["body"])
    assert event["data"]["video_id"] == second and event["data"]["duplicate_of"] == first
    assert event["data"]["status"] == "duplicate" and event["data"]["similarity"] == 1.0
    assert verify(hook["secret"], got[0]["headers"], got[0]["body"])

    # The same bytes in another stream of the same admin: processed, not a duplicate; its
    # endpoint hears video.ready only, and no event of that stream names the first stream's video.
    other = make_stream({"id": crew["admin"]["user"]["id"]}, name="Elsewhere")
    status, theirs = call(client, "POST", f"/streams/{other['id']}/webhooks", crew["admin"],
                          {"url": receiver.url("/dup-other"), "events": ["video.duplicate", "video.ready"]})
    assert status == 201
    db.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, 'creator')",
               (other["id"], crew["creator"]["user"]["id"]))
    elsewhere = _upload(client, {**crew, "sid": str(other["id"])}, clips[2].read_bytes())
    assert wait_for_final(elsewhere, 120)["status"] == "complete"
    got = wait_for(lambda: receiver.at("/dup-other"), timeout_s=60)
    time.sleep(1.5)
    assert [json.loads(r["body"])["type"] for r in receiver.at("/dup-other")] == ["video.ready"]
    assert first not in got[0]["body"].decode() and second not in got[0]["body"].decode()
    # Were a transition ever to flag it against a video of another stream, the event would not name it.
    progress.mark_duplicate(elsewhere, first, 1.0, "cross-stream-check")
    flagged = db.fetch_one("SELECT payload FROM webhook_events WHERE subject_id = %s AND type = 'video.duplicate'",
                           (elsewhere,))
    assert flagged["payload"]["duplicate_of"] is None and first not in json.dumps(flagged["payload"])
    assert db.fetch_one("SELECT count(*) AS n FROM webhook_events WHERE stream_id = %s AND payload::text LIKE %s",
                        (other["id"], f"%{first}%"))["n"] == 0


def _processed_video(crew, make_video, s3, clip: Path | None) -> str:
    """A video of the crew's stream marked processed, with (or without) its upload in the bucket."""
    from chalicelib import db

    video = make_video({"id": crew["sid"]}, {"id": crew["creator"]["user"]["id"]})
    db.execute("UPDATE videos SET processing_index = 0, status = 'complete', fps = 30, duration_s = 2,"
               " audio_codec = 'aac' WHERE id = %s", (video["id"],))
    if clip:
        s3.put_object(Bucket="clipstream", Key=video["raw_key"], Body=clip.read_bytes())
    return str(video["id"])


def _run_clips_machine(sfn, stack, vid: str, name: str, **payload) -> dict:
    from chalicelib.moments import store

    assert store.claim_run(vid, None, name)
    arn = sfn.start_execution(stateMachineArn=stack.env["CLIPS_STATE_MACHINE_ARN"], name=name,
                              input=json.dumps({"video_id": vid, "execution": name, **payload}))["executionArn"]
    return wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d, 120)


def _events_of(subject: str) -> list[dict]:
    from chalicelib import db
    return db.fetch_all("SELECT id, type FROM webhook_events WHERE subject_id = %s ORDER BY type", (subject,))


def test_the_clips_machine_sends_one_signed_clip_ready_and_a_failed_clip_sends_clip_failed(
        client, crew, receiver, clips, make_video, make_stream, s3, sfn, stack):
    from chalicelib import db, failures
    from chalicelib.moments import steps, store

    ready_hook = _register(client, crew, receiver.url("/clip-ready"), ["clip.ready"])
    failed_hook = _register(client, crew, receiver.url("/clip-failed"), ["clip.failed"])
    other = make_stream({"id": crew["admin"]["user"]["id"]}, name="Not this one")
    status, theirs = call(client, "POST", f"/streams/{other['id']}/webhooks", crew["admin"],
                          {"url": receiver.url("/clip-other"), "events": ["clip.ready", "clip.failed"]})
    assert status == 201
    vid = _processed_video(crew, make_video, s3, clips[1])
    good, outside = store.replace_moments(vid, [
        {"start_time": 0.5, "end_time": 1.5, "title": "the good bit", "score": 0.9, "reason": "test"},
        {"start_time": 1.0, "end_time": 1.8, "title": "b", "score": 0.5, "reason": "test"}])
    db.execute("UPDATE moments SET start_s = 40, end_s = 42 WHERE id = %s", (outside,))   # past the end
    name = f"{vid}-hooks"
    assert _run_clips_machine(sfn, stack, vid, name, generate=False, moment_ids=[good, outside])["status"] == "SUCCEEDED"
    assert store.moment(good)["clip_status"] == "ready" and store.moment(outside)["clip_status"] == "failed"

    ready = wait_for(lambda: receiver.at("/clip-ready"), timeout_s=60)
    failed = wait_for(lambda: receiver.at("/clip-failed"), timeout_s=60)
    for hook in (ready_hook, failed_hook):
        wait_for(lambda: [d["status"] for d in _deliveries(client, crew, hook["id"])] == ["succeeded"], timeout_s=30)
    time.sleep(1.5)
    assert len(receiver.at("/clip-ready")) == 1 and len(receiver.at("/clip-failed")) == 1
    event = json.loads(ready[0]["body"])
    assert event["type"] == "clip.ready" and event["stream_id"] == crew["sid"]
    data = event["data"]
    assert (data["moment_id"], data["video_id"], data["stream_id"], data["status"]) == (good, vid, crew["sid"], "ready")
    assert data["title"] == "the good bit" and data["clip_url"].endswith(f"/clips/{good}/stream")
    assert abs(data["duration"] - 1.0) < 0.1 and "clips/" + vid not in ready[0]["body"].decode()
    assert ready[0]["headers"]["Clipstream-Webhook-Id"] == event["id"]
    assert verify(ready_hook["secret"], ready[0]["headers"], ready[0]["body"])
    assert not verify(failed_hook["secret"], ready[0]["headers"], ready[0]["body"])
    # The clip.ready endpoint hears it from the real machine: play it to be sure it is a clip.
    status, _ = call(client, "GET", f"/clips/{good}/stream", crew["viewer"])
    assert status == 302

    gone = json.loads(failed[0]["body"])
    # Both bodies are what the OpenAPI document's WebhookEvent says.
    from tests.api.test_openapi import _accepts
    doc = json.loads(client.http.get("/openapi.json").body)
    assert all(_accepts(doc, {"$ref": "#/components/schemas/WebhookEvent"}, e) for e in (event, gone))
    assert gone["type"] == "clip.failed" and gone["data"]["moment_id"] == outside
    assert gone["data"]["status"] == "failed" and gone["data"]["clip_url"] is None
    # The public reason only: FFmpeg's words stay with the platform admins.
    assert gone["data"]["reason"] == failures.PROCESSING_FAILED
    assert "no video between" not in failed[0]["body"].decode()
    assert verify(failed_hook["secret"], failed[0]["headers"], failed[0]["body"])

    # A retried FinishExtraction (same execution) emits nothing new and delivers nothing twice.
    steps.finish({"video_id": vid, "execution": name, "moment_ids": [good, outside],
                  "clips": [{"moment_id": good, "ok": True}, {"moment_id": outside, "ok": False, "error": "x"}]})
    assert [e["type"] for e in _events_of(good)] == ["clip.ready"]
    assert [e["type"] for e in _events_of(outside)] == ["clip.failed"]
    assert len(_deliveries(client, crew, ready_hook["id"])) == 1
    assert len(_deliveries(client, crew, failed_hook["id"])) == 1
    # Another stream's endpoint heard nothing of this stream's clips.
    status, listed = call(client, "GET", f"/streams/{other['id']}/webhooks/{theirs['id']}/deliveries", crew["admin"])
    assert status == 200 and listed["deliveries"] == [] and receiver.at("/clip-other") == []


def test_a_failed_clip_run_sends_clip_failed_for_the_clips_it_left_unfinished(
        client, crew, receiver, make_video, s3, sfn, stack):
    from chalicelib.moments import steps, store

    hook = _register(client, crew, receiver.url("/run-failed"), ["clip.failed", "clip.ready"])
    vid = _processed_video(crew, make_video, s3, None)                  # the upload is missing
    [pending] = store.replace_moments(vid, [
        {"start_time": 0.2, "end_time": 1.2, "title": "never cut", "score": 0.7, "reason": "test"}])
    name = f"{vid}-hooks-failed"
    assert _run_clips_machine(sfn, stack, vid, name, generate=True, moment_ids=[])["status"] == "FAILED"
    assert store.moment(pending)["clip_status"] == "failed"
    got = wait_for(lambda: receiver.at("/run-failed"), timeout_s=60)
    wait_for(lambda: [d["status"] for d in _deliveries(client, crew, hook["id"])] == ["succeeded"], timeout_s=30)
    event = json.loads(got[0]["body"])
    assert event["type"] == "clip.failed" and event["data"]["moment_id"] == pending
    assert event["data"]["video_id"] == vid and event["data"]["reason"]
    assert "analysed" not in got[0]["body"].decode()               # the run's detail is not sent
    assert verify(hook["secret"], got[0]["headers"], got[0]["body"])
    # MarkExtractionFailed retried: no second event, no second delivery.
    steps.mark_failed({"video_id": vid, "execution": name, "error": {"Error": "RuntimeError", "Cause": "again"}})
    assert [e["type"] for e in _events_of(pending)] == ["clip.failed"]
    time.sleep(1.5)
    assert len(receiver.at("/run-failed")) == 1 and len(_deliveries(client, crew, hook["id"])) == 1


@pytest.mark.attack
def test_private_and_malformed_urls_are_refused_and_nothing_is_stored(client, crew, receiver):
    from chalicelib import db

    for url in ("https://169.254.169.254/latest/meta-data/", "https://10.0.0.1/hook", "http://10.0.0.1/hook",
                "https://127.0.0.2/hook", "https://0.0.0.0/hook", "https://[::ffff:169.254.169.254]/x", "https://user:pw@example.com/",
                "ftp://example.com/x", "not a url", ""):
        status, body = call(client, "POST", f"/streams/{crew['sid']}/webhooks", crew["admin"],
                            {"url": url, "events": ["video.ready"]})
        assert status == 400, (url, body)
        assert body["error"] == "Invalid webhook endpoint" and any("url" in d for d in body["details"]), body
    for events in ([], ["video.exploded"], "video.ready", [1]):
        status, body = call(client, "POST", f"/streams/{crew['sid']}/webhooks", crew["admin"],
                            {"url": receiver.url("/x"), "events": events})
        assert status == 400 and any("events" in d for d in body["details"]), (events, body)
    status, body = call(client, "POST", f"/streams/{crew['sid']}/webhooks", crew["admin"],
                        {"url": receiver.url("/x"), "events": ["video.ready"], "secret": "mine"})
    assert status == 400 and "unknown field: secret" in body["details"]
    assert db.fetch_one("SELECT count(*) AS n FROM webhook_endpoints WHERE stream_id = %s", (crew["sid"],))["n"] == 0


@pytest.mark.attack
def test_viewers_creators_and_strangers_cannot_register_list_or_replay(client, crew, receiver):
    from chalicelib import db

    hook = _register(client, crew, receiver.url("/members"), ["video.ready"])
    base = f"/streams/{crew['sid']}/webhooks"
    for who in ("viewer", "creator", "stranger"):
        for method, path, body in (("POST", base, {"url": receiver.url("/evil"), "events": ["video.ready"]}),
                                   ("GET", base, None),
                                   ("DELETE", f"{base}/{hook['id']}", None),
                                   ("GET", f"{base}/{hook['id']}/deliveries", None),
                                   ("POST", f"{base}/{hook['id']}/deliveries/{uuid.uuid4()}/replay", None)):
            status, answer = call(client, method, path, crew[who], body)
            assert status in (403, 404), (who, method, path, status, answer)
            assert "error" in answer and "secret" not in json.dumps(answer)
    status, _ = call(client, "GET", base, None)
    assert status == 401
    rows = db.fetch_all("SELECT id FROM webhook_endpoints WHERE stream_id = %s", (crew["sid"],))
    assert [str(r["id"]) for r in rows] == [hook["id"]]
    # Platform admins may (moderation powers), and the listing never shows a secret.
    status, created = call(client, "POST", base, crew["root"], {"url": receiver.url("/root"), "events": ["video.deleted"]})
    assert status == 201 and created["secret"].startswith("whsec_")
    status, listed = call(client, "GET", base, crew["admin"])
    assert status == 200 and listed["total"] == 2
    assert hook["secret"] not in json.dumps(listed) and created["secret"] not in json.dumps(listed)
    assert all("secret" not in w for w in listed["webhooks"])


@pytest.mark.attack
def test_foreign_webhook_and_delivery_ids_are_404(client, crew, receiver, make_stream):
    from chalicelib import db

    mine = _register(client, crew, receiver.url("/mine"), ["video.ready"])
    other_stream = make_stream({"id": crew["admin"]["user"]["id"]}, name="Other")   # same admin, other stream
    status, theirs = call(client, "POST", f"/streams/{other_stream['id']}/webhooks", crew["admin"],
                          {"url": receiver.url("/theirs"), "events": ["video.ready"]})
    assert status == 201
    event = db.fetch_one("INSERT INTO webhook_events (stream_id, type, subject_id, payload)"
                         " VALUES (%s, 'video.ready', %s, '{}') RETURNING id", (other_stream["id"], uuid.uuid4()))
    foreign = db.fetch_one("INSERT INTO webhook_deliveries (event_id, endpoint_id, status) VALUES (%s, %s,"
                           " 'succeeded') RETURNING id", (event["id"], theirs["id"]))
    base = f"/streams/{crew['sid']}/webhooks"
    for method, path in (("DELETE", f"{base}/{theirs['id']}"), ("GET", f"{base}/{theirs['id']}/deliveries"),
                         ("POST", f"{base}/{theirs['id']}/deliveries/{foreign['id']}/replay"),
                         ("POST", f"{base}/{mine['id']}/deliveries/{foreign['id']}/replay"),
                         ("DELETE", f"{base}/not-an-id"), ("GET", f"{base}/{uuid.uuid4()}/deliveries"),
                         ("POST", f"{base}/{mine['id']}/deliveries/nope/replay")):
        status, body = call(client, method, path, crew["admin"])
        assert status == 404, (method, path, body)
        assert body["error"] in ("Webhook not found", "Delivery not found"), body
    assert db.fetch_one("SELECT count(*) AS n FROM webhook_deliveries WHERE event_id = %s", (event["id"],))["n"] == 1
    assert db.fetch_one("SELECT 1 FROM webhook_endpoints WHERE id = %s", (theirs["id"],)) is not None
    status, _ = call(client, "DELETE", f"{base}/{mine['id']}", crew["admin"])
    assert status == 204
    status, _ = call(client, "GET", f"{base}/{mine['id']}/deliveries", crew["admin"])
    assert status == 404


def test_the_delivery_machine_is_valid_asl_and_retries_for_more_than_a_day():
    import subprocess

    validator = ROOT / "tests" / "tools" / "node_modules" / ".bin" / "asl-validator"
    result = subprocess.run([str(validator), "--json-path", "stepfunctions/webhooks.asl.json"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    machine = json.loads((ROOT / "stepfunctions" / "webhooks.asl.json").read_text())
    retry = machine["States"]["Deliver"]["Retry"][0]
    waits = sum(retry["IntervalSeconds"] * retry["BackoffRate"] ** n for n in range(retry["MaxAttempts"]))
    assert retry["BackoffRate"] >= 2 and waits > 24 * 3600, waits
    assert machine["States"]["Deliver"]["Catch"][0]["Next"] == "GiveUp"
