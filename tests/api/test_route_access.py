"""Every route, called by every kind of caller, answers as chalicelib/api/routes.py declares.

One real stream (admin, creator, viewer, and a member that member and ban
routes act on), a real video uploaded by the creator, an invite, a share link
made by the creator, a report, a moment and a ban; plus a stranger, a platform
admin (a member of nothing) and an anonymous caller. A caller the rule lets in
must not be refused (401, 403, or the 404 that hides a stream or video); a
caller below it gets 401 when anonymous and 403/404 otherwise. Routes that
change things run against a fresh world per caller, so one caller's success
does not decide the next one's answer.
"""
from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from chalicelib.api import routes
from tests.helpers import call

README = Path(__file__).resolve().parents[2] / "README.md"
# The 404s chalicelib.access answers instead of 403 for ids the caller may not learn about.
HIDING_404 = {"Video not found", "Stream not found"}


def test_every_route_is_declared(app):
    missing, stale = routes.undeclared(app.routes)
    assert not missing, f"routes without an access rule in chalicelib/api/routes.py: {missing}"
    assert not stale, f"declarations without a route: {stale}"


def test_every_route_maps_domain_errors_to_the_contract(app):
    """@handles_errors on every route: without it a domain error would be a 500, not its JSON error."""
    bare = sorted(f"{method} {path} ({entry.view_function.__name__})"
                  for path, methods in app.routes.items() for method, entry in methods.items()
                  if not getattr(entry.view_function, "maps_contract_errors", False))
    assert not bare, f"routes without @handles_errors in app.py: {bare}"


def test_derived_views_follow_the_declaration(client):
    from chalicelib.api import ratelimit

    doc = json.loads(client.http.get("/openapi.json").body)
    for (method, path), route in routes.ROUTES.items():
        op = doc["paths"][path][method.lower()]
        assert ("security" in op and op["security"] == []) == (route.rule in routes.NO_BEARER), (method, path)
        # 401 for every route behind a rule (public ones document theirs: a bad Google or refresh token)
        assert route.rule == routes.ANYONE or "401" in op["responses"], (method, path)
        assert ("429" in op["responses"]) == (route.limit is not None), (method, path)
        assert op["x-access"] == routes.RULES[route.rule]
        assert ratelimit.group_of(method, path) == route.limit, (method, path)


def test_readme_shows_the_declared_table():
    text = README.read_text()
    start = text.index("<!-- route-access:start -->\n") + len("<!-- route-access:start -->\n")
    end = text.index("<!-- route-access:end -->")
    assert text[start:end] == routes.markdown(), \
        "README route table is stale: python -m chalicelib.api.routes prints the current one"


# ---------------------------------------------------------------- the world

@pytest.fixture()
def people(sign_in):
    """The callers that are not stream members: signed in once."""
    return {"stranger": sign_in(), "platform_admin": sign_in("admin@example.com")}


