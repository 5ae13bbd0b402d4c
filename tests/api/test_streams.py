"""Streams and members (reference/000 Stream Management): roles, last admin, cross-stream."""
from __future__ import annotations

import uuid

import pytest

from tests.helpers import call

H = {"Content-Type": "application/json"}
MISSING = str(uuid.uuid4())



def add_member(stream_id, who, role):
    from chalicelib import db
    db.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, %s)",
               (stream_id, who["user"]["id"], role))


def role_of(stream_id, who):
    from chalicelib import access
    return access.stream_role(who["user"]["id"], stream_id)


@pytest.fixture()
def crew(client, sign_in):
    """A stream with an admin, a creator and a viewer, plus an outsider."""
    admin, creator, viewer, outsider = sign_in(name="Admin"), sign_in(), sign_in(), sign_in()
    status, stream = call(client, "POST", "/streams", admin, {"name": "Crew", "description": "d"})
    assert status == 201
    add_member(stream["id"], creator, "creator")
    add_member(stream["id"], viewer, "viewer")
    return {"stream": stream, "sid": stream["id"], "admin": admin, "creator": creator,
            "viewer": viewer, "outsider": outsider}


# ---------------------------------------------------------------- streams

def test_create_stream_makes_the_caller_its_admin(client, sign_in):
    me = sign_in()
    status, body = call(client, "POST", "/streams", me, {"name": "  Ranked nights ",
                                                         "description": "clips"})
    assert status == 201
    assert set(body) == {"id", "name", "description", "owner_id", "created_at"}
    assert body["name"] == "Ranked nights" and body["description"] == "clips"
    assert body["owner_id"] == me["user"]["id"] and body["created_at"].endswith("Z")
    assert role_of(body["id"], me) == "admin"
    status, listing = call(client, "GET", "/streams", me)
    assert status == 200
    assert listing["streams"] == [{"id": body["id"], "name": "Ranked nights", "description": "clips",
                                   "role": "admin", "member_count": 1, "video_count": 0,
                                   "created_at": body["created_at"]}]
    assert (listing["page"], listing["limit"], listing["total"]) == (1, 20, 1)


def test_description_is_optional(client, sign_in):
    status, body = call(client, "POST", "/streams", sign_in(), {"name": "n"})
    assert status == 201 and body["description"] == ""


@pytest.mark.parametrize("payload,detail", [
    ({}, "name is required"),
    ({"name": ""}, "name is required"),
    ({"name": "   "}, "name is required"),
    ({"name": None}, "name is required"),
    ({"name": 5}, "name must be a string"),
    ({"name": ["a"]}, "name must be a string"),
    ({"name": "x" * 101}, "name must be at most 100 characters"),
    ({"name": "ok", "description": "x" * 2001}, "description must be at most 2000 characters"),
    ({"name": "ok", "description": 7}, "description must be a string"),
    ({"name": "ok", "settings": []}, "settings must be an object"),
])
def test_invalid_stream_data_is_400_with_details(client, sign_in, payload, detail):
    status, body = call(client, "POST", "/streams", sign_in(), payload)
    assert status == 400
    assert body == {"error": "Invalid stream data", "details": [detail]}


def test_limits_are_inclusive(client, sign_in):
    status, _ = call(client, "POST", "/streams", sign_in(),
                     {"name": "x" * 100, "description": "y" * 2000})
    assert status == 201


@pytest.mark.parametrize("raw", ["{not json", "[]", '"name"', ""])
def test_malformed_json_is_400(client, sign_in, raw):
    me = sign_in()
    status, body = call(client, "POST", "/streams", me, raw)
    assert status == 400 and body["error"] == "Invalid request body" and body["details"]


