"""Views and analytics (chalicelib.api.analytics): counting, watch time, aggregates, who may read them."""
from __future__ import annotations

import threading
import uuid

import pytest

from chalicelib import db
from tests.api.test_videos import add_member
from tests.helpers import call


def complete(vid: str, duration: float = 30.0) -> None:
    db.execute("UPDATE videos SET processing_index = 0, status = 'complete', duration_s = %s,"
               " bitrates = '{480}' WHERE id = %s", (duration, vid))


def backdate(vid: str, minutes: int = 31) -> None:
    """Move the video's views into an earlier window, as if the viewer came back later."""
    db.execute("UPDATE video_views SET window_start = window_start - make_interval(mins => %s),"
               " created_at = created_at - make_interval(mins => %s) WHERE video_id = %s",
               (minutes, minutes, vid))


@pytest.fixture()
def crew(client, sign_in, make_video):
    """A stream: admin, a creator who uploaded two complete videos, two viewers, an outsider."""
    admin, creator, viewer, fan, outsider = (sign_in() for _ in range(5))
    status, stream = call(client, "POST", "/streams", admin, {"name": "Analytics"})
    assert status == 201
    add_member(stream["id"], creator, "creator")
    add_member(stream["id"], viewer, "viewer")
    add_member(stream["id"], fan, "viewer")
    uploader = {"id": creator["user"]["id"]}
    first, second = (str(make_video(stream, uploader, title=t)["id"]) for t in ("ace", "clutch"))
    complete(first, 30.0)
    complete(second, 12.0)
    return {"sid": stream["id"], "admin": admin, "creator": creator, "viewer": viewer, "fan": fan,
            "outsider": outsider, "first": first, "second": second}


def view(client, crew, who, vid, seconds=None):
    body = {} if seconds is None else {"watch_seconds": seconds}
    return call(client, "POST", f"/videos/{vid}/views", crew[who], body)


# ---------------------------------------------------------------- recording

def test_one_view_per_viewer_per_window_with_watch_time_capped_by_duration(client, crew):
    vid = crew["first"]
    status, first = view(client, crew, "viewer", vid, 10)
    assert status == 200 and first["counted"] is True and first["watch_seconds"] == 10
    assert first["window_start"].endswith("Z")
    status, again = view(client, crew, "viewer", vid, 12.5)   # progress of the same view
    assert status == 200 and again["counted"] is False and again["watch_seconds"] == 22.5
    status, capped = view(client, crew, "viewer", vid, 100)   # never more than the 30 s clip
    assert capped["watch_seconds"] == 30
    assert view(client, crew, "viewer", vid)[1] == {**capped, "counted": False}  # a bare ping
    backdate(vid)
    status, later = view(client, crew, "viewer", vid, 5)      # next window: a new view
    assert later["counted"] is True and later["watch_seconds"] == 5
    rows = db.fetch_all("SELECT watch_seconds FROM video_views WHERE video_id = %s ORDER BY window_start", (vid,))
    assert [r["watch_seconds"] for r in rows] == [30, 5]