@pytest.fixture()
def world(client, make_user, make_stream, make_video, google_key):
    """build(): a fresh stream with its members, video, invite, share, report, moment and ban."""
    from chalicelib import db
    from chalicelib.auth import tokens

    def person() -> dict:
        user = make_user()
        token, _ = tokens.issue_access_token(user)
        return {"user": {"id": str(user["id"])}, "headers": {"Authorization": f"Bearer {token}"}}

    def build() -> dict:
        admin, creator, viewer, target, outcast = (person() for _ in range(5))
        stream = make_stream(admin["user"], name="Access")
        sid = str(stream["id"])
        for who, role in ((creator, "creator"), (viewer, "viewer"), (target, "viewer")):
            db.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, %s)",
                       (sid, who["user"]["id"], role))
        with db.transaction() as cur:
            viewer["refresh_token"] = tokens.issue_refresh_token(cur, viewer["user"]["id"])
        video = make_video(stream, creator["user"])
        vid = str(video["id"])
        # A resumable upload of 12 MiB in 5 MiB parts, open (its routes act on it).
        from chalicelib.api import multipart
        video = db.fetch_one("UPDATE videos SET size_bytes = %s WHERE id = %s RETURNING *", (12 * 2**20, vid))
        upload_id = multipart._start(video, 5 * 2**20)["upload_id"]
        status, invite = call(client, "POST", f"/streams/{sid}/invites", admin, {"role": "viewer"})
        assert status == 201, invite
        status, share = call(client, "POST", f"/videos/{vid}/share", creator, {})
        assert status == 201, share
        status, report = call(client, "POST", f"/videos/{vid}/report", viewer, {"reason": "spam"})
        assert status == 201, report
        moment = db.fetch_one("INSERT INTO moments (video_id, start_s, end_s, title, score, reason)"
                              " VALUES (%s, 0, 1, 'm', 1, 'speech') RETURNING id", (vid,))
        db.execute("INSERT INTO stream_bans (stream_id, user_id, reason) VALUES (%s, %s, 'x')",
                   (sid, outcast["user"]["id"]))
        # A webhook endpoint with one delivered event (its routes act on them).
        hook = db.fetch_one("INSERT INTO webhook_endpoints (stream_id, url, events, secret)"
                            " VALUES (%s, 'https://example.com/hook', '{video.ready}', 'whsec_x') RETURNING id",
                            (sid,))
        event = db.fetch_one("INSERT INTO webhook_events (stream_id, type, subject_id, payload)"
                             " VALUES (%s, 'video.ready', %s, '{}') RETURNING id", (sid, vid))
        delivery = db.fetch_one("INSERT INTO webhook_deliveries (event_id, endpoint_id, status)"
                                " VALUES (%s, %s, 'succeeded') RETURNING id", (event["id"], hook["id"]))
        return {"admin": admin, "creator": creator, "viewer": viewer, "target": target,
                "stream_id": sid, "video_id": vid, "invite_code": invite["code"],
                "share_id": share["id"], "share_code": share["share_url"].rstrip("/").split("/")[-1],
                "report_id": report["id"], "moment_id": str(moment["id"]), "upload_id": upload_id,
                "outcast_id": outcast["user"]["id"],
                "webhook_id": str(hook["id"]), "delivery_id": str(delivery["id"]),
                "id_token": google_key.mint(f"new-{uuid.uuid4().hex[:10]}@example.com")}

    return build


def _path(method: str, template: str, w: dict) -> str:
    values = {"stream_id": w["stream_id"], "video_id": w["video_id"], "share_id": w["share_id"],
              "report_id": w["report_id"], "moment_id": w["moment_id"],
              "webhook_id": w["webhook_id"], "delivery_id": w["delivery_id"], "quality": "720p", "segment": "00000.vtt", "name": "app.js",
              "user_id": w["outcast_id"] if template.endswith("/bans/{user_id}") else w["target"]["user"]["id"],
              "code": w["share_code"] if template.startswith("/share/") else w["invite_code"]}
    path = re.sub(r"{([^}]+)}", lambda m: values[m.group(1)], template)
    if (method, template) == ("GET", "/sync"):
        path += f"?video_id={w['video_id']}"
    if template.startswith("/search"):
        path += "?q=clip"
    if template == "/videos/{video_id}/multipart":
        path += f"?upload_id={w['upload_id']}"
    return path


def _body(method: str, template: str, w: dict) -> dict | None:
    bodies = {
        ("POST", "/auth/verify"): {"id_token": w["id_token"]},
        ("POST", "/auth/refresh"): {"refresh_token": w["viewer"]["refresh_token"]},
        ("POST", "/auth/logout"): {"refresh_token": w["viewer"]["refresh_token"]},
        ("POST", "/streams"): {"name": "Mine"},
        ("PUT", "/streams/{stream_id}"): {"name": "Renamed"},
        ("PUT", "/streams/{stream_id}/members/{user_id}"): {"role": "creator"},
        ("POST", "/streams/{stream_id}/invites"): {"role": "viewer"},
        ("PUT", "/streams/{stream_id}/invites/{code}"): {"usage_limit": 5},
        ("PUT", "/streams/{stream_id}/glossary"): {"terms": ["Dust 2"]},
        ("POST", "/streams/{stream_id}/videos"): {"filename": "a.mp4", "size_bytes": 10,
                                                  "content_type": "video/mp4"},
        ("PUT", "/videos/{video_id}"): {"title": "Renamed"},
        ("POST", "/videos/{video_id}/multipart/complete"): {"upload_id": w["upload_id"],
                                                            "parts": [{"part_number": 1, "etag": "x"}]},
        ("POST", "/videos/{video_id}/thumbnail"): {"content_type": "image/png", "size_bytes": 100},
        ("PUT", "/videos/{video_id}/thumbnail"): {"upload_id": str(uuid.uuid4())},   # 404 past the access check
        ("POST", "/sync"): {"video_id": w["video_id"],
                            "operations": [{"id": "op-1", "type": "update_title", "value": "Synced"}]},
        ("POST", "/videos/{video_id}/report"): {"reason": "spam"},
        ("POST", "/streams/{stream_id}/bans"): {"user_id": w["target"]["user"]["id"]},
        ("POST", "/admin/videos/{video_id}/hide"): {"reason": "checking"},
        ("POST", "/admin/processing/retry"): {"video_id": w["video_id"]},
        ("POST", "/webhooks/minio/upload-complete"): {"Records": []},
    }
    if (method, template) in bodies:
        return bodies[(method, template)]
    return {} if method in ("POST", "PUT") else None


