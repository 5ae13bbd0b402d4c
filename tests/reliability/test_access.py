"""Access: every stream- and video-scoped route refuses outsiders; roles, expired tokens,
other people's refresh tokens and share codes are held to what they grant; presigned URLs
are bound to one key and expire."""
from __future__ import annotations

import json
import re
import time
import uuid
from urllib.parse import urlsplit

import jwt
import pytest
import requests

from tests.helpers import call

pytestmark = [pytest.mark.reliability, pytest.mark.attack]

# Bodies that would be accepted from someone allowed (so a refusal is the access check's).
VALID_BODIES = {
    ("PUT", "/streams/{stream_id}"): {"name": "Renamed"},
    ("POST", "/streams/{stream_id}/invites"): {"role": "viewer", "usage_limit": 1},
    ("PUT", "/streams/{stream_id}/invites/{code}"): {"usage_limit": 5},
    ("PUT", "/streams/{stream_id}/members/{user_id}"): {"role": "viewer"},
    ("POST", "/streams/{stream_id}/videos"): {"title": "x", "filename": "x.mp4", "size_bytes": 10,
                                             "content_type": "video/mp4"},
    ("PUT", "/videos/{video_id}"): {"title": "Renamed"},
    ("POST", "/videos/{video_id}/share"): {},
    ("POST", "/streams/{stream_id}/bans"): {"user_id": None},
}
# Platform-admin routes (an admin of a stream is not a platform admin).
PLATFORM_ADMIN = re.compile(r"^/(admin/|processing/(queue|stats)$|system/storage$)")
# Served by playback tokens in the URL, not bearer tokens (tested separately below).
PLAYBACK = re.compile(r"^/api/videos/")


@pytest.fixture()
def world(client, sign_in, make_stream, make_video):
    """A stream with an admin, a creator and a viewer; a video, an invite; an outsider."""
    from chalicelib import db

    owner, creator, viewer, outsider = sign_in(), sign_in(), sign_in(), sign_in()
    stream = make_stream({"id": owner["user"]["id"]})
    for who, role in ((creator, "creator"), (viewer, "viewer")):
        db.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, %s)",
                   (stream["id"], who["user"]["id"], role))
    video = make_video(stream, creator["user"])
    status, invite = call(client, "POST", f"/streams/{stream['id']}/invites", owner,
                          {"role": "viewer", "usage_limit": 3})
    assert status == 201, invite
    ids = {"stream_id": str(stream["id"]), "video_id": str(video["id"]), "user_id": viewer["user"]["id"],
           "code": invite["code"], "quality": "480p", "report_id": "1"}
    return {"owner": owner, "creator": creator, "viewer": viewer, "outsider": outsider, "ids": ids}


def _routes(app, where) -> list[tuple[str, str]]:
    return sorted((m, p) for p, methods in app.routes.items() for m in methods if where(m, p))


def _path(template: str, ids: dict) -> str:
    """The route with real ids (an id this suite does not know: a fresh one)."""
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1)) or str(uuid.uuid4()), template)


def _body(method: str, template: str, ids: dict):
    body = VALID_BODIES.get((method, template), {} if method in ("POST", "PUT") else None)
    if body and "user_id" in body and body["user_id"] is None:
        body = {**body, "user_id": ids["user_id"]}
    return body


def _scoped(method: str, path: str) -> bool:
    """Routes on one stream or video (moderation of a video by its stream's admins included)."""
    return ("{stream_id}" in path or "{video_id}" in path) and not PLAYBACK.match(path)


def test_every_scoped_route_refuses_a_non_member(client, app, world, figures):
    ids, outsider = world["ids"], world["outsider"]
    routes = _routes(app, _scoped)
    assert len(routes) > 30
    allowed = []
    for method, template in routes:
        status, body = call(client, method, _path(template, ids), outsider, _body(method, template, ids))
        if status not in (403, 404):
            allowed.append((method, template, status, body))
    assert not allowed, allowed
    figures.counts["access_checks"] += len(routes)


def test_roles_below_the_need_are_refused(client, app, world, figures):
    ids = world["ids"]
    needs = [("viewer", "POST", "/streams/{stream_id}/videos")] + [
        ("creator", m, p) for m, p in [
            ("PUT", "/streams/{stream_id}"), ("DELETE", "/streams/{stream_id}"),
            ("GET", "/streams/{stream_id}/invites"), ("POST", "/streams/{stream_id}/invites"),
            ("PUT", "/streams/{stream_id}/invites/{code}"), ("DELETE", "/streams/{stream_id}/invites/{code}"),
            ("PUT", "/streams/{stream_id}/members/{user_id}"),
            ("DELETE", "/streams/{stream_id}/members/{user_id}")]]
    for who, method, template in needs:
        status, body = call(client, method, _path(template, ids), world[who], _body(method, template, ids))
        assert status == 403, (who, method, template, status, body)
    # Platform-admin routes refuse a stream admin who is not a platform admin.
    admin_routes = _routes(app, lambda m, p: bool(PLATFORM_ADMIN.match(p)) and not _scoped(m, p))
    for method, template in admin_routes:
        status, body = call(client, method, _path(template, ids), world["owner"], _body(method, template, ids))
        assert status in (403, 404), (method, template, status, body)
    figures.counts["access_checks"] += len(needs) + len(admin_routes)


