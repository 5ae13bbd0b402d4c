"""Live updates over a real WebSocket (chalicelib/live.py, the local WebSocket API in infra/local/websocket.py).

Clients connect with their access token, subscribe to a stream or a video and
hear sync merges, new videos and processing progress; strangers, bad tokens
and malformed messages get a clear error and nothing else.
"""
from __future__ import annotations

import json
import uuid

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chalicelib import db
from tests.helpers import call, wait_for_final


@pytest.fixture()
def live(stack):
    opened = []

    def open_(token: str | None):
        url = stack.live.url + "/" + (f"?token={token}" if token is not None else "")
        ws = connect(url, open_timeout=10)
        opened.append(ws)
        return ws

    yield open_
    for ws in opened:
        ws.close()


def _next(ws, timeout: float = 10) -> dict:
    return json.loads(ws.recv(timeout=timeout))


def _request(ws, message) -> dict:
    ws.send(message if isinstance(message, str) else json.dumps(message))
    return _next(ws)


def _until(ws, predicate, timeout: float = 120) -> list[dict]:
    """Messages received until one satisfies predicate (included)."""
    seen = []
    while True:
        msg = _next(ws, timeout)
        seen.append(msg)
        if predicate(msg):
            return seen


def _silent(ws, seconds: float = 1.5) -> bool:
    try:
        ws.recv(timeout=seconds)
    except TimeoutError:
        return True
    return False


def _join(stream_id, user_id, role: str) -> None:
    db.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, %s)",
               (str(stream_id), str(user_id), role))


def test_two_clients_see_each_others_sync_edits(client, sign_in, make_stream, make_video, live):
    alice, bob = sign_in(), sign_in()
    stream = make_stream({"id": alice["user"]["id"]})
    _join(stream["id"], bob["user"]["id"], "admin")
    video = make_video(stream, {"id": alice["user"]["id"]})
    a, b = live(alice["app_token"]), live(bob["app_token"])
    for ws in (a, b):
        assert _request(ws, {"action": "subscribe", "video_id": str(video["id"])}) == {
            "type": "subscribed", "topic": f"video:{video['id']}"}

    status, body = call(client, "POST", "/sync", alice, {
        "video_id": str(video["id"]), "device_id": "laptop",
        "operations": [{"type": "update_title", "value": "Alice's title"}]})
    assert status == 200, body
    for ws in (a, b):
        event = _next(ws)
        assert event["type"] == "video.updated" and event["video_id"] == str(video["id"])
        assert event["actor"] == f"{alice['user']['id']}:laptop" and event["fields"] == ["title"]
        assert event["version"] == body["server_version"]

    status, body = call(client, "POST", "/sync", bob, {
        "video_id": str(video["id"]), "operations": [{"type": "add_tag", "tag": "clutch"}]})
    assert status == 200, body
    for ws in (a, b):
        event = _next(ws)
        assert event["type"] == "video.updated" and event["actor"] == str(bob["user"]["id"])
        assert event["vector_clock"] == body["server_vector_clock"]


def test_a_subscriber_sees_a_clip_go_from_upload_to_ready(client, sign_in, make_stream, live, clips):
    me = sign_in()
    stream = make_stream({"id": me["user"]["id"]})
    ws = live(me["app_token"])
    assert _request(ws, {"action": "subscribe", "stream_id": str(stream["id"])})["type"] == "subscribed"

    data = clips[0].read_bytes()
    status, created = call(client, "POST", f"/streams/{stream['id']}/videos", me, {
        "title": "live clip", "filename": "live.mp4", "size_bytes": len(data), "content_type": "video/mp4"})
    assert status == 201, created
    first = _next(ws)
    assert first == {"type": "video.created", "video_id": created["id"], "stream_id": str(stream["id"]),
                     "processing_index": 1, "stage": "dedup", "status": first["status"], "title": "live clip"}
    put = requests.put(created["upload_url"], data=data,
                       headers={**created["upload_headers"], "Content-Type": "video/mp4"}, timeout=60)
    assert put.status_code == 200
    events = _until(ws, lambda m: m.get("status") in ("complete", "failed", "duplicate"))
    assert wait_for_final(created["id"])["status"] == "complete"
    assert all(e["type"] == "video.processing" and e["video_id"] == created["id"] for e in events)
    steps = [e["step"] for e in events]
    assert steps[0] == "dedup" and "transcode" in steps and steps[-1] == "finalize", steps
    assert events[-1]["processing_index"] == 0 and events[-1]["stage"] == "complete"


@pytest.mark.attack
def test_a_stranger_cannot_subscribe_to_a_private_stream_or_video(client, sign_in, make_stream, make_video, live):
    owner, stranger = sign_in(), sign_in()
    stream = make_stream({"id": owner["user"]["id"]})
    video = make_video(stream, {"id": owner["user"]["id"]})
    ws = live(stranger["app_token"])
    for target in ({"stream_id": str(stream["id"])}, {"video_id": str(video["id"])}):
        reply = _request(ws, {"action": "subscribe", **target})
        assert reply == {"type": "error", "status": 403, "error": "Access denied", "details": []}
    for target in ({"stream_id": str(uuid.uuid4())}, {"video_id": "not-an-id"}):
        reply = _request(ws, {"action": "subscribe", **target})
        assert reply["type"] == "error" and reply["status"] == 404
    assert db.fetch_one("SELECT count(*) AS n FROM live_subscriptions s JOIN live_connections c"
                        " USING (connection_id) WHERE c.user_id = %s", (stranger["user"]["id"],))["n"] == 0
    status, _ = call(client, "POST", "/sync", owner, {
        "video_id": str(video["id"]), "operations": [{"type": "update_title", "value": "secret plans"}]})
    assert status == 200
    assert _silent(ws), "a stranger heard about a private video"


