"""Likes and share links (reference/000 Social Features; GET /share/{code})."""
from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import pytest
import requests

from tests.api.test_videos import BUCKET, add_member, call


@pytest.fixture()
def crew(client, sign_in, make_video):
    """A stream with an admin who uploaded a video, a viewer and an outsider."""
    admin, viewer, outsider = sign_in(), sign_in(), sign_in()
    status, stream = call(client, "POST", "/streams", admin, {"name": "Social"})
    assert status == 201
    add_member(stream["id"], viewer, "viewer")
    video = make_video(stream, {"id": admin["user"]["id"]}, title="clutch")
    return {"sid": stream["id"], "admin": admin, "viewer": viewer, "outsider": outsider,
            "vid": str(video["id"])}


def complete(vid, bitrates="{480,720}"):
    from chalicelib import db
    db.execute("UPDATE videos SET processing_index = 0, status = 'complete', duration_s = 31.5,"
               " bitrates = %s, description = 'nice' WHERE id = %s", (bitrates, vid))


# ---------------------------------------------------------------- likes

def test_like_toggles_and_counts(client, crew):
    path = f"/videos/{crew['vid']}"
    assert call(client, "GET", f"{path}/likes", crew["viewer"]) == (200, {"total_likes": 0, "liked": False})
    assert call(client, "POST", f"{path}/like", crew["viewer"]) == (200, {"liked": True, "total_likes": 1})
    assert call(client, "POST", f"{path}/like", crew["admin"]) == (200, {"liked": True, "total_likes": 2})
    assert call(client, "GET", f"{path}/likes", crew["viewer"]) == (200, {"total_likes": 2, "liked": True})
    assert call(client, "POST", f"{path}/like", crew["viewer"]) == (200, {"liked": False, "total_likes": 1})
    assert call(client, "GET", f"{path}/likes", crew["viewer"]) == (200, {"total_likes": 1, "liked": False})
    assert call(client, "GET", path, crew["admin"])[1]["total_likes"] == 1


def test_like_errors(client, crew):
    for method, suffix in (("POST", "like"), ("GET", "likes")):
        assert call(client, method, f"/videos/{crew['vid']}/{suffix}", crew["outsider"]) == \
            (403, {"error": "Access denied"})
        assert call(client, method, f"/videos/{uuid.uuid4()}/{suffix}", crew["viewer"]) == \
            (404, {"error": "Video not found"})
        assert call(client, method, f"/videos/x/{suffix}", crew["viewer"]) == (404, {"error": "Video not found"})
        assert call(client, method, f"/videos/{crew['vid']}/{suffix}")[0] == 401


def test_a_double_click_from_many_tabs_never_counts_twice(live_api, crew):
    """Concurrent toggles over HTTP (chalice local): one row per user, counts never above 1."""
    url = f"{live_api}/videos/{crew['vid']}/like"
    headers = crew["viewer"]["headers"]
    barrier = threading.Barrier(8)

    def click(_):
        barrier.wait()
        return requests.post(url, headers=headers, timeout=30)

    for _ in range(3):
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(click, range(8)))
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        assert all(r.json()["total_likes"] in (0, 1) for r in responses)
        state = requests.get(f"{url}s", headers=headers, timeout=30).json()
        assert state["total_likes"] == (1 if state["liked"] else 0)
        from chalicelib import db
        assert db.fetch_one("SELECT count(*) AS n FROM likes WHERE video_id = %s",
                            (crew["vid"],))["n"] == state["total_likes"]


def test_concurrent_likes_of_different_users_all_count(live_api, crew, sign_in):
    fans = [sign_in() for _ in range(6)]
    for fan in fans:
        add_member(crew["sid"], fan, "viewer")
    barrier = threading.Barrier(len(fans))

    def like(fan):
        barrier.wait()
        return requests.post(f"{live_api}/videos/{crew['vid']}/like", headers=fan["headers"], timeout=30)

    with ThreadPoolExecutor(len(fans)) as pool:
        responses = list(pool.map(like, fans))
    assert all(r.status_code == 200 and r.json()["liked"] for r in responses)
    assert max(r.json()["total_likes"] for r in responses) == len(fans)
    assert requests.get(f"{live_api}/videos/{crew['vid']}/likes", headers=fans[0]["headers"],
                        timeout=30).json() == {"total_likes": len(fans), "liked": True}


