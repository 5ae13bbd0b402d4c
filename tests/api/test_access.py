"""chalicelib.access: the membership checks every stream-scoped route and video reuses."""
from __future__ import annotations

import uuid

import pytest

from chalicelib import access
from chalicelib.errors import ForbiddenError, NotFoundError


def member(stream, user, role):
    from chalicelib import db
    db.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, %s)",
               (stream["id"], user["id"], role))


@pytest.fixture()
def two_streams(make_user, make_stream, make_video):
    """Streams A and B, each with an admin, a creator and a viewer, and a video each."""
    world = {}
    for name in ("a", "b"):
        admin, creator, viewer = make_user(), make_user(), make_user()
        stream = make_stream(admin, name=name)
        member(stream, creator, "creator")
        member(stream, viewer, "viewer")
        world[name] = {"stream": stream, "admin": admin, "creator": creator, "viewer": viewer,
                       "video": make_video(stream, creator)}
    return world


def test_role_rank():
    assert access.ROLE_RANK == {"viewer": 1, "creator": 2, "admin": 3}


def test_stream_role(two_streams):
    a, b = two_streams["a"], two_streams["b"]
    assert access.stream_role(a["admin"]["id"], a["stream"]["id"]) == "admin"
    assert access.stream_role(str(a["viewer"]["id"]), str(a["stream"]["id"])) == "viewer"
    assert access.stream_role(a["admin"]["id"], b["stream"]["id"]) is None
    assert access.stream_role(a["admin"]["id"], "not-a-uuid") is None
    assert access.stream_role("nope", a["stream"]["id"]) is None


@pytest.mark.parametrize("who,minimum,expected", [
    ("admin", "admin", "admin"), ("admin", "viewer", "admin"), ("creator", "creator", "creator"),
    ("creator", "viewer", "creator"), ("viewer", "viewer", "viewer"),
])
def test_require_stream_role_allows(two_streams, who, minimum, expected):
    a = two_streams["a"]
    assert access.require_stream_role(a[who], a["stream"]["id"], minimum) == expected


@pytest.mark.parametrize("who,minimum,message", [
    ("creator", "admin", "Admin access required"), ("viewer", "admin", "Admin access required"),
    ("viewer", "creator", "Creator access required"),
])
def test_require_stream_role_too_low(two_streams, who, minimum, message):
    a = two_streams["a"]
    with pytest.raises(ForbiddenError) as err:
        access.require_stream_role(a[who], a["stream"]["id"], minimum)
    assert err.value.message == message and err.value.status == 403


@pytest.mark.parametrize("minimum", ["viewer", "creator", "admin"])
def test_require_stream_role_non_member_and_unknown(two_streams, minimum):
    a, b = two_streams["a"], two_streams["b"]
    with pytest.raises(ForbiddenError) as err:
        access.require_stream_role(a["admin"], b["stream"]["id"], minimum)
    assert err.value.message == "Access denied"
    for bad in (str(uuid.uuid4()), "not-a-uuid", None, ""):
        with pytest.raises(NotFoundError) as err:
            access.require_stream_role(a["admin"], bad, minimum)
        assert err.value.message == "Stream not found"


def test_require_video_access_own_stream(two_streams):
    a = two_streams["a"]
    for who in ("admin", "creator", "viewer"):
        row = access.require_video_access(a[who], a["video"]["id"])
        assert row["id"] == a["video"]["id"] and row["stream_id"] == a["stream"]["id"]
        assert "member_role" not in row
    assert access.require_video_access(a["creator"], str(a["video"]["id"]), "creator")["title"] == "clip"
    with pytest.raises(ForbiddenError) as err:
        access.require_video_access(a["viewer"], a["video"]["id"], "creator")
    assert err.value.message == "Creator access required"


def test_a_guessed_video_id_of_another_stream_is_denied(two_streams):
    """Even an admin of stream A gets 403 for B's video id; unknown ids are 404."""
    a, b = two_streams["a"], two_streams["b"]
    for who in ("admin", "creator", "viewer"):
        with pytest.raises(ForbiddenError) as err:
            access.require_video_access(a[who], b["video"]["id"])
        assert err.value.message == "Access denied"
    for bad in (str(uuid.uuid4()), "12345", "../etc/passwd", None):
        with pytest.raises(NotFoundError) as err:
            access.require_video_access(a["admin"], bad)
        assert err.value.message == "Video not found"


def test_removed_members_lose_access_at_once(two_streams):
    from chalicelib import db
    a = two_streams["a"]
    db.execute("DELETE FROM stream_members WHERE stream_id = %s AND user_id = %s",
               (a["stream"]["id"], a["viewer"]["id"]))
    with pytest.raises(ForbiddenError):
        access.require_video_access(a["viewer"], a["video"]["id"])
    with pytest.raises(ForbiddenError):
        access.require_stream_role(a["viewer"], a["stream"]["id"])


def test_platform_admins_do_not_bypass_membership(two_streams, stack):
    from chalicelib.auth.users import is_platform_admin, upsert_from_google
    from chalicelib.config import get_settings
    from infra.local.google_keys import DevKey

    email = get_settings().admin_emails[0]  # signed in as the account that owns the address
    root = upsert_from_google({"sub": DevKey.sub_for(email), "email": email, "name": "Root"})
    assert is_platform_admin(root)
    a = two_streams["a"]
    with pytest.raises(ForbiddenError):
        access.require_stream_role(root, a["stream"]["id"])
    with pytest.raises(ForbiddenError):
        access.require_video_access(root, a["video"]["id"])


def test_lock_stream_role_checks_inside_a_transaction(two_streams):
    from chalicelib import db
    a, b = two_streams["a"], two_streams["b"]
    with db.transaction() as cur:
        assert access.lock_stream_role(cur, a["admin"], a["stream"]["id"], "admin") == "admin"
    with pytest.raises(ForbiddenError):
        with db.transaction() as cur:
            access.lock_stream_role(cur, a["admin"], b["stream"]["id"])
    with pytest.raises(NotFoundError):
        with db.transaction() as cur:
            access.lock_stream_role(cur, a["admin"], uuid.uuid4())


def test_unknown_minimum_role_is_a_programming_error(two_streams):
    a = two_streams["a"]
    with pytest.raises(ValueError):
        access.require_stream_role(a["admin"], a["stream"]["id"], "owner")
