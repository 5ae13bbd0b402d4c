"""GET /openapi.json documents every route (fuzzed in tests/reliability/test_requests.py)."""
from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

from tests.helpers import call


def test_openapi_is_public_and_documents_every_route(client, app):
    resp = client.http.get("/openapi.json")
    assert resp.status_code == 200
    doc = json.loads(resp.body)
    assert doc["openapi"].startswith("3.0")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    routed = {(m, p) for p, methods in app.routes.items() for m in methods}
    assert documented == routed
    assert doc["components"]["securitySchemes"]["bearerAuth"] == \
        {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert doc["components"]["schemas"]["Error"]["required"] == ["error"]


def test_schema_entries_name_real_routes():
    """OPERATIONS holds no stale entries; routes without one still get a generated operation."""
    import app as app_module
    from chalicelib.api import openapi

    routed = {(m, p) for p, methods in app_module.app.routes.items() for m in methods}
    assert set(openapi.OPERATIONS) <= routed, sorted(set(openapi.OPERATIONS) - routed)


def test_main_operations_carry_schemas(client):
    doc = json.loads(client.http.get("/openapi.json").body)
    video = doc["paths"]["/videos/{video_id}"]
    assert video["put"]["requestBody"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/VideoUpdate"}
    assert video["get"]["parameters"][0] == \
        {"name": "video_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    assert set(video["delete"]["responses"]) >= {"204", "401", "403", "404"}
    assert doc["paths"]["/share/{code}"]["get"]["security"] == []
    assert set(doc["paths"]["/share/{code}"]["get"]["responses"]) >= {"200", "404", "410"}
    thumbnail = doc["paths"]["/files/videos/{video_id}/thumbnail"]["get"]["responses"]
    assert {"302", "304"} <= set(thumbnail) and "200" not in thumbnail
    assert "Location" in thumbnail["302"]["headers"]
    assert doc["paths"]["/streams/{stream_id}/videos"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"] == {"$ref": "#/components/schemas/VideoList"}
    assert "security" not in doc["paths"]["/system/storage"]["get"]          # bearer by default


def _json_schema(node):
    """An OpenAPI 3.0 schema as JSON Schema (draft 4): nullable becomes a null type."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _accepts(doc: dict, schema: dict, value) -> bool:
    import jsonschema

    root = _json_schema({**schema, "components": doc["components"]})
    validator = jsonschema.Draft4Validator(root, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    return validator.is_valid(value)


def _body_schema(doc: dict, method: str, path: str) -> dict:
    return doc["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]["schema"]


def _query_schema(doc: dict, method: str, path: str) -> dict:
    params = [p for p in doc["paths"][path][method.lower()]["parameters"] if p["in"] == "query"]
    return {"type": "object", "properties": {p["name"]: p["schema"] for p in params},
            "required": [p["name"] for p in params if p.get("required")]}


def test_the_documents_bounds_are_the_servers(client, sign_in, make_video):
    """Bodies and queries at the edges of what the document states: the server accepts exactly
    what the document allows (what schemathesis' full response checks found apart)."""
    doc = json.loads(client.http.get("/openapi.json").body)
    me = sign_in("admin@example.com")
    _, stream = call(client, "POST", "/streams", me, {"name": "Bounds"})
    sid = stream["id"]
    vid = str(make_video(stream, me["user"])["id"])
    _, invite = call(client, "POST", f"/streams/{sid}/invites", me, {"role": "viewer"})
    bodies = [   # (method, documented path, real path, body, the server's status)
        ("POST", "/streams", "/streams", {"name": " \t "}, 400),
        ("POST", "/streams", "/streams", {"name": "x\u0000y"}, 400),
        ("POST", "/streams", "/streams", {"name": "ok", "description": None}, 201),
        ("PUT", "/streams/{stream_id}", f"/streams/{sid}", {}, 400),
        ("PUT", "/streams/{stream_id}", f"/streams/{sid}", {"description": "new"}, 200),
        ("POST", "/streams/{stream_id}/invites", f"/streams/{sid}/invites", {}, 400),
        ("POST", "/streams/{stream_id}/invites", f"/streams/{sid}/invites",
         {"role": "viewer", "usage_limit": 1_000_001}, 400),
        ("POST", "/streams/{stream_id}/invites", f"/streams/{sid}/invites",
         {"role": "viewer", "expires_in_hours": 1, "expires_at": None}, 400),
        ("POST", "/streams/{stream_id}/invites", f"/streams/{sid}/invites",
         {"role": "viewer", "expires_in_hours": 0}, 400),
        ("POST", "/streams/{stream_id}/invites", f"/streams/{sid}/invites",
         {"role": "creator", "usage_limit": 1_000_000, "expires_at": None}, 201),
        ("PUT", "/streams/{stream_id}/invites/{code}", f"/streams/{sid}/invites/{invite['code']}", {}, 400),
        ("PUT", "/streams/{stream_id}/invites/{code}", f"/streams/{sid}/invites/{invite['code']}",
         {"usage_limit": None}, 200),
        ("PUT", "/videos/{video_id}", f"/videos/{vid}", {}, 400),
        ("PUT", "/videos/{video_id}", f"/videos/{vid}", {"version": 1}, 400),
        ("PUT", "/videos/{video_id}", f"/videos/{vid}", {"title": "\u0007 "}, 400),
        ("PUT", "/videos/{video_id}", f"/videos/{vid}", {"tags": ["ok", "\u0001"]}, 400),
        ("PUT", "/videos/{video_id}", f"/videos/{vid}", {"title": "Fine", "tags": ["a"]}, 200),
        ("POST", "/streams/{stream_id}/videos", f"/streams/{sid}/videos",
         {"filename": "clip.txt", "size_bytes": 1, "content_type": "video/mp4"}, 400),
        ("POST", "/streams/{stream_id}/videos", f"/streams/{sid}/videos",
         {"filename": "clip.mov", "size_bytes": 1, "content_type": "video/mp4"}, 400),
        ("POST", "/streams/{stream_id}/videos", f"/streams/{sid}/videos",
         {"filename": "clip.mp4", "size_bytes": 2 * 1024**3 + 1, "content_type": "video/mp4"}, 413),
        ("POST", "/streams/{stream_id}/videos", f"/streams/{sid}/videos",    # the title: all of the name
         {"filename": ".MP4", "size_bytes": 1, "content_type": "video/mp4"}, 201),
        ("POST", "/admin/processing/retry", "/admin/processing/retry", {}, 400),
        ("POST", "/admin/processing/retry", "/admin/processing/retry", {"video_ids": []}, 400),
        ("POST", "/admin/processing/retry", "/admin/processing/retry", {"video_id": None}, 400),
        ("POST", "/auth/refresh", "/auth/refresh", {"refresh_token": ""}, 400),
        ("POST", "/auth/logout", "/auth/logout", {"refresh_token": ""}, 400),
        ("POST", "/auth/verify", "/auth/verify", {}, 400),
        ("POST", "/auth/verify", "/auth/verify", {"id_token": "", "credential": ""}, 400),
        ("POST", "/sync", "/sync", {"video_id": vid, "operations": [{"type": "update_title", "value": 5}]},
         400),
        ("POST", "/sync", "/sync", {"video_id": vid, "operations": [{"type": "add_tag"}]}, 400),
        ("POST", "/sync", "/sync", {"video_id": vid,
                                    "operations": [{"type": "set_tags", "value": ["a", "b"]}]}, 200),
    ]
    for method, path, real, body, expected in bodies:
        status, answer = call(client, method, real, me, body)
        assert status == expected, (method, real, body, status, answer)
        documented = _accepts(doc, _body_schema(doc, method, path), body)
        assert documented == (status < 300), (method, path, body, status)
    uploaded = call(client, "GET", f"/streams/{sid}/videos", me)[1]["videos"]
    assert ".MP4" in {v["title"] for v in uploaded}
    queries = [  # (documented path, real path with query, the server's status)
        ("/streams", "/streams?limit=100", 200), ("/streams", "/streams?limit=101", 400),
        ("/streams", "/streams?page=100001", 400), ("/search", "/search?q=%20%20", 400),
        ("/search", "/search?q=" + "a" * 201, 400), ("/search", "/search?q=clip&limit=101", 400),
        ("/admin/audit", "/admin/audit?target_id=", 400), ("/admin/audit", "/admin/audit?action=", 400),
        ("/admin/reports", "/admin/reports?reason=", 400), ("/admin/audit", "/admin/audit?action=x", 200),
    ]
    for path, real, expected in queries:
        status, answer = call(client, "GET", real, me)
        assert status == expected, (real, status, answer)
        query = dict(parse_qsl(urlsplit(real).query, keep_blank_values=True))
        typed = {k: int(v) if k in ("page", "limit") else v for k, v in query.items()}
        assert _accepts(doc, _query_schema(doc, "GET", path), typed) == (status < 300), (real, status)


def test_the_document_states_the_request_rules(client):
    doc = json.loads(client.http.get("/openapi.json").body)
    text = doc["info"]["description"]
    assert "NUL" in text and "ignored" in text and "limit 1 to 100" in text
    paged = doc["paths"]["/streams"]["get"]["parameters"]
    assert {p["name"]: p["schema"]["maximum"] for p in paged} == {"page": 100_000, "limit": 100}
    for captions in ("/videos/{video_id}/captions.vtt", "/api/videos/{video_id}/dash/manifest.mpd"):
        assert "202" in doc["paths"][captions]["get"]["responses"]      # still processing
    assert "413" in doc["paths"]["/streams/{stream_id}/videos"]["post"]["responses"]


# Fuzzing every operation (schemathesis) lives in tests/reliability/test_requests.py.


def test_the_webhook_routes_answer_what_the_document_states(client, sign_in):
    """Real answers of the webhook routes validate against their documented schemas, and the
    create operation documents the event body and the three signature headers."""
    from chalicelib import db

    doc = json.loads(client.http.get("/openapi.json").body)
    me = sign_in()
    _, stream = call(client, "POST", "/streams", me, {"name": "Hooks"})
    base = f"/streams/{stream['id']}/webhooks"
    create = doc["paths"]["/streams/{stream_id}/webhooks"]["post"]
    for header in ("Clipstream-Webhook-Id", "Clipstream-Webhook-Timestamp", "Clipstream-Webhook-Signature"):
        assert header in create["description"]
    assert set(create["responses"]) >= {"201", "400", "401", "403", "404", "409"}
    good = {"url": "https://1.1.1.1/hook", "events": ["clip.ready", "video.ready", "video.ready"]}
    for body, documented in ((good, True), ({**good, "secret": "mine"}, False), ({**good, "events": []}, False),
                             ({**good, "events": ["video.exploded"]}, False), ({"events": ["clip.ready"]}, False)):
        assert _accepts(doc, _body_schema(doc, "POST", "/streams/{stream_id}/webhooks"), body) == documented
        status, answer = call(client, "POST", base, me, body)
        assert status == (201 if documented else 400), (body, status, answer)
    schemas = "#/components/schemas/"
    assert _accepts(doc, {"$ref": schemas + "WebhookCreated"}, answer := call(client, "POST", base, me, good)[1])
    assert answer["events"] == ["clip.ready", "video.ready"]
    status, listed = call(client, "GET", base, me)
    assert status == 200 and _accepts(doc, {"$ref": schemas + "WebhookList"}, listed)
    assert not _accepts(doc, {"$ref": schemas + "WebhookCreated"}, listed["webhooks"][0])   # no secret listed
    # A delivery with a failed attempt, as the delivery machine records it; then its replay (202).
    event = db.fetch_one("INSERT INTO webhook_events (stream_id, type, subject_id, payload)"
                         " VALUES (%s, 'clip.ready', gen_random_uuid(), '{}') RETURNING id", (stream["id"],))
    delivery = db.fetch_one("INSERT INTO webhook_deliveries (event_id, endpoint_id, status, finished_at)"
                            " VALUES (%s, %s, 'failed', now()) RETURNING id", (event["id"], answer["id"]))
    db.execute("INSERT INTO webhook_attempts (delivery_id, status_code, error, duration_ms)"
               " VALUES (%s, NULL, 'connection refused', 12)", (delivery["id"],))
    status, deliveries = call(client, "GET", f"{base}/{answer['id']}/deliveries", me)
    assert status == 200 and _accepts(doc, {"$ref": schemas + "WebhookDeliveryList"}, deliveries)
    assert deliveries["deliveries"][0]["attempts"][0]["status_code"] is None
    # The replay's attempt must reach no real host: a private address is refused before any connection.
    db.execute("UPDATE webhook_endpoints SET url = 'https://10.0.0.1/hook' WHERE id = %s", (answer["id"],))
    status, replay = call(client, "POST", f"{base}/{answer['id']}/deliveries/{delivery['id']}/replay", me)
    assert status == 202 and _accepts(doc, {"$ref": schemas + "WebhookDelivery"}, replay)
    assert call(client, "DELETE", f"{base}/{answer['id']}", me)[0] == 204      # its retries end: "gone"
    replay_op = doc["paths"]["/streams/{stream_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/replay"]["post"]
    assert "202" in replay_op["responses"] and "200" not in replay_op["responses"]