@pytest.mark.parametrize("method,path", [
    ("GET", "/streams"), ("POST", "/streams"),
    ("GET", "/streams/{sid}"), ("PUT", "/streams/{sid}"), ("DELETE", "/streams/{sid}"),
    ("GET", "/streams/{sid}/members"), ("PUT", "/streams/{sid}/members/{uid}"),
    ("DELETE", "/streams/{sid}/members/{uid}"),
    ("GET", "/streams/{sid}/invites"), ("POST", "/streams/{sid}/invites"),
    ("GET", "/streams/{sid}/invites/abc"), ("PUT", "/streams/{sid}/invites/abc"),
    ("DELETE", "/streams/{sid}/invites/abc"), ("POST", "/invites/abc/join"),
])
def test_every_signed_in_route_is_401_without_a_token(client, crew, method, path):
    path = path.format(sid=crew["sid"], uid=crew["viewer"]["user"]["id"])
    status, body = call(client, method, path, None, {"name": "x", "role": "viewer"})
    assert (status, body) == (401, {"error": "Authentication required"})


def test_get_stream_details(client, crew):
    status, body = call(client, "GET", f"/streams/{crew['sid']}", crew["viewer"])
    assert status == 200
    assert {"id", "name", "description", "owner", "settings", "user_role",
            "member_count"} <= set(body)
    assert body["owner"] == {"id": crew["admin"]["user"]["id"], "name": "Admin",
                             "email": crew["admin"]["user"]["email"],
                             "avatar": crew["admin"]["user"]["avatar"]}
    assert body["user_role"] == "viewer" and body["member_count"] == 3 and body["settings"] == {}


def test_get_stream_403_for_non_members_404_for_unknown(client, crew):
    assert call(client, "GET", f"/streams/{crew['sid']}", crew["outsider"]) == \
        (403, {"error": "Access denied"})
    for bad in (MISSING, "not-a-uuid", "1"):
        assert call(client, "GET", f"/streams/{bad}", crew["admin"]) == \
            (404, {"error": "Stream not found"})


def test_admin_updates_the_stream(client, crew):
    status, body = call(client, "PUT", f"/streams/{crew['sid']}", crew["admin"],
                        {"name": "Renamed", "settings": {"public_clips": False}})
    assert status == 200
    assert body["name"] == "Renamed" and body["description"] == "d"
    assert body["settings"] == {"public_clips": False} and body["user_role"] == "admin"
    status, body = call(client, "PUT", f"/streams/{crew['sid']}", crew["admin"], {"description": None})
    assert status == 200 and body["description"] == "" and body["name"] == "Renamed"


@pytest.mark.parametrize("payload,detail", [
    ({}, "at least one of name, description, settings is required"),
    ({"name": ""}, "name is required"),
    ({"name": "x" * 101}, "name must be at most 100 characters"),
    ({"settings": "dark"}, "settings must be an object"),
])
def test_update_validation(client, crew, payload, detail):
    status, body = call(client, "PUT", f"/streams/{crew['sid']}", crew["admin"], payload)
    assert (status, body) == (400, {"error": "Invalid stream data", "details": [detail]})


def test_only_admins_update_or_delete(client, crew):
    sid = crew["sid"]
    for who in ("creator", "viewer"):
        assert call(client, "PUT", f"/streams/{sid}", crew[who], {"name": "mine"}) == \
            (403, {"error": "Admin access required"})
        assert call(client, "DELETE", f"/streams/{sid}", crew[who]) == \
            (403, {"error": "Admin access required"})
    assert call(client, "PUT", f"/streams/{sid}", crew["outsider"], {"name": "mine"}) == \
        (403, {"error": "Access denied"})
    assert call(client, "DELETE", f"/streams/{sid}", crew["outsider"]) == \
        (403, {"error": "Access denied"})
    assert call(client, "PUT", f"/streams/{MISSING}", crew["admin"], {"name": "x"})[0] == 404
    assert call(client, "DELETE", f"/streams/{MISSING}", crew["admin"])[0] == 404


