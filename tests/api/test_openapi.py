"""GET /openapi.json documents every route (fuzzed in tests/reliability/test_requests.py)."""
from __future__ import annotations

import json


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


# Fuzzing every operation (schemathesis) lives in tests/reliability/test_requests.py.