# ---------------------------------------------------------------- shares

def test_share_link_defaults_to_seven_days(client, crew, stack):
    status, body = call(client, "POST", f"/videos/{crew['vid']}/share", crew["viewer"])
    assert status == 201
    assert body["share_url"] == f"{stack.env['PUBLIC_BASE_URL']}/share/{body['code']}"
    assert len(body["code"]) >= 22                                   # 128 random bits
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    left = expires - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=7) - dt.timedelta(minutes=1) < left <= dt.timedelta(days=7)
    status, other = call(client, "POST", f"/videos/{crew['vid']}/share", crew["admin"], {"expires_in_hours": 2})
    assert status == 201 and other["code"] != body["code"]
    expires = dt.datetime.fromisoformat(other["expires_at"].replace("Z", "+00:00"))
    assert expires - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(hours=2)


@pytest.mark.parametrize("body,details", [
    ({"expires_in_hours": 0}, ["expires_in_hours must be between 1 and 720"]),
    ({"expires_in_hours": -5}, ["expires_in_hours must be between 1 and 720"]),
    ({"expires_in_hours": 721}, ["expires_in_hours must be between 1 and 720"]),     # 30 days + 1 hour
    ({"expires_in_hours": 10**30}, ["expires_in_hours must be between 1 and 720"]),
    ({"expires_in_hours": "24"}, ["expires_in_hours must be an integer"]),
    ({"expires_in_hours": True}, ["expires_in_hours must be an integer"]),
    ({"expires_in_hours": 1.5}, ["expires_in_hours must be an integer"]),
    ({"expires_in_hours": None}, ["expires_in_hours must be an integer"]),
    ({"expires_in_hours": [720]}, ["expires_in_hours must be an integer"]),
    ({"public": True}, ["unknown field: public"]),
    ({"expires_at": "2099-01-01T00:00:00Z"}, ["unknown field: expires_at"]),
])
def test_share_validation(client, crew, body, details):
    from chalicelib import db

    assert call(client, "POST", f"/videos/{crew['vid']}/share", crew["viewer"], body) == \
        (400, {"error": "Invalid share parameters", "details": details})
    assert db.fetch_one("SELECT count(*) AS n FROM shares WHERE video_id = %s", (crew["vid"],))["n"] == 0


@pytest.mark.attack
def test_share_lifetime_up_to_the_cap(client, crew):
    status, body = call(client, "POST", f"/videos/{crew['vid']}/share", crew["viewer"], {"expires_in_hours": 720})
    assert status == 201
    left = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")) - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=30) - dt.timedelta(minutes=1) < left <= dt.timedelta(days=30)


def test_share_errors(client, crew):
    assert call(client, "POST", f"/videos/{crew['vid']}/share", crew["viewer"], "[1]")[0] == 400
    for method, suffix in (("POST", "share"), ("GET", "shares")):
        assert call(client, method, f"/videos/{crew['vid']}/{suffix}", crew["outsider"]) == \
            (403, {"error": "Access denied"})
        assert call(client, method, f"/videos/{uuid.uuid4()}/{suffix}", crew["viewer"]) == \
            (404, {"error": "Video not found"})
        assert call(client, method, f"/videos/{crew['vid']}/{suffix}")[0] == 401


def test_share_counts(client, crew):
    from chalicelib import db

    assert call(client, "GET", f"/videos/{crew['vid']}/shares", crew["viewer"]) == \
        (200, {"total_shares": 0, "active_shares": 0, "shares": []})
    for _ in range(3):
        call(client, "POST", f"/videos/{crew['vid']}/share", crew["viewer"])
    db.execute("UPDATE shares SET expires_at = now() - interval '1 minute' WHERE code ="
               " (SELECT code FROM shares WHERE video_id = %s LIMIT 1)", (crew["vid"],))
    status, body = call(client, "GET", f"/videos/{crew['vid']}/shares", crew["admin"])
    assert status == 200 and (body["total_shares"], body["active_shares"]) == (3, 2)
    assert sorted(link["status"] for link in body["shares"]) == ["active", "active", "expired"]


