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


# ------------------------------------------------------------------ in AWS: the FFmpeg function's readiness
# An API function in AWS carries no FFmpeg, so /health asks Lambda whether the
# transcode function is ready. A child process without imageio-ffmpeg (and no
# ffmpeg on PATH) stands for that container, against the emulator's Lambda.

_AWS_STYLE_HEALTH = r"""
import json, os, sys
sys.modules["imageio_ffmpeg"] = None          # as in an API function's package: not importable
from chalicelib.api import health
from chalicelib.config import reset_settings

calls = []
health._lambda().meta.events.register(
    "before-send.lambda.GetFunctionConfiguration", lambda **kw: calls.append(1))
out = {"ffmpeg_path": health._ffmpeg_path(), "results": []}
for name in json.loads(sys.argv[1]):
    os.environ.pop("TRANSCODE_FUNCTION_NAME", None)
    if name:
        os.environ["TRANSCODE_FUNCTION_NAME"] = name
    reset_settings()
    before = len(calls)
    first, second = health.check(), health.check()
    out["results"].append({"first": first, "second": second, "lambda_calls": len(calls) - before})
print(json.dumps(out))
"""


def _aws_style_health(stack, tmp_path, names: list) -> dict:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, **stack.env, "PATH": str(tmp_path), "PYTHONPATH": str(root)}
    result = subprocess.run([sys.executable, "-c", _AWS_STYLE_HEALTH, json.dumps(names)], cwd=root,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_ffmpeg_health_asks_lambda_for_the_transcode_function(stack, tmp_path):
    from infra.local.deploy import full_name

    transcode = full_name("clipstream", stack.config.stage, "pipeline_transcode")
    out = _aws_style_health(stack, tmp_path, [transcode, "clipstream-nowhere-pipeline_transcode", None])
    assert out["ffmpeg_path"] is None
    ready, unknown, unset = out["results"]

    status, body = ready["first"]
    assert status == 200, body
    assert (body["status"], body["ffmpeg"], body["database"], body["storage"]) == \
        ("healthy", "ready", "connected", "available")
    assert ready["second"][0] == 200
    assert ready["lambda_calls"] == 1          # the second check came from the container's cache

    status, body = unknown["first"]
    assert status == 503
    assert body["issues"] == ["ffmpeg_unavailable"] and body["ffmpeg"] == "unavailable"
    assert body["database"] == "connected" and body["storage"] == "available"
    assert unknown["lambda_calls"] == 1

    status, body = unset["first"]              # no FFmpeg and no function to ask: not ready
    assert status == 503 and body["issues"] == ["ffmpeg_unavailable"]
    assert unset["lambda_calls"] == 0


def test_a_function_is_ready_only_when_active_and_its_last_update_succeeded():
    from chalicelib.api.health import function_ready

    assert function_ready({"State": "Active", "LastUpdateStatus": "Successful"})
    assert not function_ready({"State": "Pending", "LastUpdateStatus": "InProgress"})
    assert not function_ready({"State": "Active", "LastUpdateStatus": "Failed"})
    assert not function_ready({"State": "Inactive", "LastUpdateStatus": "Successful"})
    assert not function_ready({"State": "Failed"})
