"""Invite links (reference/000 Stream Management): admin management, join, the join race."""
from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.test_streams import MISSING, add_member, call, role_of

ADMIN_ONLY = (403, {"error": "Admin access required"})


@pytest.fixture()
def crew(client, sign_in):
    """A stream with an admin, a creator and a viewer, plus an outsider."""
    admin, creator, viewer, outsider = sign_in(), sign_in(), sign_in(), sign_in()
    _, stream = call(client, "POST", "/streams", admin, {"name": "Crew", "description": "d"})
    add_member(stream["id"], creator, "creator")
    add_member(stream["id"], viewer, "viewer")
    return {"sid": stream["id"], "admin": admin, "creator": creator, "viewer": viewer,
            "outsider": outsider}


def invite(client, crew, **body):
    status, created = call(client, "POST", f"/streams/{crew['sid']}/invites", crew["admin"],
                           {"role": "viewer", **body})
    assert status == 201, created
    return created


def set_invite(code, sql):
    from chalicelib import db
    db.execute(f"UPDATE invites SET {sql} WHERE code = %s", (code,))


def use_count(code):
    from chalicelib import db
    return db.fetch_one("SELECT use_count FROM invites WHERE code = %s", (code,))["use_count"]


def parse(ts):
    return dt.datetime.fromisoformat(ts)


# ---------------------------------------------------------------- create

def test_create_invite(client, crew):
    before = dt.datetime.now(dt.timezone.utc)
    created = invite(client, crew, role="creator", expires_in_hours=2, usage_limit=5)
    assert {"code", "role", "expires_at", "usage_limit", "created_at"} <= set(created)
    assert created["role"] == "creator" and created["usage_limit"] == 5
    assert len(created["code"]) >= 10 and created["expires_at"].endswith("Z")
    expires = parse(created["expires_at"])
    assert before + dt.timedelta(hours=2) <= expires <= before + dt.timedelta(hours=2, minutes=1)


def test_invite_defaults_and_explicit_expiry(client, crew):
    now = dt.datetime.now(dt.timezone.utc)
    default = invite(client, crew)
    assert default["usage_limit"] is None
    assert abs(parse(default["expires_at"]) - (now + dt.timedelta(days=7))) < dt.timedelta(minutes=1)
    at = (now + dt.timedelta(days=2)).replace(microsecond=0)
    explicit = invite(client, crew, expires_at=at.isoformat().replace("+00:00", "Z"))
    assert parse(explicit["expires_at"]) == at
    assert invite(client, crew, expires_at=None)["expires_at"] is None


def test_codes_are_unguessable(client, crew):
    codes = {invite(client, crew)["code"] for _ in range(25)}
    assert len(codes) == 25
    assert all(len(c) >= 10 and c.replace("-", "").replace("_", "").isalnum() for c in codes)