def test_delete_stream_removes_members_invites_and_videos(client, crew, make_video):
    from chalicelib import db

    sid = crew["sid"]
    assert call(client, "POST", f"/streams/{sid}/invites", crew["admin"], {"role": "viewer"})[0] == 201
    make_video({"id": sid}, crew["creator"]["user"])
    resp = client.http.delete(f"/streams/{sid}", headers=crew["admin"]["headers"])
    assert resp.status_code == 204 and not resp.body
    assert call(client, "GET", f"/streams/{sid}", crew["admin"]) == (404, {"error": "Stream not found"})
    for table in ("stream_members", "invites", "videos"):
        assert db.fetch_one(f"SELECT count(*) AS n FROM {table} WHERE stream_id = %s", (sid,))["n"] == 0


def test_list_streams_only_shows_my_streams_with_counts(client, crew, make_video):
    make_video({"id": crew["sid"]}, crew["creator"]["user"])
    status, body = call(client, "GET", "/streams", crew["creator"])
    assert status == 200 and body["total"] == 1
    assert body["streams"][0]["role"] == "creator"
    assert body["streams"][0]["member_count"] == 3 and body["streams"][0]["video_count"] == 1
    assert call(client, "GET", "/streams", crew["outsider"])[1]["streams"] == []


def test_list_streams_pagination(client, sign_in):
    me = sign_in()
    ids = [call(client, "POST", "/streams", me, {"name": f"s{i}"})[1]["id"] for i in range(3)]
    _, first = call(client, "GET", "/streams?limit=2", me)
    _, second = call(client, "GET", "/streams?limit=2&page=2", me)
    assert (first["total"], len(first["streams"]), len(second["streams"])) == (3, 2, 1)
    assert {s["id"] for s in first["streams"] + second["streams"]} == set(ids)
    assert first["streams"][0]["id"] == ids[-1]  # newest first
    _, most = call(client, "GET", "/streams?limit=100", me)
    assert most["limit"] == 100 and len(most["streams"]) == 3
    status, over = call(client, "GET", "/streams?limit=1000", me)     # refused, not silently capped
    assert status == 400 and over["details"] == ["limit must be at most 100"]
    _, beyond = call(client, "GET", "/streams?page=9", me)
    assert beyond["streams"] == [] and beyond["total"] == 3


@pytest.mark.parametrize("query", ["page=0", "page=abc", "limit=0", "limit=-5", "limit=x", "limit=101",
                                   "page=100001"])
def test_bad_paging_is_400(client, crew, query):
    for path in ("/streams", f"/streams/{crew['sid']}/members", f"/streams/{crew['sid']}/invites"):
        status, body = call(client, "GET", f"{path}?{query}", crew["admin"])
        assert status == 400 and body["error"] == "Invalid pagination" and body["details"]


# ---------------------------------------------------------------- members

def test_members_list(client, crew):
    status, body = call(client, "GET", f"/streams/{crew['sid']}/members", crew["viewer"])
    assert status == 200 and body["total"] == 3
    assert [m["role"] for m in body["members"]] == ["admin", "creator", "viewer"]
    first = body["members"][0]
    assert set(first) == {"user_id", "name", "email", "avatar", "role", "joined_at"}
    assert first["user_id"] == crew["admin"]["user"]["id"] and first["joined_at"].endswith("Z")
    _, page2 = call(client, "GET", f"/streams/{crew['sid']}/members?limit=2&page=2", crew["viewer"])
    assert [m["role"] for m in page2["members"]] == ["viewer"] and page2["limit"] == 2
    status, over = call(client, "GET", f"/streams/{crew['sid']}/members?limit=500", crew["viewer"])
    assert status == 400 and over["details"] == ["limit must be at most 100"]


def test_members_list_access(client, crew):
    assert call(client, "GET", f"/streams/{crew['sid']}/members", crew["outsider"]) == \
        (403, {"error": "Access denied"})
    assert call(client, "GET", f"/streams/{MISSING}/members", crew["admin"]) == \
        (404, {"error": "Stream not found"})