def test_public_share_of_a_complete_video(client, crew, s3):
    complete(crew["vid"])
    vid = crew["vid"]
    s3.put_object(Bucket=BUCKET, Key=f"thumbnails/{vid}.jpg", Body=b"\xff\xd8final\xff\xd9",
                  ContentType="image/jpeg")
    s3.put_object(Bucket=BUCKET, Key=f"processed-videos/{vid}/master.m3u8", Body=b"#EXTM3U\n")
    code = call(client, "POST", f"/videos/{vid}/share", crew["viewer"])[1]["code"]
    resp = client.http.get(f"/share/{code}")                       # no Authorization header
    assert resp.status_code == 200
    body = __import__("json").loads(resp.body)
    assert (body["id"], body["title"], body["description"], body["duration"]) == (vid, "clutch", "nice", 31.5)
    assert body["stream"]["bitrates"] == [480, 720]
    assert "X-Amz-Signature" in body["thumbnail_url"]
    assert requests.get(body["thumbnail_url"], timeout=10).content == b"\xff\xd8final\xff\xd9"
    # hls_url is whatever GET /videos/{id}/stream hands out; anyone with the link can play it.
    playlist = client.http.get(urlparse(body["stream"]["hls_url"])._replace(scheme="", netloc="").geturl())
    assert playlist.status_code == 200 and playlist.body.decode().startswith("#EXTM3U")


def test_public_share_while_processing_has_no_stream(client, crew, s3):
    vid = crew["vid"]
    s3.put_object(Bucket=BUCKET, Key=f"thumbnails/{vid}_processing.jpg", Body=b"\xff\xd8p")
    code = call(client, "POST", f"/videos/{vid}/share", crew["viewer"])[1]["code"]
    status, body = call(client, "GET", f"/share/{code}")
    assert status == 200 and body["stream"] is None and body["processing_index"] == 1
    assert f"thumbnails/{vid}_processing.jpg" in body["thumbnail_url"]


def test_public_share_unknown_expired_and_deleted(client, crew):
    from chalicelib import db

    assert call(client, "GET", "/share/nope") == (404, {"error": "Share link not found"})
    assert call(client, "GET", "/share/" + "x" * 100) == (404, {"error": "Share link not found"})
    code = call(client, "POST", f"/videos/{crew['vid']}/share", crew["viewer"])[1]["code"]
    db.execute("UPDATE shares SET expires_at = now() - interval '1 second' WHERE code = %s", (code,))
    assert call(client, "GET", f"/share/{code}") == (410, {"error": "Share link expired"})
    fresh = call(client, "POST", f"/videos/{crew['vid']}/share", crew["viewer"])[1]["code"]
    assert call(client, "DELETE", f"/videos/{crew['vid']}", crew["admin"])[0] == 204
    assert call(client, "GET", f"/share/{fresh}") == (404, {"error": "Share link not found"})


# ---------------------------------------------------------------- share links: cap, listing, revoking, access

def share(client, crew, who="viewer", vid=None, **body):
    status, link = call(client, "POST", f"/videos/{vid or crew['vid']}/share", crew[who] if isinstance(who, str)
                        else who, body or None)
    assert status == 201, link
    return link


def shares_rows(vid):
    from chalicelib import db
    return db.fetch_all("SELECT id::text, code, revoked_at, revoked_by, expires_at FROM shares"
                        " WHERE video_id = %s ORDER BY created_at", (vid,))


