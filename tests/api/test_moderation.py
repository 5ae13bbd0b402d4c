"""Reports, the moderation queue, hidden videos, stream bans and the audit log."""
from __future__ import annotations

import uuid
from urllib.parse import urlparse

import pytest

from chalicelib import db
from tests.api.test_videos import add_member
from tests.helpers import call, wait_for_final

PLATFORM_ADMIN = "admin@example.com"  # ADMIN_EMAILS of the test stack


@pytest.fixture()
def crew(client, sign_in, make_video):
    """A stream: admin, creator (uploaded a complete video), two viewers, an outsider; a platform admin."""
    admin, creator, viewer, fan, outsider = (sign_in() for _ in range(5))
    status, stream = call(client, "POST", "/streams", admin, {"name": "Moderated"})
    assert status == 201
    add_member(stream["id"], creator, "creator")
    add_member(stream["id"], viewer, "viewer")
    add_member(stream["id"], fan, "viewer")
    video = make_video(stream, {"id": creator["user"]["id"]}, title="sketchy headshot")
    vid = str(video["id"])
    db.execute("UPDATE videos SET processing_index = 0, status = 'complete', duration_s = 5,"
               " bitrates = '{480}' WHERE id = %s", (vid,))
    return {"sid": stream["id"], "admin": admin, "creator": creator, "viewer": viewer, "fan": fan,
            "outsider": outsider, "root": sign_in(PLATFORM_ADMIN), "vid": vid}


def report(client, crew, who="viewer", reason="cheating", **extra):
    return call(client, "POST", f"/videos/{crew['vid']}/report", crew[who], {"reason": reason, **extra})


def audit_actions(client, crew, **filters) -> list[str]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    status, body = call(client, "GET", f"/admin/audit?{query}", crew["root"])
    assert status == 200
    return [e["action"] for e in body["entries"]]


# ---------------------------------------------------------------- reports

def test_members_report_once_while_open(client, crew):
    status, body = report(client, crew, details="  aimbot at 0:03  ")
    assert status == 201
    assert {k: body[k] for k in ("video_id", "stream_id", "reason", "details", "status", "reporter_id",
                                 "video_hidden", "resolution")} == \
        {"video_id": crew["vid"], "stream_id": crew["sid"], "reason": "cheating", "details": "aimbot at 0:03",
         "status": "pending", "reporter_id": crew["viewer"]["user"]["id"], "video_hidden": False,
         "resolution": None}
    assert report(client, crew, reason="spam") == (409, {"error": "You already reported this video"})
    assert report(client, crew, who="fan")[0] == 201                  # another member may
    status, _ = call(client, "POST", f"/admin/reports/{body['id']}/dismiss", crew["admin"], {})
    assert status == 200
    assert report(client, crew, reason="spam")[0] == 201              # closed: may report again


@pytest.mark.parametrize("body,detail", [
    ({"reason": "ugly"}, "reason must be one of spam, harassment, hate, violence, sexual, copyright, cheating, other"),
    ({}, "reason must be one of spam, harassment, hate, violence, sexual, copyright, cheating, other"),
    ({"reason": "spam", "details": "x" * 1001}, "details must be a string of at most 1000 characters"),
    ({"reason": "spam", "details": 5}, "details must be a string of at most 1000 characters"),
    ({"reason": "spam", "severity": 9}, "unknown field: severity"),
])
def test_bad_reports_are_400(client, crew, body, detail):
    status, resp = call(client, "POST", f"/videos/{crew['vid']}/report", crew["viewer"], body)
    assert status == 400 and resp["error"] == "Invalid report" and detail in resp["details"]
    assert db.fetch_one("SELECT count(*) AS n FROM content_reports WHERE video_id = %s", (crew["vid"],))["n"] == 0


def test_only_members_who_see_the_video_report_it(client, crew):
    assert report(client, crew, who="outsider") == (403, {"error": "Access denied"})
    assert call(client, "POST", f"/videos/{uuid.uuid4()}/report", crew["viewer"], {"reason": "spam"})[0] == 404
    assert call(client, "POST", f"/videos/{crew['vid']}/report", None, {"reason": "spam"})[0] == 401


# ---------------------------------------------------------------- the queue