@pytest.mark.parametrize("payload,detail", [
    ({"role": "admin"}, "role must be creator or viewer"),
    ({"role": "owner"}, "role must be creator or viewer"),
    ({}, "role must be creator or viewer"),
    ({"role": None}, "role must be creator or viewer"),
    ({"role": "viewer", "expires_in_hours": 0},
     "expires_in_hours must be a number above 0 and at most 87600"),
    ({"role": "viewer", "expires_in_hours": -1},
     "expires_in_hours must be a number above 0 and at most 87600"),
    ({"role": "viewer", "expires_in_hours": "24"},
     "expires_in_hours must be a number above 0 and at most 87600"),
    ({"role": "viewer", "expires_in_hours": True},
     "expires_in_hours must be a number above 0 and at most 87600"),
    ({"role": "viewer", "expires_in_hours": 10 ** 9},
     "expires_in_hours must be a number above 0 and at most 87600"),
    ({"role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at must be in the future"),
    ({"role": "viewer", "expires_at": "tomorrow"}, "expires_at must be an ISO 8601 date-time"),
    ({"role": "viewer", "expires_at": 1700000000}, "expires_at must be an ISO 8601 date-time"),
    ({"role": "viewer", "expires_at": None, "expires_in_hours": 1},
     "give expires_in_hours or expires_at, not both"),
    ({"role": "viewer", "usage_limit": 0}, "usage_limit must be an integer from 1 to 1000000, or null"),
    ({"role": "viewer", "usage_limit": -3}, "usage_limit must be an integer from 1 to 1000000, or null"),
    ({"role": "viewer", "usage_limit": "3"}, "usage_limit must be an integer from 1 to 1000000, or null"),
    ({"role": "viewer", "usage_limit": 1.5}, "usage_limit must be an integer from 1 to 1000000, or null"),
    ({"role": "viewer", "usage_limit": True}, "usage_limit must be an integer from 1 to 1000000, or null"),
])
def test_invalid_invite_parameters(client, crew, payload, detail):
    status, body = call(client, "POST", f"/streams/{crew['sid']}/invites", crew["admin"], payload)
    assert (status, body) == (400, {"error": "Invalid invite parameters", "details": [detail]})


def test_admin_can_never_be_granted_through_an_invite(client, crew):
    from chalicelib import db
    status, _ = call(client, "POST", f"/streams/{crew['sid']}/invites", crew["admin"], {"role": "admin"})
    assert status == 400
    code = invite(client, crew)["code"]
    status, _ = call(client, "PUT", f"/streams/{crew['sid']}/invites/{code}", crew["admin"],
                     {"role": "admin"})
    assert status == 400
    assert db.fetch_one("SELECT count(*) AS n FROM invites WHERE role = 'admin'")["n"] == 0


def test_only_admins_manage_invites(client, crew):
    sid, code = crew["sid"], invite(client, crew)["code"]
    for who in ("creator", "viewer"):
        assert call(client, "POST", f"/streams/{sid}/invites", crew[who], {"role": "viewer"}) == ADMIN_ONLY
        assert call(client, "GET", f"/streams/{sid}/invites", crew[who]) == ADMIN_ONLY
        assert call(client, "GET", f"/streams/{sid}/invites/{code}", crew[who]) == ADMIN_ONLY
        assert call(client, "PUT", f"/streams/{sid}/invites/{code}", crew[who], {"usage_limit": 9}) == \
            ADMIN_ONLY
        assert call(client, "DELETE", f"/streams/{sid}/invites/{code}", crew[who]) == ADMIN_ONLY
    assert call(client, "POST", f"/streams/{sid}/invites", crew["outsider"], {"role": "viewer"}) == \
        (403, {"error": "Access denied"})
    assert call(client, "POST", f"/streams/{MISSING}/invites", crew["admin"], {"role": "viewer"}) == \
        (404, {"error": "Stream not found"})
    assert call(client, "GET", f"/streams/{sid}/invites/{code}", crew["admin"])[0] == 200


# ---------------------------------------------------------------- list, get, update, revoke

def test_list_shows_only_active_invites(client, crew):
    active = invite(client, crew)["code"]
    expired = invite(client, crew)["code"]
    used_up = invite(client, crew, usage_limit=1)["code"]
    revoked = invite(client, crew)["code"]
    set_invite(expired, "expires_at = now() - interval '1 minute'")
    set_invite(used_up, "use_count = 1")
    assert call(client, "DELETE", f"/streams/{crew['sid']}/invites/{revoked}", crew["admin"]) == (204, None)
    status, body = call(client, "GET", f"/streams/{crew['sid']}/invites", crew["admin"])
    assert status == 200
    assert [i["code"] for i in body["invites"]] == [active]
    assert body["total"] == 1 and body["invites"][0]["valid"] is True


def test_list_pagination(client, crew):
    codes = [invite(client, crew)["code"] for _ in range(3)]
    _, first = call(client, "GET", f"/streams/{crew['sid']}/invites?limit=2", crew["admin"])
    _, second = call(client, "GET", f"/streams/{crew['sid']}/invites?limit=2&page=2", crew["admin"])
    assert first["total"] == 3 and len(first["invites"]) == 2 and len(second["invites"]) == 1
    assert {i["code"] for i in first["invites"] + second["invites"]} == set(codes)
    status, over = call(client, "GET", f"/streams/{crew['sid']}/invites?limit=101", crew["admin"])
    assert status == 400 and over["details"] == ["limit must be at most 100"]


def test_get_invite_shows_its_state(client, crew):
    code = invite(client, crew, usage_limit=2)["code"]
    status, body = call(client, "GET", f"/streams/{crew['sid']}/invites/{code}", crew["admin"])
    assert status == 200
    assert body["code"] == code and body["use_count"] == 0 and body["valid"] is True
    set_invite(code, "expires_at = now() - interval '1 second'")
    _, body = call(client, "GET", f"/streams/{crew['sid']}/invites/{code}", crew["admin"])
    assert (body["valid"], body["reason"]) == (False, "expired")
    assert call(client, "GET", f"/streams/{crew['sid']}/invites/nope", crew["admin"]) == \
        (404, {"error": "Invite not found"})


def test_update_invite(client, crew):
    code = invite(client, crew)["code"]
    path = f"/streams/{crew['sid']}/invites/{code}"
    status, body = call(client, "PUT", path, crew["admin"],
                        {"role": "creator", "usage_limit": 4, "expires_in_hours": 1})
    assert status == 200
    assert (body["role"], body["usage_limit"]) == ("creator", 4)
    assert parse(body["expires_at"]) < dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1, minutes=1)
    status, body = call(client, "PUT", path, crew["admin"], {"usage_limit": None, "expires_at": None})
    assert status == 200 and body["usage_limit"] is None and body["expires_at"] is None
    assert body["role"] == "creator"