def test_admin_changes_roles(client, crew):
    sid, vid = crew["sid"], crew["viewer"]["user"]["id"]
    status, body = call(client, "PUT", f"/streams/{sid}/members/{vid}", crew["admin"], {"role": "creator"})
    assert status == 200
    assert body["user_id"] == vid and body["role"] == "creator"
    assert set(body) == {"user_id", "name", "email", "avatar", "role", "joined_at"}
    status, body = call(client, "PUT", f"/streams/{sid}/members/{vid}", crew["admin"], {"role": "admin"})
    assert status == 200 and role_of(sid, crew["viewer"]) == "admin"


@pytest.mark.parametrize("who,target,role", [
    ("creator", "viewer", "admin"), ("creator", "creator", "admin"), ("creator", "viewer", "creator"),
    ("viewer", "viewer", "admin"), ("viewer", "viewer", "creator"), ("viewer", "admin", "viewer"),
])
def test_role_escalation_is_refused(client, crew, who, target, role):
    sid, uid = crew["sid"], crew[target]["user"]["id"]
    before = role_of(sid, crew[target])
    assert call(client, "PUT", f"/streams/{sid}/members/{uid}", crew[who], {"role": role}) == \
        (403, {"error": "Admin access required"})
    assert role_of(sid, crew[target]) == before


def test_outsiders_cannot_grant_themselves_a_role(client, crew):
    sid, uid = crew["sid"], crew["outsider"]["user"]["id"]
    assert call(client, "PUT", f"/streams/{sid}/members/{uid}", crew["outsider"], {"role": "admin"}) == \
        (403, {"error": "Access denied"})
    assert role_of(sid, crew["outsider"]) is None


@pytest.mark.parametrize("payload", [{}, {"role": "owner"}, {"role": "ADMIN"}, {"role": 3},
                                     {"role": None}])
def test_invalid_role_is_400(client, crew, payload):
    uid = crew["viewer"]["user"]["id"]
    status, body = call(client, "PUT", f"/streams/{crew['sid']}/members/{uid}", crew["admin"], payload)
    assert (status, body) == (400, {"error": "Invalid member data",
                                    "details": ["role must be admin, creator or viewer"]})


def test_unknown_member_is_404(client, crew):
    sid = crew["sid"]
    for uid in (crew["outsider"]["user"]["id"], MISSING, "nope"):
        assert call(client, "PUT", f"/streams/{sid}/members/{uid}", crew["admin"], {"role": "viewer"}) == \
            (404, {"error": "Member not found"})
        assert call(client, "DELETE", f"/streams/{sid}/members/{uid}", crew["admin"]) == \
            (404, {"error": "Member not found"})


def test_last_admin_cannot_be_demoted_or_removed(client, crew):
    sid, aid = crew["sid"], crew["admin"]["user"]["id"]
    last = (409, {"error": "A stream must keep at least one admin"})
    assert call(client, "PUT", f"/streams/{sid}/members/{aid}", crew["admin"], {"role": "viewer"}) == last
    assert call(client, "DELETE", f"/streams/{sid}/members/{aid}", crew["admin"]) == last
    assert role_of(sid, crew["admin"]) == "admin"
    # Re-asserting admin on the last admin is not a demotion.
    assert call(client, "PUT", f"/streams/{sid}/members/{aid}", crew["admin"], {"role": "admin"})[0] == 200
    # With a second admin, the first may step down; then the second is the last.
    cid = crew["creator"]["user"]["id"]
    assert call(client, "PUT", f"/streams/{sid}/members/{cid}", crew["admin"], {"role": "admin"})[0] == 200
    assert call(client, "PUT", f"/streams/{sid}/members/{aid}", crew["admin"], {"role": "viewer"})[0] == 200
    assert call(client, "PUT", f"/streams/{sid}/members/{cid}", crew["creator"], {"role": "creator"}) == last
    # The demoted owner is now an ordinary viewer.
    assert call(client, "PUT", f"/streams/{sid}", crew["admin"], {"name": "x"}) == \
        (403, {"error": "Admin access required"})


