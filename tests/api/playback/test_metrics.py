"""GET /metrics: Prometheus text exposition of what Postgres records, for platform admins."""
from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_parse_and_match_the_records(hd_video, failed_video, admin, live_api):
    from chalicelib import db

    resp = requests.get(f"{live_api}/metrics", headers={"Authorization": admin["headers"]["Authorization"]},
                        timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert resp.headers["Cache-Control"] == "no-store"
    families = _families(resp.text)
    assert families["clipstream_videos"].type == "gauge"
    assert families["clipstream_uploads"].type == "counter"
    assert families["clipstream_stage_failures"].type == "counter"
    assert families["clipstream_stage_duration_seconds"].type == "histogram"

    videos = {s.labels["status"]: s.value for s in families["clipstream_videos"].samples}
    expected = {r["status"]: r["n"] for r in db.fetch_all(
        "SELECT status, count(*) AS n FROM videos WHERE deleted_at IS NULL GROUP BY status")}
    assert videos == expected and videos["complete"] >= 1 and videos["failed"] >= 1

    uploads = {s.labels["status"]: s.value for s in families["clipstream_uploads"].samples
               if s.name == "clipstream_uploads_total"}
    assert uploads["succeeded"] >= 1 and uploads["failed"] >= 1

    failures = {s.labels["stage"]: s.value for s in families["clipstream_stage_failures"].samples
                if s.name == "clipstream_stage_failures_total"}
    assert failures["dedup"] == db.fetch_one(
        "SELECT count(*) AS n FROM stage_runs WHERE stage = 'dedup' AND status = 'failed' AND NOT resumed")["n"]

    samples = [s for s in families["clipstream_stage_duration_seconds"].samples
               if s.labels["stage"] == "transcode"]
    buckets = [(s.labels["le"], s.value) for s in samples if s.name.endswith("_bucket")]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and buckets[-1][0] == "+Inf"         # cumulative, ending in +Inf
    count = next(s.value for s in samples if s.name.endswith("_count"))
    total = next(s.value for s in samples if s.name.endswith("_sum"))
    recorded = db.fetch_one(
        "SELECT count(*) AS n, sum(extract(epoch FROM finished_at - started_at))::float8 AS s FROM stage_runs"
        " WHERE stage = 'transcode' AND finished_at IS NOT NULL AND NOT resumed")
    assert counts[-1] == count == recorded["n"] and total == pytest.approx(recorded["s"], rel=1e-6)
    # The 9 s clip's transcode took longer than the smallest bucket and fits in the largest finite one.
    assert dict(buckets)["0.25"] < count and dict(buckets)["900.0"] == count


def test_metrics_are_for_platform_admins(member, live_api):
    assert requests.get(f"{live_api}/metrics", timeout=10).status_code == 401
    member_auth = {"Authorization": member["me"]["headers"]["Authorization"]}
    resp = requests.get(f"{live_api}/metrics", headers=member_auth, timeout=10)
    assert resp.status_code == 403 and resp.json()["error"]