def _caller(kind: str, w: dict, people: dict) -> dict | None:
    if kind == "anonymous":
        return None
    if kind in people:
        return people[kind]
    return w["admin" if kind == "stream_admin" else kind]


def _judge(route: routes.Route, kind: str, status: int, body: dict | None) -> str | None:
    """Why the answer disagrees with the declaration, or None."""
    error = (body or {}).get("error") if isinstance(body, dict) else None
    if status >= 500:
        return f"{status} {error}"
    if kind in routes.ALLOWED[route.rule]:
        if status in (401, 403) or (status == 404 and error in HIDING_404):
            return f"refused {status} {error}"
        return None
    if kind == "anonymous" or route.rule == routes.WEBHOOK:
        return None if status == 401 else f"let in ({status}), expected 401"
    return None if status in (403, 404) else f"let in ({status}), expected 403/404"


def _request(client, method: str, path: str, who: dict | None, body: dict | None):
    headers = {"Content-Type": "application/json", **(who["headers"] if who else {})}
    kwargs = {"headers": headers}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    resp = getattr(client.http, method.lower())(path, **kwargs)
    try:
        parsed = json.loads(resp.body) if resp.body else None
    except (ValueError, UnicodeDecodeError):
        parsed = None
    return resp.status_code, parsed


def test_every_route_answers_every_caller_as_declared(client, world, people):
    """The whole table: 6 callers x every route, on a real stream and video.

    GETs share one world. A route that changes things gets a world that the
    callers below its rule try first (so a refusal that still changed
    something shows up as the next caller's wrong answer), then a fresh world
    for each caller it lets in.
    """
    shared = world()
    wrong: list[str] = []
    answers: dict[tuple[str, str], dict[str, int]] = {}
    for (method, template), route in sorted(routes.ROUTES.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        allowed = routes.ALLOWED[route.rule]
        w = shared if method == "GET" else world()
        fresh = False
        for kind in sorted(routes.CALLERS, key=lambda k: k in allowed):   # refused callers first
            if method != "GET" and kind in allowed:
                w, fresh = (world() if fresh else w), True
            status, body = _request(client, method, _path(method, template, w), _caller(kind, w, people),
                                    _body(method, template, w))
            answers.setdefault((method, template), {})[kind] = status
            why = _judge(route, kind, status, body)
            if why:
                wrong.append(f"{method} {template} as {kind} ({route.rule}): {why}")
    assert not wrong, "\n".join(wrong)
    # Every rule that admits someone was seen admitting them with a success on some route
    # (playback needs a processed video: its routes answer 409 here, after the access check).
    for rule, allowed in routes.ALLOWED.items():
        if rule == routes.PLAYBACK:
            continue
        ok = {kind for (m, p), by in answers.items() if routes.ROUTES[(m, p)].rule == rule
              for kind, status in by.items() if status < 400}
        assert allowed <= ok, (rule, sorted(allowed - ok))


def test_playback_token_lets_an_anonymous_player_in(client, world):
    """PLAYBACK routes: no bearer, but the token GET /videos/{id}/stream would hand out."""
    from chalicelib.api import hls

    w = world()
    token = hls.playback_token(w["viewer"]["user"]["id"], w["video_id"])
    for (method, template), route in routes.ROUTES.items():
        if route.rule != routes.PLAYBACK:
            continue
        path = _path(method, template, w)
        status, body = _request(client, method, f"{path}?token={token}", None, None)
        assert status not in (401, 403) and status < 500, (template, status, body)
        other = hls.playback_token(w["viewer"]["user"]["id"], str(uuid.uuid4()))   # a token for another video
        status, body = _request(client, method, f"{path}?token={other}", None, None)
        assert status == 401, (template, status, body)