def test_remove_members(client, crew):
    sid = crew["sid"]
    vid, cid = crew["viewer"]["user"]["id"], crew["creator"]["user"]["id"]
    # A member may not remove someone else unless admin ...
    assert call(client, "DELETE", f"/streams/{sid}/members/{cid}", crew["viewer"]) == \
        (403, {"error": "Admin access required"})
    assert call(client, "DELETE", f"/streams/{sid}/members/{vid}", crew["outsider"]) == \
        (403, {"error": "Access denied"})
    # ... but may leave.
    resp = client.http.delete(f"/streams/{sid}/members/{vid}", headers=crew["viewer"]["headers"])
    assert resp.status_code == 204 and not resp.body
    assert role_of(sid, crew["viewer"]) is None
    assert call(client, "GET", f"/streams/{sid}", crew["viewer"])[0] == 403
    # An admin removes anyone.
    assert call(client, "DELETE", f"/streams/{sid}/members/{cid}", crew["admin"]) == (204, None)
    assert call(client, "DELETE", f"/streams/{MISSING}/members/{cid}", crew["admin"]) == \
        (404, {"error": "Stream not found"})


def test_cross_stream_ids_do_not_leak(client, crew, sign_in):
    """A member (even admin) of stream A gets nothing of stream B through B's ids."""
    other_admin, other_viewer = sign_in(), sign_in()
    _, other = call(client, "POST", "/streams", other_admin, {"name": "B"})
    bid, bv = other["id"], other_viewer["user"]["id"]
    add_member(bid, other_viewer, "viewer")
    _, b_invite = call(client, "POST", f"/streams/{bid}/invites", other_admin, {"role": "viewer"})
    a = crew["admin"]
    denied = (403, {"error": "Access denied"})
    assert call(client, "GET", f"/streams/{bid}", a) == denied
    assert call(client, "PUT", f"/streams/{bid}", a, {"name": "pwned"}) == denied
    assert call(client, "DELETE", f"/streams/{bid}", a) == denied
    assert call(client, "GET", f"/streams/{bid}/members", a) == denied
    assert call(client, "PUT", f"/streams/{bid}/members/{bv}", a, {"role": "admin"}) == denied
    assert call(client, "DELETE", f"/streams/{bid}/members/{bv}", a) == denied
    assert call(client, "GET", f"/streams/{bid}/invites", a) == denied
    assert call(client, "POST", f"/streams/{bid}/invites", a, {"role": "viewer"}) == denied
    assert call(client, "GET", f"/streams/{bid}/invites/{b_invite['code']}", a) == denied
    # B's member and invite used through A's path: A's admin sees no such member or invite.
    assert call(client, "PUT", f"/streams/{crew['sid']}/members/{bv}", a, {"role": "admin"}) == \
        (404, {"error": "Member not found"})
    assert call(client, "DELETE", f"/streams/{crew['sid']}/members/{bv}", a) == \
        (404, {"error": "Member not found"})
    assert call(client, "GET", f"/streams/{crew['sid']}/invites/{b_invite['code']}", a) == \
        (404, {"error": "Invite not found"})
    assert call(client, "DELETE", f"/streams/{crew['sid']}/invites/{b_invite['code']}", a) == \
        (404, {"error": "Invite not found"})
    assert role_of(bid, other_viewer) == "viewer"
    _, still = call(client, "GET", f"/streams/{bid}", other_admin)
    assert still["name"] == "B"


def test_platform_admins_do_not_bypass_membership(client, crew, sign_in):
    from chalicelib.auth.users import is_platform_admin
    from chalicelib.config import get_settings

    email = sorted(get_settings().admin_emails)[0]
    root = sign_in(email=email)
    assert is_platform_admin(root["user"])
    assert call(client, "GET", f"/streams/{crew['sid']}", root) == (403, {"error": "Access denied"})
