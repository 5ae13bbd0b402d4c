"""GET / and GET /health check every part for real (reference/000 Health & System)."""
from __future__ import annotations

import json


def test_health_reports_every_part(client):
    resp = client.http.get("/health")
    assert resp.status_code == 200
    body = json.loads(resp.body)
    assert body["status"] == "healthy"
    assert body["database"] == "connected"
    assert body["storage"] == "available"
    assert body["ffmpeg"] == "ready"
    assert "uptime" in body
    assert resp.headers["Cache-Control"] == "no-store"


def test_root_is_the_health_check(client):
    resp = client.http.get("/")
    assert resp.status_code == 200
    assert json.loads(resp.body)["status"] == "healthy"


def test_health_503_when_postgres_is_down(client, stack):
    from chalicelib import db

    stack.postgres.stop()
    try:
        db.close()
        resp = client.http.get("/health")
        assert resp.status_code == 503
        body = json.loads(resp.body)
        assert body["status"] == "unhealthy"
        assert body["issues"] == ["database_connection_failed"]
        assert body["storage"] == "available"
    finally:
        stack.postgres.start()
    resp = client.http.get("/health")
    assert resp.status_code == 200, resp.body


def test_health_503_when_the_bucket_is_gone(client, stack, monkeypatch):
    from chalicelib.config import get_settings, reset_settings

    monkeypatch.setenv("BUCKET_NAME", "no-such-bucket")
    reset_settings()
    try:
        assert get_settings().bucket == "no-such-bucket"
        resp = client.http.get("/health")
        assert resp.status_code == 503
        assert json.loads(resp.body)["issues"] == ["storage_unavailable"]
    finally:
        monkeypatch.undo()
        reset_settings()


def test_health_over_http(live_api):
    import urllib.request

    with urllib.request.urlopen(f"{live_api}/health", timeout=10) as resp:
        assert resp.status == 200
        assert json.loads(resp.read())["database"] == "connected"


def test_unknown_route_is_json(client):
    resp = client.http.get("/no/such/route")
    assert resp.status_code in (403, 404)