def test_update_invite_errors(client, crew):
    code = invite(client, crew, usage_limit=5)["code"]
    set_invite(code, "use_count = 3")
    path = f"/streams/{crew['sid']}/invites/{code}"
    assert call(client, "PUT", path, crew["admin"], {"usage_limit": 2}) == \
        (400, {"error": "Invalid invite parameters",
               "details": ["usage_limit cannot be below the current use count (3)"]})
    assert call(client, "PUT", path, crew["admin"], {"usage_limit": 3})[0] == 200
    status, body = call(client, "PUT", path, crew["admin"], {})
    assert status == 400 and body["error"] == "Invalid invite parameters"
    assert call(client, "PUT", path, crew["admin"], "{oops")[0] == 400
    assert call(client, "PUT", f"/streams/{crew['sid']}/invites/nope", crew["admin"],
                {"usage_limit": 3}) == (404, {"error": "Invite not found"})


def test_revoked_invites_are_gone(client, crew, sign_in):
    code = invite(client, crew)["code"]
    path = f"/streams/{crew['sid']}/invites/{code}"
    resp = client.http.delete(path, headers=crew["admin"]["headers"])
    assert resp.status_code == 204 and not resp.body
    gone = (404, {"error": "Invalid invite code"})
    assert call(client, "POST", f"/invites/{code}/join", sign_in()) == gone
    assert call(client, "GET", f"/invites/{code}") == gone
    assert call(client, "GET", path, crew["admin"]) == (404, {"error": "Invite not found"})
    assert call(client, "PUT", path, crew["admin"], {"usage_limit": 3}) == (404, {"error": "Invite not found"})
    assert call(client, "DELETE", path, crew["admin"]) == (404, {"error": "Invite not found"})


# ---------------------------------------------------------------- public and join

def test_public_invite_needs_no_sign_in(client, crew):
    code = invite(client, crew, role="creator", usage_limit=2)["code"]
    status, body = call(client, "GET", f"/invites/{code}")
    assert status == 200
    assert body == {"code": code, "role": "creator", "expires_at": body["expires_at"],
                    "stream": {"id": crew["sid"], "name": "Crew", "description": "d",
                               "member_count": 3},
                    "valid": True}
    set_invite(code, "use_count = 2")
    _, body = call(client, "GET", f"/invites/{code}")
    assert (body["valid"], body["reason"]) == (False, "usage_limit_exceeded")
    set_invite(code, "expires_at = now() - interval '1 minute'")
    _, body = call(client, "GET", f"/invites/{code}")
    assert (body["valid"], body["reason"]) == (False, "expired")
    assert call(client, "GET", "/invites/does-not-exist") == (404, {"error": "Invalid invite code"})
    assert call(client, "GET", "/invites/" + "x" * 300) == (404, {"error": "Invalid invite code"})


