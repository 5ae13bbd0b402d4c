"""GET /openapi.json documents every route; schemathesis fuzzes every operation for 5xx."""
from __future__ import annotations

import json
import os
import time

import requests

from tests.api.test_videos import call


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
    assert "image/jpeg" in doc["paths"]["/files/videos/{video_id}/thumbnail"]["get"]["responses"]["200"]["content"]
    assert doc["paths"]["/streams/{stream_id}/videos"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"] == {"$ref": "#/components/schemas/VideoList"}
    assert "security" not in doc["paths"]["/system/storage"]["get"]          # bearer by default


# ---------------------------------------------------------------- fuzzing

# Deleting the fixtures mid-run would only turn later cases into 404s.
_KEEP_IDS_REAL = {"DELETE"}


def test_no_operation_answers_a_server_error(live_api, client, sign_in, make_video, s3):
    """Every operation, positive and negative cases, with a valid bearer token: never 5xx."""
    import hypothesis
    import hypothesis.errors
    from hypothesis import strategies as st
    import schemathesis
    from schemathesis import GenerationMode

    me = sign_in("admin@example.com")                         # platform admin: admin routes run too
    status, stream = call(client, "POST", "/streams", me, {"name": "Fuzz"})
    assert status == 201
    video = make_video(stream, me["user"])
    s3.put_object(Bucket="clipstream", Key=f"thumbnails/{video['id']}_processing.jpg", Body=b"\xff\xd8")
    real = {"stream_id": stream["id"], "video_id": str(video["id"]), "user_id": me["user"]["id"]}
    auth = {"Authorization": me["headers"]["Authorization"]}

    # from_url leaves out the schema's own path; from_dict of the served document fuzzes it too.
    served = requests.get(f"{live_api}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(served)
    failures: dict[str, str] = {}                             # first failing input per operation
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in operations} == \
        {(m.upper(), p) for p, ms in served["paths"].items() for m in ms}

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = st.tuples(operation.as_strategy(generation_mode=mode), st.booleans())

            @hypothesis.settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "15")), deadline=None, database=None, derandomize=True,
                                 suppress_health_check=list(hypothesis.HealthCheck))
            @hypothesis.given(strategy)
            def run(drawn):
                case, use_real_ids = drawn
                if use_real_ids and case.method.upper() not in _KEEP_IDS_REAL and case.path_parameters:
                    for name in case.path_parameters:
                        if name in real:
                            case.path_parameters[name] = real[name]
                response = case.call(base_url=live_api, headers=auth, timeout=30)
                if response.status_code >= 500:
                    failures.setdefault(
                        f"{response.status_code} {case.method} {operation.path}",
                        f"{case.formatted_path} query={case.query} body={case.body!r:.200}: {response.text[:200]}")

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                # An operation without inputs has no invalid ones to generate.
                assert mode is GenerationMode.NEGATIVE, f"{operation.method} {operation.path}"
    elapsed = time.monotonic() - started
    assert not failures, "\n".join(f"{op} <- {example}" for op, example in sorted(failures.items()))
    assert elapsed < 180, f"fuzzing took {elapsed:.0f}s"