def test_queue_for_platform_admins_and_each_streams_admins(client, crew, sign_in):
    first = report(client, crew)[1]
    second = report(client, crew, who="fan", reason="harassment")[1]
    status, queue = call(client, "GET", f"/admin/reports?stream_id={crew['sid']}", crew["root"])
    assert status == 200 and queue["status"] == "pending" and queue["total"] == 2
    assert [r["id"] for r in queue["reports"]] == [first["id"], second["id"]]      # oldest first
    assert call(client, "GET", f"/admin/reports?stream_id={crew['sid']}&reason=harassment",
                crew["root"])[1]["total"] == 1
    status, mine = call(client, "GET", f"/streams/{crew['sid']}/reports", crew["admin"])
    assert status == 200 and [r["id"] for r in mine["reports"]] == [first["id"], second["id"]]
    # Another stream's admin sees only their own stream's queue.
    other = sign_in()
    status, theirs = call(client, "POST", "/streams", other, {"name": "Elsewhere"})
    assert call(client, "GET", f"/streams/{theirs['id']}/reports", other)[1]["reports"] == []
    assert call(client, "GET", f"/streams/{crew['sid']}/reports", other) == (403, {"error": "Access denied"})
    assert call(client, "GET", "/admin/reports", crew["admin"]) == (403, {"error": "Admin access required"})
    assert call(client, "GET", f"/streams/{crew['sid']}/reports", crew["creator"]) == \
        (403, {"error": "Admin access required"})
    for bad in ("status=open", "video_id=nope", f"reason={'x' * 101}"):
        assert call(client, "GET", f"/admin/reports?{bad}", crew["root"])[0] == 400


def test_resolving_with_hide_closes_the_videos_reports_and_hides_it(client, crew):
    first = report(client, crew)[1]
    second = report(client, crew, who="fan")[1]
    path = f"/admin/reports/{first['id']}/resolve"
    assert call(client, "POST", path, crew["creator"], {}) == (403, {"error": "Admin access required"})
    assert call(client, "POST", path, crew["outsider"], {}) == (403, {"error": "Access denied"})
    assert call(client, "POST", path, crew["admin"], {"hide_video": "yes"})[0] == 400
    status, body = call(client, "POST", path, crew["admin"], {"hide_video": True, "note": "confirmed"})
    assert status == 200
    assert (body["status"], body["resolution"], body["video_hidden"], body["note"]) == \
        ("resolved", "video_hidden", True, "confirmed")
    assert body["resolved_by"] == crew["admin"]["user"]["id"]
    rows = db.fetch_all("SELECT id, status, resolution FROM content_reports WHERE video_id = %s", (crew["vid"],))
    assert {(str(r["id"]), r["status"], r["resolution"]) for r in rows} == \
        {(first["id"], "resolved", "video_hidden"), (second["id"], "resolved", "video_hidden")}
    assert call(client, "POST", path, crew["admin"], {}) == (409, {"error": "Report already closed",
                                                                   "status": "resolved"})
    assert call(client, "GET", f"/videos/{crew['vid']}", crew["viewer"]) == (404, {"error": "Video not found"})
    status, audit = call(client, "GET", f"/streams/{crew['sid']}/audit", crew["admin"])
    assert [e["action"] for e in audit["entries"]] == ["report.resolve", "video.hide"]
    resolve = audit["entries"][0]
    assert resolve["actor"] == {"id": crew["admin"]["user"]["id"], "email": crew["admin"]["user"]["email"]}
    assert resolve["target"] == {"type": "report", "id": first["id"]}
    assert sorted(resolve["details"]["reports_closed"]) == sorted([first["id"], second["id"]])


def test_dismissing_and_the_platform_admin_acting_on_any_stream(client, crew):
    mine = report(client, crew)[1]
    assert call(client, "POST", f"/admin/reports/{mine['id']}/dismiss", crew["root"], {"hide_video": True})[0] == 400
    status, body = call(client, "POST", f"/admin/reports/{mine['id']}/dismiss", crew["root"], {"note": "fine"})
    assert status == 200 and (body["status"], body["resolution"]) == ("dismissed", "no_action")
    assert call(client, "GET", f"/videos/{crew['vid']}", crew["viewer"])[0] == 200
    assert call(client, "POST", f"/admin/reports/{uuid.uuid4()}/dismiss", crew["root"], {}) == \
        (404, {"error": "Report not found"})
    assert call(client, "POST", "/admin/reports/nope/dismiss", crew["root"], {})[0] == 404
    assert audit_actions(client, crew, target_id=mine["id"]) == ["report.dismiss"]


# ---------------------------------------------------------------- hidden videos