def test_concurrent_reports_of_one_viewer_count_one_view(crew):
    """Many tabs reporting at once (each thread its own connection): one view, all the watch time."""
    from chalicelib.api import analytics

    user = {"id": crew["fan"]["user"]["id"]}
    barrier = threading.Barrier(8)
    counted: list[bool] = []

    def tab() -> None:
        try:
            barrier.wait()
            counted.append(analytics.record_view(user, crew["first"], {"watch_seconds": 2})["counted"])
        finally:
            db.close()

    threads = [threading.Thread(target=tab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(counted) == [False] * 7 + [True]
    row = db.fetch_one("SELECT count(*) AS n, sum(watch_seconds) AS s FROM video_views"
                       " WHERE video_id = %s AND user_id = %s", (crew["first"], user["id"]))
    assert (row["n"], row["s"]) == (1, 16)


@pytest.mark.parametrize("body,detail", [
    ({"watch_seconds": -1}, "watch_seconds must be a number from 0 to 86400"),
    ({"watch_seconds": "10"}, "watch_seconds must be a number from 0 to 86400"),
    ({"watch_seconds": True}, "watch_seconds must be a number from 0 to 86400"),
    ({"watch_seconds": 86401}, "watch_seconds must be a number from 0 to 86400"),
    ({"watch_seconds": 3, "position": 9}, "unknown field: position"),
])
def test_bad_view_reports_are_400(client, crew, body, detail):
    status, resp = call(client, "POST", f"/videos/{crew['first']}/views", crew["viewer"], body)
    assert status == 400 and resp["error"] == "Invalid view report" and detail in resp["details"]
    assert db.fetch_one("SELECT count(*) AS n FROM video_views WHERE video_id = %s", (crew["first"],))["n"] == 0


def test_views_need_access_and_a_playable_video(client, crew, make_video):
    path = f"/videos/{crew['first']}/views"
    assert call(client, "POST", path, crew["outsider"], {}) == (403, {"error": "Access denied"})
    assert call(client, "POST", path, None, {})[0] == 401
    assert call(client, "POST", f"/videos/{uuid.uuid4()}/views", crew["viewer"], {}) == \
        (404, {"error": "Video not found"})
    pending = make_video({"id": crew["sid"]}, {"id": crew["creator"]["user"]["id"]}, title="pending")
    status, body = call(client, "POST", f"/videos/{pending['id']}/views", crew["viewer"], {})
    assert status == 409 and body == {"error": "Video is not ready for playback", "processing_index": 1}
    db.execute("UPDATE videos SET hidden_at = now() WHERE id = %s", (crew["first"],))
    assert call(client, "POST", path, crew["viewer"], {}) == (404, {"error": "Video not found"})


# ---------------------------------------------------------------- reading

def test_video_analytics_totals_unique_viewers_and_days(client, crew):
    vid = crew["first"]
    view(client, crew, "viewer", vid, 20)
    view(client, crew, "fan", vid, 10)
    backdate(vid, 60 * 24 * 2)                  # those two were the day before yesterday
    view(client, crew, "viewer", vid, 4)
    status, body = call(client, "GET", f"/videos/{vid}/analytics", crew["creator"])
    assert status == 200
    assert {k: body[k] for k in ("video_id", "views", "unique_viewers", "watch_seconds",
                                 "average_watch_seconds", "duration", "days")} == \
        {"video_id": vid, "views": 3, "unique_viewers": 2, "watch_seconds": 34.0,
         "average_watch_seconds": round(34 / 3, 3), "duration": 30.0, "days": 30}
    assert body["average_completion"] == round(34 / 3 / 30, 4)
    assert [(d["views"], d["unique_viewers"], d["watch_seconds"]) for d in body["by_day"]] == \
        [(2, 2, 30.0), (1, 1, 4.0)]
    assert body["by_day"][0]["date"] < body["by_day"][1]["date"]
    status, recent = call(client, "GET", f"/videos/{vid}/analytics?days=1", crew["admin"])
    assert status == 200 and recent["views"] == 3 and [d["views"] for d in recent["by_day"]] == [1]
    status, other = call(client, "GET", f"/videos/{crew['second']}/analytics", crew["admin"])
    assert (other["views"], other["average_completion"], other["by_day"]) == (0, None, [])


def test_only_the_uploader_and_stream_admins_see_video_analytics(client, crew):
    path = f"/videos/{crew['first']}/analytics"
    assert call(client, "GET", path, crew["viewer"]) == \
        (403, {"error": "Only the uploader or a stream admin can see analytics"})
    assert call(client, "GET", path, crew["outsider"]) == (403, {"error": "Access denied"})
    assert call(client, "GET", path)[0] == 401
    assert call(client, "GET", f"/videos/{uuid.uuid4()}/analytics", crew["admin"])[0] == 404
    for bad in ("0", "366", "x"):
        status, body = call(client, "GET", f"{path}?days={bad}", crew["admin"])
        assert status == 400 and body["details"] == ["days must be an integer from 1 to 365"]


def test_stream_analytics_for_creators_and_admins(client, crew):
    view(client, crew, "viewer", crew["first"], 8)
    view(client, crew, "fan", crew["first"], 8)
    view(client, crew, "viewer", crew["second"], 20)      # capped at 12 s
    for who in ("creator", "admin"):
        status, body = call(client, "GET", f"/streams/{crew['sid']}/analytics", crew[who])
        assert status == 200
        assert (body["views"], body["unique_viewers"], body["watch_seconds"], body["videos_watched"]) == \
            (3, 2, 28.0, 2)
        assert [(v["id"], v["views"]) for v in body["top_videos"]] == [(crew["first"], 2), (crew["second"], 1)]
        assert body["by_day"][-1]["views"] == 3
    assert call(client, "GET", f"/streams/{crew['sid']}/analytics", crew["viewer"]) == \
        (403, {"error": "Creator access required"})
    assert call(client, "GET", f"/streams/{crew['sid']}/analytics", crew["outsider"]) == \
        (403, {"error": "Access denied"})
    assert call(client, "GET", f"/streams/{uuid.uuid4()}/analytics", crew["admin"]) == \
        (404, {"error": "Stream not found"})
    db.execute("UPDATE videos SET hidden_at = now() WHERE id = %s", (crew["second"],))
    body = call(client, "GET", f"/streams/{crew['sid']}/analytics", crew["creator"])[1]
    assert [v["id"] for v in body["top_videos"]] == [crew["first"]] and body["views"] == 3


def test_users_see_their_own_numbers(client, crew):
    view(client, crew, "viewer", crew["first"], 8)
    view(client, crew, "viewer", crew["second"], 3)
    view(client, crew, "fan", crew["first"], 1)
    status, creator = call(client, "GET", "/users/me/analytics", crew["creator"])
    assert status == 200 and creator["user_id"] == crew["creator"]["user"]["id"]
    assert creator["uploads"] == {"videos": 2, "views": 3, "unique_viewers": 2, "watch_seconds": 12.0,
                                  "average_watch_seconds": 4.0}
    assert creator["watching"] == {"views": 0, "videos": 0, "watch_seconds": 0.0}
    assert [v["id"] for v in creator["top_videos"]] == [crew["first"], crew["second"]]
    status, viewer = call(client, "GET", "/users/me/analytics", crew["viewer"])
    assert viewer["watching"] == {"views": 2, "videos": 2, "watch_seconds": 11.0}
    assert viewer["uploads"]["views"] == 0 and viewer["top_videos"] == []
    assert call(client, "GET", "/users/me/analytics")[0] == 401