def test_join(client, crew, sign_in):
    code = invite(client, crew, role="creator", usage_limit=2)["code"]
    newcomer = sign_in()
    status, body = call(client, "POST", f"/invites/{code}/join", newcomer)
    assert status == 200
    assert set(body) == {"stream_id", "role", "joined_at"}
    assert (body["stream_id"], body["role"]) == (crew["sid"], "creator")
    assert role_of(crew["sid"], newcomer) == "creator" and use_count(code) == 1
    _, details = call(client, "GET", f"/streams/{crew['sid']}", newcomer)
    assert details["user_role"] == "creator"


def test_join_as_a_member_is_409_and_consumes_nothing(client, crew):
    code = invite(client, crew, usage_limit=1)["code"]
    for who in ("admin", "creator", "viewer"):
        assert call(client, "POST", f"/invites/{code}/join", crew[who]) == \
            (409, {"error": "Already a member of this stream"})
    assert use_count(code) == 0
    # The admin keeps admin: joining can never change an existing role.
    assert role_of(crew["sid"], crew["admin"]) == "admin"


def test_join_refusals(client, crew, sign_in):
    someone = sign_in()
    assert call(client, "POST", "/invites/unknown-code/join", someone) == \
        (404, {"error": "Invalid invite code"})
    expired = invite(client, crew)["code"]
    set_invite(expired, "expires_at = now() - interval '1 minute'")
    assert call(client, "POST", f"/invites/{expired}/join", someone) == (400, {"error": "Invite expired"})
    used_up = invite(client, crew, usage_limit=1)["code"]
    assert call(client, "POST", f"/invites/{used_up}/join", sign_in())[0] == 200
    assert call(client, "POST", f"/invites/{used_up}/join", someone) == \
        (400, {"error": "Usage limit exceeded"})
    assert use_count(used_up) == 1
    assert role_of(crew["sid"], someone) is None


def test_invite_of_one_stream_only_joins_that_stream(client, crew, sign_in):
    other_admin = sign_in()
    _, other = call(client, "POST", "/streams", other_admin, {"name": "B"})
    _, b_invite = call(client, "POST", f"/streams/{other['id']}/invites", other_admin, {"role": "viewer"})
    status, body = call(client, "POST", f"/invites/{b_invite['code']}/join", crew["viewer"])
    assert status == 200 and body["stream_id"] == other["id"]
    assert role_of(crew["sid"], crew["viewer"]) == "viewer"  # unchanged in A


def test_concurrent_joins_never_exceed_the_usage_limit(client, crew, sign_in, live_api):
    """12 users race for an invite with usage_limit=3 over real HTTP: exactly 3 get in."""
    import requests

    code = invite(client, crew, usage_limit=3)["code"]
    users = [sign_in() for _ in range(12)]

    def join(who):
        resp = requests.post(f"{live_api}/invites/{code}/join", headers=who["headers"], timeout=60)
        return resp.status_code, resp.json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(join, users))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 3 + [400] * 9, results
    assert all(body == {"error": "Usage limit exceeded"} for status, body in results if status == 400)
    assert use_count(code) == 3
    joined = [who for who, (status, _) in zip(users, results) if status == 200]
    assert all(role_of(crew["sid"], who) == "viewer" for who in joined)
    from chalicelib import db
    assert db.fetch_one("SELECT count(*) AS n FROM stream_members WHERE stream_id = %s",
                        (crew["sid"],))["n"] == 3 + 3


def test_same_user_joining_twice_concurrently_counts_once(client, crew, sign_in, live_api):
    """Parallel joins by one user: one 200, the rest 409, and only one use consumed."""
    import requests

    code = invite(client, crew, usage_limit=5)["code"]
    me = sign_in()

    def join(_):
        return requests.post(f"{live_api}/invites/{code}/join", headers=me["headers"],
                             timeout=60).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(join, range(6)))
    assert statuses == [200] + [409] * 5
    assert use_count(code) == 1