def test_a_hidden_video_is_gone_for_all_but_stream_admins(client, crew, s3):
    from chalicelib import storage

    vid = crew["vid"]
    s3.put_object(Bucket="clipstream", Key=storage.master_playlist_key(vid),
                  Body=b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n480p.m3u8\n")
    status, urls = call(client, "GET", f"/videos/{vid}/stream", crew["viewer"])
    assert status == 200
    player = urlparse(urls["hls_url"])
    hls_path = f"{player.path}?{player.query}"
    assert client.http.get(hls_path).status_code == 200
    assert call(client, "GET", "/search?q=sketchy", crew["viewer"])[1]["total_results"] == 1
    share = call(client, "POST", f"/videos/{vid}/share", crew["viewer"])[1]["code"]
    assert client.http.get(f"/share/{share}").status_code == 200

    assert call(client, "POST", f"/admin/videos/{vid}/hide", crew["creator"], {}) == \
        (403, {"error": "Admin access required"})
    status, hidden = call(client, "POST", f"/admin/videos/{vid}/hide", crew["admin"], {"reason": "cheats"})
    assert status == 200 and hidden["hidden"] is True and hidden["reason"] == "cheats"
    assert call(client, "POST", f"/admin/videos/{vid}/hide", crew["admin"], {"reason": "again"})[1] == hidden

    for who in ("viewer", "creator"):                    # even its uploader
        assert call(client, "GET", f"/videos/{vid}", crew[who]) == (404, {"error": "Video not found"})
        assert call(client, "GET", f"/videos/{vid}/stream", crew[who])[0] == 404
        assert call(client, "POST", f"/videos/{vid}/like", crew[who])[0] == 404
        assert call(client, "GET", f"/streams/{crew['sid']}/videos", crew[who])[1]["videos"] == []
        assert call(client, "GET", f"/streams/{crew['sid']}/videos?page=9", crew[who])[1]["total"] == 0
    assert client.http.get(hls_path).status_code == 404   # the player's token no longer plays it
    assert call(client, "GET", "/search?q=sketchy", crew["viewer"])[1]["total_results"] == 0
    assert client.http.get(f"/share/{share}").status_code == 404      # nor do share links
    assert call(client, "GET", f"/videos/{vid}", crew["admin"])[0] == 200
    assert [v["id"] for v in call(client, "GET", f"/streams/{crew['sid']}/videos", crew["admin"])[1]["videos"]] == [vid]

    status, shown = call(client, "POST", f"/admin/videos/{vid}/unhide", crew["root"])
    assert status == 200 and shown == {"video_id": vid, "hidden": False, "hidden_at": None, "hidden_by": None,
                                       "level": None, "reason": None}
    assert call(client, "GET", f"/videos/{vid}", crew["viewer"])[0] == 200
    assert client.http.get(hls_path).status_code == 200
    assert audit_actions(client, crew, target_id=vid) == ["video.unhide", "video.hide"]  # the repeat: no entry
    assert call(client, "POST", f"/admin/videos/{uuid.uuid4()}/hide", crew["root"], {}) == \
        (404, {"error": "Video not found"})
    assert call(client, "POST", f"/admin/videos/{vid}/hide", crew["admin"], {"why": 1})[0] == 400


# ---------------------------------------------------------------- bans

def test_a_banned_user_loses_membership_and_cannot_rejoin_or_upload(client, crew):
    status, invite = call(client, "POST", f"/streams/{crew['sid']}/invites", crew["admin"], {"role": "creator"})
    assert status == 201
    creator = crew["creator"]
    status, ban = call(client, "POST", f"/streams/{crew['sid']}/bans", crew["admin"],
                       {"user_id": creator["user"]["id"], "reason": "cheating"})
    assert status == 201 and ban["user_id"] == creator["user"]["id"] and ban["reason"] == "cheating"
    assert call(client, "GET", f"/streams/{crew['sid']}", creator) == (403, {"error": "Access denied"})
    assert call(client, "POST", f"/invites/{invite['code']}/join", creator) == \
        (403, {"error": "You are banned from this stream"})
    upload = {"filename": "again.mp4", "size_bytes": 1000, "content_type": "video/mp4"}
    assert call(client, "POST", f"/streams/{crew['sid']}/videos", creator, upload) == \
        (403, {"error": "Access denied"})
    assert db.fetch_one("SELECT use_count FROM invites WHERE code = %s", (invite["code"],))["use_count"] == 0
    status, bans = call(client, "GET", f"/streams/{crew['sid']}/bans", crew["admin"])
    assert status == 200 and [b["user_id"] for b in bans["bans"]] == [creator["user"]["id"]]

    assert call(client, "DELETE", f"/streams/{crew['sid']}/bans/{creator['user']['id']}", crew["admin"])[0] == 204
    assert call(client, "DELETE", f"/streams/{crew['sid']}/bans/{creator['user']['id']}", crew["admin"]) == \
        (404, {"error": "Ban not found"})
    status, joined = call(client, "POST", f"/invites/{invite['code']}/join", creator)
    assert status == 200 and joined["role"] == "creator"
    assert call(client, "POST", f"/streams/{crew['sid']}/videos", creator, upload)[0] == 201
    assert audit_actions(client, crew, stream_id=crew["sid"], target_id=creator["user"]["id"]) == \
        ["stream.unban", "stream.ban"]
    entry = call(client, "GET", f"/admin/audit?action=stream.ban&stream_id={crew['sid']}", crew["root"])[1]
    assert entry["entries"][0]["details"] == {"reason": "cheating", "removed_role": "creator"}


def test_ban_refusals(client, crew, sign_in):
    path = f"/streams/{crew['sid']}/bans"
    viewer_id = crew["viewer"]["user"]["id"]
    assert call(client, "POST", path, crew["creator"], {"user_id": viewer_id}) == \
        (403, {"error": "Admin access required"})
    assert call(client, "POST", path, crew["outsider"], {"user_id": viewer_id}) == (403, {"error": "Access denied"})
    assert call(client, "POST", path, crew["admin"], {"user_id": crew["admin"]["user"]["id"]}) == \
        (400, {"error": "Invalid ban request", "details": ["you cannot ban yourself"]})
    co_admin = sign_in()
    add_member(crew["sid"], co_admin, "admin")
    assert call(client, "POST", path, crew["admin"], {"user_id": co_admin["user"]["id"]}) == \
        (409, {"error": "Stream admins cannot be banned; change their role first"})
    assert call(client, "POST", path, crew["admin"], {"user_id": str(uuid.uuid4())}) == \
        (404, {"error": "User not found"})
    for body in ({}, {"user_id": "nope"}, {"user_id": viewer_id, "reason": 3}, {"user_id": viewer_id, "x": 1}):
        assert call(client, "POST", path, crew["admin"], body)[0] == 400
    assert call(client, "POST", f"/streams/{uuid.uuid4()}/bans", crew["root"], {"user_id": viewer_id}) == \
        (404, {"error": "Stream not found"})
    # A platform admin who is no member may ban; a second ban of the same user is a 409.
    assert call(client, "POST", path, crew["root"], {"user_id": viewer_id})[0] == 201
    assert call(client, "POST", path, crew["admin"], {"user_id": viewer_id}) == \
        (409, {"error": "User is already banned from this stream"})
    assert db.fetch_one("SELECT 1 FROM stream_members WHERE stream_id = %s AND user_id = %s",
                        (crew["sid"], viewer_id)) is None
    assert call(client, "GET", path, crew["viewer"])[0] == 403


# ---------------------------------------------------------------- audit log

def test_audit_log_is_for_admins_paged_and_filtered(client, crew):
    call(client, "POST", f"/admin/videos/{crew['vid']}/hide", crew["admin"], {})
    call(client, "POST", f"/admin/videos/{crew['vid']}/unhide", crew["admin"])
    call(client, "POST", f"/admin/videos/{crew['vid']}/hide", crew["root"], {})
    status, page = call(client, "GET", f"/admin/audit?target_id={crew['vid']}&limit=2", crew["root"])
    assert status == 200 and page["total"] == 3 and [e["action"] for e in page["entries"]] == \
        ["video.hide", "video.unhide"]
    assert call(client, "GET", f"/admin/audit?target_id={crew['vid']}&limit=2&page=2",
                crew["root"])[1]["entries"][0]["actor"]["id"] == crew["admin"]["user"]["id"]
    assert audit_actions(client, crew, target_id=crew["vid"], actor_id=crew["root"]["user"]["id"]) == ["video.hide"]
    assert audit_actions(client, crew, target_id=crew["vid"], action="video.unhide") == ["video.unhide"]
    entry = page["entries"][0]
    assert entry["stream_id"] == crew["sid"] and entry["at"].endswith("Z")
    assert call(client, "GET", "/admin/audit", crew["admin"]) == (403, {"error": "Admin access required"})
    assert call(client, "GET", f"/streams/{crew['sid']}/audit", crew["creator"]) == \
        (403, {"error": "Admin access required"})
    assert call(client, "GET", "/admin/audit?actor_id=x", crew["root"])[0] == 400
    assert call(client, "GET", "/admin/audit")[0] == 401


def test_processing_retries_are_audited(client, crew, make_video):
    video = make_video({"id": crew["sid"]}, {"id": crew["creator"]["user"]["id"]}, title="broken")
    vid = str(video["id"])
    db.execute("UPDATE videos SET status = 'failed', failure_reason = 'test' WHERE id = %s", (vid,))
    status, body = call(client, "POST", "/admin/processing/retry", crew["root"], {"video_id": vid})
    assert status == 200 and body["retried"][0]["outcome"] == "started"
    status, log = call(client, "GET", f"/admin/audit?action=processing.retry&target_id={vid}", crew["root"])
    assert [(e["actor"]["email"], e["details"]["outcome"]) for e in log["entries"]] == [(PLATFORM_ADMIN, "started")]
    assert wait_for_final(vid, 60)["status"] == "failed"      # no upload behind it: the retry fails again


def test_a_ban_racing_a_join_never_leaves_a_banned_member(client, crew, make_user):
    """Join and ban at the same moment, many times: the user always ends banned and no member."""
    import threading

    from chalicelib.api import invites, moderation
    from chalicelib.errors import ClipstreamError

    status, invite = call(client, "POST", f"/streams/{crew['sid']}/invites", crew["admin"], {"role": "viewer"})
    assert status == 201
    admin = crew["admin"]["user"]
    for _ in range(12):
        joiner = make_user()
        barrier = threading.Barrier(2)

        def run(action):
            try:
                barrier.wait()
                action()
            except ClipstreamError:
                pass  # 403 banned or 409: what the other side decided first
            finally:
                db.close()

        threads = [threading.Thread(target=run, args=(lambda: invites.join(joiner, invite["code"]),)),
                   threading.Thread(target=run, args=(lambda: moderation.ban_user(
                       admin, crew["sid"], {"user_id": str(joiner["id"])}),))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        banned = db.fetch_one("SELECT 1 FROM stream_bans WHERE stream_id = %s AND user_id = %s",
                              (crew["sid"], joiner["id"]))
        member = db.fetch_one("SELECT 1 FROM stream_members WHERE stream_id = %s AND user_id = %s",
                              (crew["sid"], joiner["id"]))
        assert banned and not member


def test_member_role_changes_and_removals_are_audited(client, crew):
    sid, viewer, fan = crew["sid"], crew["viewer"]["user"]["id"], crew["fan"]["user"]["id"]
    assert call(client, "PUT", f"/streams/{sid}/members/{viewer}", crew["admin"], {"role": "creator"})[0] == 200
    assert call(client, "PUT", f"/streams/{sid}/members/{viewer}", crew["admin"], {"role": "creator"})[0] == 200
    assert call(client, "DELETE", f"/streams/{sid}/members/{fan}", crew["admin"])[0] == 204
    assert call(client, "DELETE", f"/streams/{sid}/members/{viewer}", crew["viewer"])[0] == 204  # leaving
    status, body = call(client, "GET", f"/streams/{sid}/audit", crew["admin"])
    assert status == 200
    members = [(e["action"], e["target"]["id"], e["details"], e["actor"]["id"]) for e in body["entries"]
               if e["action"].startswith("member.")]
    admin = crew["admin"]["user"]["id"]
    assert members == [("member.remove", fan, {"role": "viewer"}, admin),                 # newest first
                       ("member.role", viewer, {"from": "viewer", "to": "creator"}, admin)]  # no-op: no entry
    assert audit_actions(client, crew, target_id=viewer) == ["member.role"]


# ---------------------------------------------------------------- platform moderation outranks stream admins

def raw(client, path, who) -> str:
    """The raw JSON text of a GET, to prove something is nowhere in it."""
    resp = client.http.get(path, headers=who["headers"])
    assert resp.status_code == 200, resp.body
    return resp.body.decode() if isinstance(resp.body, bytes) else resp.body


def hidden_row(vid):
    return db.fetch_one("SELECT hidden_at, hidden_by, hidden_reason, hidden_level FROM videos WHERE id = %s",
                        (vid,))


def audit_rows(target_id):
    return db.fetch_all("SELECT action, actor_id, details FROM audit_log WHERE target_id = %s ORDER BY id",
                        (str(target_id),))


PLATFORM_HIDE = (403, {"error": "This video was hidden by a platform admin; only a platform admin can unhide it"})


@pytest.mark.attack
def test_a_platform_hide_is_lifted_only_by_a_platform_admin(client, crew):
    vid, root, admin = crew["vid"], crew["root"], crew["admin"]
    rid = report(client, crew)[1]["id"]                          # while members still see the video
    status, hidden = call(client, "POST", f"/admin/videos/{vid}/hide", root, {"reason": "illegal"})
    assert status == 200 and (hidden["level"], hidden["hidden_by"]) == ("platform", root["user"]["id"])
    before = hidden_row(vid)

    assert call(client, "POST", f"/admin/videos/{vid}/unhide", admin) == PLATFORM_HIDE
    # Hiding again at stream level neither lowers the hide nor takes it over.
    status, again = call(client, "POST", f"/admin/videos/{vid}/hide", admin, {"reason": "mine now"})
    assert status == 200 and again == hidden
    assert call(client, "POST", f"/admin/videos/{vid}/unhide", admin) == PLATFORM_HIDE
    # Nor does resolving a report with hide_video.
    assert call(client, "POST", f"/admin/reports/{rid}/resolve", admin, {"hide_video": True})[0] == 200
    assert call(client, "POST", f"/admin/videos/{vid}/unhide", admin) == PLATFORM_HIDE
    assert hidden_row(vid) == before
    assert call(client, "GET", f"/videos/{vid}", crew["viewer"]) == (404, {"error": "Video not found"})
    assert [r["action"] for r in audit_rows(vid)] == ["video.hide"]
    assert audit_rows(vid)[0]["details"] == {"reason": "illegal", "level": "platform"}

    status, shown = call(client, "POST", f"/admin/videos/{vid}/unhide", root)
    assert status == 200 and shown["hidden"] is False and shown["level"] is None
    assert hidden_row(vid) == {"hidden_at": None, "hidden_by": None, "hidden_reason": None, "hidden_level": None}
    assert [(r["action"], r["details"]) for r in audit_rows(vid)] == \
        [("video.hide", {"reason": "illegal", "level": "platform"}), ("video.unhide", {"level": "platform"})]


def test_a_platform_admin_raises_a_stream_hide_and_a_platform_resolve_hides_at_platform_level(client, crew):
    vid, root, admin = crew["vid"], crew["root"], crew["admin"]
    # A stream hide is the stream's own: its admins lift it.
    assert call(client, "POST", f"/admin/videos/{vid}/hide", admin, {"reason": "ours"})[1]["level"] == "stream"
    assert call(client, "POST", f"/admin/videos/{vid}/unhide", admin)[0] == 200
    status, first = call(client, "POST", f"/admin/videos/{vid}/hide", admin, {"reason": "ours"})
    status, raised = call(client, "POST", f"/admin/videos/{vid}/hide", root, {"reason": "platform"})
    assert status == 200 and (raised["level"], raised["hidden_by"], raised["reason"]) == \
        ("platform", root["user"]["id"], "platform")
    assert raised["hidden_at"] == first["hidden_at"]                  # hidden since the first hide
    assert audit_rows(vid)[-1]["details"] == {"reason": "platform", "level": "platform", "raised_from": "stream"}
    before, entries = hidden_row(vid), len(audit_rows(vid))
    assert call(client, "POST", f"/admin/videos/{vid}/unhide", admin) == PLATFORM_HIDE
    assert (hidden_row(vid), len(audit_rows(vid))) == (before, entries)
    assert call(client, "POST", f"/admin/videos/{vid}/unhide", root)[0] == 200

    # A platform admin resolving a report with hide_video hides at platform level.
    rid = report(client, crew)[1]["id"]
    status, body = call(client, "POST", f"/admin/reports/{rid}/resolve", root, {"hide_video": True})
    assert status == 200 and body["video_hidden"] is True
    assert hidden_row(vid)["hidden_level"] == "platform"
    assert call(client, "POST", f"/admin/videos/{vid}/unhide", admin) == PLATFORM_HIDE
    assert hidden_row(vid)["hidden_at"] is not None


@pytest.mark.attack
def test_stream_admins_do_not_close_reports_about_their_own_videos(client, crew, sign_in, make_video):
    sid, admin = crew["sid"], crew["admin"]
    own = str(make_video({"id": sid}, {"id": admin["user"]["id"]}, title="admin's own")["id"])
    db.execute("UPDATE videos SET processing_index = 0, status = 'complete' WHERE id = %s", (own,))
    first = call(client, "POST", f"/videos/{own}/report", crew["viewer"], {"reason": "cheating"})[1]
    second = call(client, "POST", f"/videos/{own}/report", crew["fan"], {"reason": "spam"})[1]
    refused = (403, {"error": "You cannot resolve or dismiss reports about your own video;"
                              " a platform admin or another stream admin decides"})
    for action, body in (("dismiss", {}), ("resolve", {}), ("resolve", {"hide_video": True}),
                         ("resolve", {"note": "fine"})):
        assert call(client, "POST", f"/admin/reports/{first['id']}/{action}", admin, body) == refused
    rows = db.fetch_all("SELECT status, resolved_by, resolution, note FROM content_reports WHERE video_id = %s",
                        (own,))
    assert rows == [{"status": "pending", "resolved_by": None, "resolution": None, "note": ""}] * 2
    assert hidden_row(own)["hidden_at"] is None
    assert audit_rows(first["id"]) == [] and audit_rows(own) == []
    # Still in their queue (without reporters), for the others to decide.
    queue = call(client, "GET", f"/streams/{sid}/reports", admin)[1]
    assert {r["id"] for r in queue["reports"]} == {first["id"], second["id"]}
    # Another stream admin may; so may a platform admin.
    co_admin = sign_in()
    add_member(sid, co_admin, "admin")
    assert call(client, "POST", f"/admin/reports/{first['id']}/dismiss", co_admin, {})[0] == 200
    assert call(client, "POST", f"/admin/reports/{second['id']}/resolve", crew["root"], {"hide_video": True})[0] == 200
    assert [r["action"] for r in audit_rows(first["id"])] == ["report.dismiss"]
    # Reports about other uploaders' videos stay theirs to close.
    other = report(client, crew)[1]
    assert call(client, "POST", f"/admin/reports/{other['id']}/dismiss", admin, {})[0] == 200


@pytest.mark.attack
def test_stream_admins_never_see_who_reported(client, crew):
    sid, viewer, fan = crew["sid"], crew["viewer"]["user"], crew["fan"]["user"]
    first = report(client, crew)[1]
    report(client, crew, who="fan", reason="spam")
    identities = (viewer["id"], viewer["email"], fan["id"], fan["email"])
    for path in (f"/streams/{sid}/reports", f"/streams/{sid}/reports?status=all",
                 f"/streams/{sid}/reports?reason=spam", f"/streams/{sid}/audit"):
        text = raw(client, path, crew["admin"])
        assert not [i for i in identities if i.lower() in text.lower()], path
    queue = call(client, "GET", f"/streams/{sid}/reports", crew["admin"])[1]["reports"]
    assert len(queue) == 2 and all("reporter_id" not in r and "reporter_email" not in r for r in queue)
    # Closing a report answers the stream admin without the reporter too.
    status, closed = call(client, "POST", f"/admin/reports/{first['id']}/dismiss", crew["admin"], {})
    assert status == 200 and closed["status"] == "dismissed"
    assert not {"reporter_id", "reporter_email"} & set(closed)
    text = raw(client, f"/streams/{sid}/reports?status=all", crew["admin"]) + \
        raw(client, f"/streams/{sid}/audit", crew["admin"])
    assert not [i for i in identities if i.lower() in text.lower()]
    # Platform admins see them, in both queues.
    for path in (f"/streams/{sid}/reports?status=all", f"/admin/reports?stream_id={sid}&status=all"):
        rows = call(client, "GET", path, crew["root"])[1]["reports"]
        assert {(r["reporter_id"], r["reporter_email"]) for r in rows} == \
            {(viewer["id"], viewer["email"]), (fan["id"], fan["email"])}


def test_stream_and_invite_administration_is_audited(client, crew):
    sid, admin, creator, root = crew["sid"], crew["admin"], crew["creator"], crew["root"]
    # Not admins of the stream: refused, nothing written, nothing logged.
    assert call(client, "PUT", f"/streams/{sid}", creator, {"name": "Mine"}) == \
        (403, {"error": "Admin access required"})
    assert call(client, "POST", f"/streams/{sid}/invites", creator, {"role": "viewer"})[0] == 403
    assert call(client, "POST", f"/streams/{sid}/invites", root, {"role": "viewer"}) == \
        (403, {"error": "Access denied"})                              # platform admins are no members
    assert db.fetch_one("SELECT name FROM streams WHERE id = %s", (sid,))["name"] == "Moderated"
    assert db.fetch_one("SELECT count(*) AS n FROM invites WHERE stream_id = %s", (sid,))["n"] == 0
    assert db.fetch_one("SELECT count(*) AS n FROM audit_log WHERE stream_id = %s", (sid,))["n"] == 0

    assert call(client, "PUT", f"/streams/{sid}", admin, {"name": "Renamed", "settings": {"a": 1}})[0] == 200
    status, invite = call(client, "POST", f"/streams/{sid}/invites", admin,
                          {"role": "viewer", "usage_limit": 5, "expires_at": None})
    assert status == 201
    code = invite["code"]
    assert call(client, "PUT", f"/streams/{sid}/invites/{code}", admin, {"role": "creator", "usage_limit": 9})[0] == 200
    assert call(client, "PUT", f"/streams/{sid}/invites/{code}", creator, {"usage_limit": 1})[0] == 403
    assert call(client, "DELETE", f"/streams/{sid}/invites/{code}", creator)[0] == 403
    assert call(client, "DELETE", f"/streams/{sid}/invites/{code}", admin)[0] == 204
    assert call(client, "DELETE", f"/streams/{sid}/invites/{code}", admin)[0] == 404     # gone: no entry

    status, log = call(client, "GET", f"/streams/{sid}/audit", admin)
    me = {"id": admin["user"]["id"], "email": admin["user"]["email"]}
    assert [(e["action"], e["target"], e["details"], e["actor"]) for e in reversed(log["entries"])] == [
        ("stream.update", {"type": "stream", "id": sid}, {"fields": ["name", "settings"], "name": "Renamed"}, me),
        ("invite.create", {"type": "invite", "id": code[:6]},
         {"role": "viewer", "expires_at": None, "usage_limit": 5}, me),
        ("invite.update", {"type": "invite", "id": code[:6]}, {"role": "creator", "usage_limit": 9}, me),
        ("invite.revoke", {"type": "invite", "id": code[:6]}, {"role": "creator", "use_count": 0}, me)]
    # The log platform admins read never hands out a working invite code.
    assert code not in raw(client, f"/admin/audit?stream_id={sid}", root)


def test_admin_deletes_of_videos_and_streams_are_audited(client, crew, make_video):
    sid, admin, creator = crew["sid"], crew["admin"], crew["creator"]
    theirs = str(make_video({"id": sid}, {"id": creator["user"]["id"]}, title="theirs")["id"])
    own = str(make_video({"id": sid}, {"id": creator["user"]["id"]}, title="own")["id"])
    assert call(client, "DELETE", f"/videos/{theirs}", crew["viewer"])[0] == 403
    assert audit_rows(theirs) == [] and db.fetch_one("SELECT deleted_at FROM videos WHERE id = %s",
                                                     (theirs,))["deleted_at"] is None
    assert call(client, "DELETE", f"/videos/{theirs}", admin)[0] == 204
    assert call(client, "DELETE", f"/videos/{own}", creator)[0] == 204       # their own: no admin action
    assert audit_rows(own) == []
    assert [(r["action"], str(r["actor_id"]), r["details"]) for r in audit_rows(theirs)] == \
        [("video.delete", admin["user"]["id"],
          {"title": "theirs", "uploaded_by": creator["user"]["id"], "hidden": False})]

    assert call(client, "DELETE", f"/streams/{sid}", creator) == (403, {"error": "Admin access required"})
    assert db.fetch_one("SELECT 1 FROM streams WHERE id = %s", (sid,)) is not None
    assert [r["action"] for r in audit_rows(sid)] == []
    assert call(client, "DELETE", f"/streams/{sid}", admin)[0] == 204
    assert db.fetch_one("SELECT 1 FROM streams WHERE id = %s", (sid,)) is None
    status, log = call(client, "GET", f"/admin/audit?action=stream.delete&target_id={sid}", crew["root"])
    assert [(e["actor"]["id"], e["stream_id"], e["details"]) for e in log["entries"]] == \
        [(admin["user"]["id"], sid, {"name": "Moderated", "videos_deleted": 1})]   # crew's video was left
    assert call(client, "GET", f"/streams/{sid}/audit", admin)[0] == 404      # the stream is gone, the entry stays