def test_an_expired_token_is_refused_everywhere(client, app, world, stack, figures):
    doc = json.loads(client.http.get("/openapi.json").body)
    public = {(m.upper(), p) for p, ops in doc["paths"].items() for m, op in ops.items()
              if op.get("security") == []}
    now = int(time.time())
    expired = jwt.encode({"sub": world["owner"]["user"]["id"], "iss": "clipstream", "typ": "access",
                          "iat": now - 7200, "exp": now - 3600}, stack.env["JWT_SECRET"], algorithm="HS256")
    who = {"headers": {"Authorization": f"Bearer {expired}"}}
    routes = _routes(app, lambda m, p: (m, p) not in public and not PLAYBACK.match(p))
    wrong = []
    for method, template in routes:
        status, body = call(client, method, _path(template, world["ids"]), who,
                            _body(method, template, world["ids"]))
        if status != 401:
            wrong.append((method, template, status))
    assert not wrong, wrong
    figures.counts["access_checks"] += len(routes)


def test_another_users_refresh_token_grants_nothing_of_theirs(client, world, figures):
    owner, outsider = world["owner"], world["outsider"]
    # A refresh token is a bearer secret: presenting someone else's signs in its owner, never the presenter.
    status, body = call(client, "POST", "/auth/refresh", outsider, {"refresh_token": owner["refresh_token"]})
    assert status == 200
    assert jwt.decode(body["app_token"], options={"verify_signature": False})["sub"] == owner["user"]["id"]
    # The used token is now spent: presenting it again revokes the family (a thief is detected).
    assert call(client, "POST", "/auth/refresh", outsider, {"refresh_token": owner["refresh_token"]})[0] == 401
    assert call(client, "POST", "/auth/refresh", None, {"refresh_token": body["refresh_token"]})[0] == 401
    figures.counts["access_checks"] += 3


def test_a_share_code_only_opens_its_own_video(client, world, make_video, s3, figures):
    from chalicelib import db

    ids = world["ids"]
    db.execute("UPDATE videos SET status = 'complete', processing_index = 0, bitrates = '{480}'"
               " WHERE id = %s", (ids["video_id"],))
    s3.put_object(Bucket="clipstream", Key=f"processed-videos/{ids['video_id']}/master.m3u8",
                  Body=b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n480p.m3u8\n")
    status, share = call(client, "POST", f"/videos/{ids['video_id']}/share", world["creator"], {})
    assert status == 201, share
    status, public = call(client, "GET", f"/share/{share['code']}")
    assert status == 200 and public["id"] == ids["video_id"]
    url = public["stream"]["hls_url"]
    other = str(make_video({"id": ids["stream_id"]}, world["creator"]["user"])["id"])
    parts = urlsplit(url)
    path = f"{parts.path}?{parts.query}"
    own = client.http.get(path)
    assert own.status_code == 200, own.body
    assert client.http.get(path.replace(ids["video_id"], other)).status_code == 401
    figures.counts["access_checks"] += 2


def test_presigned_urls_are_bound_to_one_key_and_expire(client, world, s3, figures):
    from chalicelib import storage

    ids = world["ids"]
    status, first = call(client, "POST", f"/streams/{ids['stream_id']}/videos", world["creator"],
                         {"title": "a", "filename": "a.mp4", "size_bytes": 4, "content_type": "video/mp4"})
    assert status == 201
    status, second = call(client, "POST", f"/streams/{ids['stream_id']}/videos", world["creator"],
                          {"title": "b", "filename": "b.mp4", "size_bytes": 4, "content_type": "video/mp4"})
    # The URL for one key does not write another.
    forged = first["upload_url"].replace(first["id"], second["id"])
    resp = requests.put(forged, data=b"evil", headers={"Content-Type": "video/mp4"}, timeout=10)
    assert resp.status_code == 403 and "SignatureDoesNotMatch" in resp.text
    assert storage.head(f"raw-uploads/{second['id']}.mp4") is None
    # Nor with another method.
    assert requests.get(first["upload_url"], timeout=10).status_code == 403
    # A GET URL expires.
    s3.put_object(Bucket="clipstream", Key=f"thumbnails/{first['id']}.jpg", Body=b"\xff\xd8")
    url = storage.presigned_get(f"thumbnails/{first['id']}.jpg", expires_s=1)
    assert requests.get(url, timeout=10).status_code == 200
    time.sleep(2.1)
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 403 and "expired" in resp.text
    figures.counts["access_checks"] += 4