@pytest.mark.attack
def test_a_removed_member_hears_nothing_more(client, sign_in, make_stream, make_video, live):
    owner, viewer = sign_in(), sign_in()
    stream = make_stream({"id": owner["user"]["id"]})
    _join(stream["id"], viewer["user"]["id"], "viewer")
    video = make_video(stream, {"id": owner["user"]["id"]})
    ws = live(viewer["app_token"])
    assert _request(ws, {"action": "subscribe", "stream_id": str(stream["id"])})["type"] == "subscribed"
    db.execute("DELETE FROM stream_members WHERE stream_id = %s AND user_id = %s",
               (str(stream["id"]), viewer["user"]["id"]))
    status, _ = call(client, "POST", "/sync", owner, {
        "video_id": str(video["id"]), "operations": [{"type": "update_title", "value": "after you left"}]})
    assert status == 200
    assert _silent(ws)


@pytest.mark.attack
@pytest.mark.parametrize("token", [None, "", "not-a-token", "eyJhbGciOiJIUzI1NiJ9.e30.forged"])
def test_a_bad_or_missing_token_is_refused(live, token):
    since = db.fetch_one("SELECT clock_timestamp() AS t")["t"]
    with pytest.raises(InvalidStatus) as refused:
        live(token)
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error"]
    assert db.fetch_one("SELECT count(*) AS n FROM live_connections WHERE connected_at >= %s", (since,))["n"] == 0


@pytest.mark.attack
def test_malformed_messages_get_an_error_and_the_connection_survives(sign_in, live):
    me = sign_in()
    ws = live(me["app_token"])
    for message, detail in [
        ("not json", "the message must be a JSON object"),
        ("[1, 2]", "the message must be a JSON object"),
        ({"action": "shout"}, "action must be one of subscribe, unsubscribe, ping"),
        ({"action": "subscribe"}, "name exactly one of stream_id, video_id"),
        ({"action": "subscribe", "stream_id": "x", "video_id": "y"}, "name exactly one of stream_id, video_id"),
        ({"action": "subscribe", "stream_id": "x", "admin": True}, "unknown field: admin"),
        ("x" * 5000, "a message has at most 4096 bytes"),
    ]:
        reply = _request(ws, message)
        assert reply["type"] == "error" and reply["status"] == 400, reply
        assert detail in reply["details"], reply
    assert _request(ws, {"action": "ping"}) == {"type": "pong"}


def test_publishing_costs_nothing_without_subscribers_and_never_fails_the_caller(make_user, make_stream,
                                                                                 make_video, stack):
    from chalicelib import live as live_module
    owner = make_user()
    video = make_video(make_stream(owner), owner)
    assert live_module.publish_video(video["id"], "video.processing") == 0
    # A subscription whose connection is gone: the post is answered 410 and the connection forgotten.
    db.execute("INSERT INTO live_connections (connection_id, user_id) VALUES ('gone-1', %s)", (owner["id"],))
    db.execute("INSERT INTO live_subscriptions (connection_id, topic, stream_id) VALUES ('gone-1', %s, %s)",
               (f"video:{video['id']}", video["stream_id"]))
    assert live_module.publish_video(video["id"], "video.processing") == 0
    assert db.fetch_one("SELECT 1 AS x FROM live_connections WHERE connection_id = 'gone-1'") is None


@pytest.mark.attack
def test_the_management_api_answers_only_signed_callers_with_the_grant(sign_in, live, stack):
    """post_to_connection is IAM-signed in AWS: unsigned calls and roles without
    execute-api:ManageConnections are refused, and the client hears nothing."""
    import boto3
    from botocore.exceptions import ClientError

    from chalicelib.config import get_settings
    from infra.local.emulator import ROLES

    me = sign_in()
    ws = live(me["app_token"])
    assert _request(ws, {"action": "ping"}) == {"type": "pong"}
    connection = db.fetch_one("SELECT connection_id FROM live_connections WHERE user_id = %s"
                              " ORDER BY connected_at DESC LIMIT 1", (me["user"]["id"],))["connection_id"]
    endpoint = get_settings().live_endpoint_url
    unsigned = requests.post(f"{endpoint}/@connections/{connection}", data=b'{"forged": true}', timeout=10)
    assert unsigned.status_code == 403
    # The core route group's role has no ManageConnections grant.
    role = ROLES.credentials(stack.deployment.api_roles["core"])
    client = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=role.access_key_id,
                          aws_secret_access_key=role.secret_access_key, aws_session_token=role.session_token)
    with pytest.raises(ClientError) as refused:
        client.post_to_connection(ConnectionId=connection, Data=b'{"forged": true}')
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert _silent(ws)