@pytest.fixture()
def settings_env(monkeypatch):
    """Change settings of this process (the in-process client) for one test."""
    from chalicelib import config

    def set_env(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        config.reset_settings()
    yield set_env
    monkeypatch.undo()
    config.reset_settings()


def test_the_cap_is_configurable_and_cuts_older_links(client, crew, settings_env):
    from chalicelib import db

    week = share(client, crew)                                               # 7 days under the default cap
    settings_env(SHARE_MAX_TTL_SECONDS="7200")
    assert call(client, "POST", f"/videos/{crew['vid']}/share", crew["viewer"], {"expires_in_hours": 3}) == \
        (400, {"error": "Invalid share parameters", "details": ["expires_in_hours must be between 1 and 2"]})
    default = share(client, crew)                                            # the default shrinks to the cap
    left = dt.datetime.fromisoformat(default["expires_at"].replace("Z", "+00:00")) - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(hours=2) - dt.timedelta(minutes=1) < left <= dt.timedelta(hours=2)
    doc = json.loads(client.http.get("/openapi.json").body)
    assert doc["components"]["schemas"]["ShareRequest"]["properties"]["expires_in_hours"]["maximum"] == 2
    # The older 7-day link now ends 2 hours after it was made, in the view and the listing alike.
    status, view = call(client, "GET", f"/share/{week['code']}")
    assert status == 200 and view["expires_at"] < week["expires_at"]
    db.execute("UPDATE stream_members SET joined_at = joined_at - interval '4 hours' WHERE stream_id = %s",
               (crew["sid"],))                                                 # as if made 3 hours ago
    db.execute("UPDATE shares SET created_at = created_at - interval '3 hours' WHERE code = %s", (week["code"],))
    assert call(client, "GET", f"/share/{week['code']}") == (410, {"error": "Share link expired"})
    listed = {l["id"]: l for l in call(client, "GET", f"/videos/{crew['vid']}/shares", crew["viewer"])[1]["shares"]}
    assert listed[week["id"]]["status"] == "expired"


@pytest.mark.parametrize("value", ["abc", "0", "-3600", "1800", "5400", "1.5"])
def test_a_bad_cap_stops_the_process(value):
    from chalicelib.config import parse_share_max_ttl
    with pytest.raises(ValueError, match="SHARE_MAX_TTL_SECONDS"):
        parse_share_max_ttl(value)
    assert parse_share_max_ttl(None) == parse_share_max_ttl("") == 30 * 24 * 3600
    assert parse_share_max_ttl("86400") == 86400


def test_listing_shows_the_callers_links_and_admins_all(client, crew, sign_in):
    other = sign_in()
    add_member(crew["sid"], other, "viewer")
    mine = [share(client, crew), share(client, crew)]
    theirs = share(client, crew, other)
    admins = share(client, crew, "admin")
    path = f"/videos/{crew['vid']}/shares"

    resp = client.http.get(path, headers=crew["viewer"]["headers"])
    body = json.loads(resp.body)
    assert (body["total_shares"], body["active_shares"]) == (4, 4)          # the contract's counts stay
    assert [l["id"] for l in body["shares"]] == [m["id"] for m in reversed(mine)]   # newest first
    assert all(l["mine"] and l["status"] == "active" and l["revoked_at"] is None for l in body["shares"])
    assert {l["code"] for l in body["shares"]} == {m["code"] for m in mine}
    assert body["shares"][0]["share_url"] == mine[1]["share_url"]
    # Nothing of the others' links leaks to a plain member: not their codes, not their ids.
    for leaked in (theirs["code"], theirs["id"], admins["code"], admins["id"]):
        assert leaked.encode() not in resp.body

    resp = client.http.get(path, headers=crew["admin"]["headers"])
    links = {l["id"]: l for l in json.loads(resp.body)["shares"]}
    assert set(links) == {m["id"] for m in (*mine, theirs, admins)}
    assert links[theirs["id"]]["created_by"] == other["user"]["id"]
    assert (links[theirs["id"]]["code"], links[theirs["id"]]["share_url"], links[theirs["id"]]["mine"]) == \
        (None, None, False)                                                    # admins manage, not hold, others' links
    assert theirs["code"].encode() not in resp.body and links[admins["id"]]["code"] == admins["code"]

    assert call(client, "GET", path, crew["outsider"]) == (403, {"error": "Access denied"})
    assert call(client, "GET", path)[0] == 401


def test_revoking_a_link(client, crew):
    link = share(client, crew)
    other = share(client, crew)
    assert call(client, "GET", f"/share/{link['code']}")[0] == 200
    assert call(client, "DELETE", f"/videos/{crew['vid']}/shares/{link['id']}", crew["viewer"]) == (204, None)
    assert call(client, "GET", f"/share/{link['code']}") == (410, {"error": "Share link revoked"})
    assert call(client, "GET", f"/share/{other['code']}")[0] == 200            # only that one
    body = call(client, "GET", f"/videos/{crew['vid']}/shares", crew["viewer"])[1]
    assert (body["total_shares"], body["active_shares"]) == (2, 1)
    revoked = next(l for l in body["shares"] if l["id"] == link["id"])
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    before = shares_rows(crew["vid"])
    # Revoking again changes nothing (not even when), and a revoked link stays revoked.
    assert call(client, "DELETE", f"/videos/{crew['vid']}/shares/{link['id']}", crew["viewer"]) == (204, None)
    assert shares_rows(crew["vid"]) == before
    # A stream admin may revoke anyone's link.
    assert call(client, "DELETE", f"/videos/{crew['vid']}/shares/{other['id']}", crew["admin"]) == (204, None)
    assert call(client, "GET", f"/share/{other['code']}") == (410, {"error": "Share link revoked"})
    assert next(r for r in shares_rows(crew["vid"]) if r["id"] == other["id"])["revoked_by"] is not None


@pytest.mark.attack
def test_nobody_else_revokes_a_link(client, crew, sign_in, make_video):
    from chalicelib import db

    other = sign_in()
    add_member(crew["sid"], other, "creator")
    link = share(client, crew)
    # Someone else's stream, whose admin is a platform admin too: no power over this stream's links.
    boss = sign_in("admin@example.com")
    status, elsewhere = call(client, "POST", "/streams", boss, {"name": "Elsewhere"})
    own_vid = str(make_video(elsewhere, {"id": boss["user"]["id"]})["id"])
    second_vid = str(make_video({"id": crew["sid"]}, {"id": crew["admin"]["user"]["id"]})["id"])
    before = shares_rows(crew["vid"])
    attempts = [
        (other, crew["vid"], link["id"], 403, "Only the link's creator or a stream admin can revoke it"),
        (crew["outsider"], crew["vid"], link["id"], 403, "Access denied"),
        (boss, crew["vid"], link["id"], 403, "Access denied"),
        (boss, own_vid, link["id"], 404, "Share link not found"),              # the link is not on that video
        (crew["viewer"], second_vid, link["id"], 404, "Share link not found"),
        (crew["viewer"], crew["vid"], str(uuid.uuid4()), 404, "Share link not found"),
        (crew["viewer"], crew["vid"], link["code"], 404, "Share link not found"),   # the code is not the id
        (crew["viewer"], crew["vid"], "1 OR 1=1", 404, "Share link not found"),
        (crew["viewer"], str(uuid.uuid4()), link["id"], 404, "Video not found"),
    ]
    for who, vid, share_id, status, error in attempts:
        assert call(client, "DELETE", f"/videos/{vid}/shares/{share_id}", who) == (status, {"error": error}), \
            (who["user"]["email"], vid, share_id)
    assert call(client, "DELETE", f"/videos/{crew['vid']}/shares/{link['id']}")[0] == 401
    assert shares_rows(crew["vid"]) == before
    assert call(client, "GET", f"/share/{link['code']}")[0] == 200
    assert db.fetch_one("SELECT count(*) AS n FROM shares WHERE revoked_at IS NOT NULL AND video_id = %s",
                        (crew["vid"],))["n"] == 0


@pytest.mark.attack
def test_links_stop_when_their_creator_loses_access(client, crew, sign_in):
    sid, vid = crew["sid"], crew["vid"]
    kicked, banned, demoted = sign_in(), sign_in(), sign_in()
    for who, role in ((kicked, "viewer"), (banned, "creator"), (demoted, "admin")):
        add_member(sid, who, role)
    links = {name: share(client, crew, who) for name, who in
             (("kicked", kicked), ("banned", banned), ("demoted", demoted), ("viewer", crew["viewer"]))}
    gone = (404, {"error": "Share link not found"})

    assert call(client, "DELETE", f"/streams/{sid}/members/{kicked['user']['id']}", crew["admin"])[0] == 204
    assert call(client, "GET", f"/share/{links['kicked']['code']}") == gone
    assert call(client, "POST", f"/streams/{sid}/bans", crew["admin"],
                {"user_id": banned["user"]["id"], "reason": "spam"})[0] == 201
    assert call(client, "GET", f"/share/{links['banned']['code']}") == gone
    # Any member may share, so a demotion to viewer keeps the link working.
    assert call(client, "PUT", f"/streams/{sid}/members/{demoted['user']['id']}", crew["admin"],
                {"role": "viewer"})[0] == 200
    assert call(client, "GET", f"/share/{links['demoted']['code']}")[0] == 200
    assert call(client, "GET", f"/share/{links['viewer']['code']}")[0] == 200

    # Letting them back in does not bring the old links back; new ones work.
    add_member(sid, kicked, "viewer")
    assert call(client, "GET", f"/share/{links['kicked']['code']}") == gone
    assert call(client, "GET", f"/share/{share(client, crew, kicked)['code']}")[0] == 200
    admin_view = {l["id"]: l for l in call(client, "GET", f"/videos/{vid}/shares", crew["admin"])[1]["shares"]}
    assert admin_view[links["kicked"]["id"]]["status"] == "creator_without_access"
    assert admin_view[links["banned"]["id"]]["status"] == "creator_without_access"

    # A hidden video's links stop for everyone, and work again when moderation unhides it.
    boss = sign_in("admin@example.com")
    assert call(client, "POST", f"/admin/videos/{vid}/hide", boss, {"reason": "check"})[0] == 200
    assert call(client, "GET", f"/share/{links['viewer']['code']}") == gone
    assert call(client, "POST", f"/admin/videos/{vid}/unhide", boss)[0] == 200
    assert call(client, "GET", f"/share/{links['viewer']['code']}")[0] == 200


def test_share_links_over_http(live_api, crew):
    """Create, list, revoke and open a link through `chalice local`."""
    headers = crew["viewer"]["headers"]
    link = requests.post(f"{live_api}/videos/{crew['vid']}/share", json={"expires_in_hours": 1},
                         headers=headers, timeout=30).json()
    assert requests.get(f"{live_api}/share/{link['code']}", timeout=30).status_code == 200
    listed = requests.get(f"{live_api}/videos/{crew['vid']}/shares", headers=headers, timeout=30).json()
    assert [l["id"] for l in listed["shares"]] == [link["id"]]
    stranger = requests.delete(f"{live_api}/videos/{crew['vid']}/shares/{link['id']}",
                               headers=crew["outsider"]["headers"], timeout=30)
    assert stranger.status_code == 403
    assert requests.delete(f"{live_api}/videos/{crew['vid']}/shares/{link['id']}",
                           headers=headers, timeout=30).status_code == 204
    gone = requests.get(f"{live_api}/share/{link['code']}", timeout=30)
    assert gone.status_code == 410 and gone.json() == {"error": "Share link revoked"}


@pytest.mark.attack
def test_a_links_playback_url_stops_with_the_link(client, crew, s3, sign_in):
    """The hls_url a link handed out (a one-hour token) plays only while the link works."""
    complete(crew["vid"])
    s3.put_object(Bucket=BUCKET, Key=f"processed-videos/{crew['vid']}/master.m3u8", Body=b"#EXTM3U\n")
    member = sign_in()
    add_member(crew["sid"], member, "viewer")
    revoked, orphaned, kept = share(client, crew), share(client, crew, member), share(client, crew, "admin")

    def play(link):
        hls_url = call(client, "GET", f"/share/{link['code']}")[1]["stream"]["hls_url"]
        return lambda: client.http.get(urlparse(hls_url)._replace(scheme="", netloc="").geturl())

    players = {name: play(link) for name, link in (("revoked", revoked), ("orphaned", orphaned), ("kept", kept))}
    assert all(p().status_code == 200 for p in players.values())
    assert call(client, "DELETE", f"/videos/{crew['vid']}/shares/{revoked['id']}", crew["viewer"])[0] == 204
    assert call(client, "DELETE", f"/streams/{crew['sid']}/members/{member['user']['id']}", crew["admin"])[0] == 204
    resp = players["revoked"]()
    assert resp.status_code == 410 and json.loads(resp.body) == {"error": "Share link revoked"}
    resp = players["orphaned"]()
    assert resp.status_code == 404 and json.loads(resp.body) == {"error": "Share link not found"}
    assert players["kept"]().status_code == 200
