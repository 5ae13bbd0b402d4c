"""`make dev` stopped mid-pipeline (Ctrl-C or kill -9) and started again loses nothing.

The stack runs as its own process (`python -m infra.local.stack`, as make dev
runs it) on free ports and a data folder of this test: the emulator is
process-global moto state, so the suite's own stack must not be it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from infra.local import persistence
from infra.local.postgres import LocalPostgres, free_port
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
KEYS = {"AWS_ACCESS_KEY_ID": "restart-test", "AWS_SECRET_ACCESS_KEY": "restart-test-secret"}


class DevStack:
    """One `python -m infra.local.stack` process at a time on fixed ports and a data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports = {name: free_port() for name in ("api", "emulator", "pg", "certs")}
        self.process: subprocess.Popen | None = None
        self.api = f"http://127.0.0.1:{self.ports['api']}"
        self.database_url = f"postgresql://postgres@127.0.0.1:{self.ports['pg']}/clipstream"
        self.starts = 0

    def start(self) -> None:
        from infra.local.stack import _suite_rate_limits
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "AWS_ENDPOINT_URL", "S3_ENDPOINT_URL", "STATE_MACHINE_ARN",
                            "CLIPS_STATE_MACHINE_ARN", "MOTO_PORT", "GOOGLE_CERTS_URL", "JWT_SECRET")}
        env.update(KEYS, RATE_LIMITS=_suite_rate_limits(), POWERTOOLS_LOG_LEVEL="WARNING")
        self.starts += 1
        log = open(self.data_dir / f"stack-{self.starts}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.local.stack", "--data-dir", str(self.data_dir),
             *[f"--{name}-port={port}" for name, port in self.ports.items()]],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

        def up() -> bool:
            assert self.process.poll() is None, self.log_tail()
            try:
                return requests.get(f"{self.api}/health", timeout=2).status_code < 500
            except requests.RequestException:
                return False
        wait_for(up, timeout_s=180, interval_s=0.5)

    def kill(self, signum: int) -> None:
        """SIGTERM: what Ctrl-C does. SIGKILL: the stack process dies at once; the
        Postgres and `chalice local` it started are left running, as after kill -9."""
        os.kill(self.process.pid, signum)
        self.process.wait(90)

    def log_tail(self) -> str:
        logs = sorted(self.data_dir.glob("stack-*.log"))
        return logs[-1].read_text(errors="replace")[-4000:] if logs else ""

    def cleanup(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        persistence.stop_stale_api(self.data_dir)
        LocalPostgres(self.data_dir / "pgdata").stop("immediate")

    # -- reading what the stack holds
    def sql(self, query: str, params: tuple = ()) -> list[dict]:
        import psycopg2
        import psycopg2.extras
        conn = psycopg2.connect(self.database_url, cursor_factory=psycopg2.extras.RealDictCursor)
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return [dict(r) for r in cur.fetchall()]
        finally:
            conn.close()

    def s3(self):
        import boto3
        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.ports['emulator']}",
                            region_name="us-east-1", aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"])

    def objects(self) -> dict[str, tuple]:
        """Every object of the bucket: key -> (sha256 of the bytes, ETag, Content-Type, Cache-Control)."""
        s3, out = self.s3(), {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="clipstream"):
            for obj in page.get("Contents", []):
                got = s3.get_object(Bucket="clipstream", Key=obj["Key"])
                out[obj["Key"]] = (hashlib.sha256(got["Body"].read()).hexdigest(), got["ETag"],
                                   got.get("ContentType"), got.get("CacheControl"))
        return out


@pytest.fixture()
def dev_stack():
    data_dir = Path(tempfile.mkdtemp(prefix="clipstream-restart-"))
    stack = DevStack(data_dir)
    yield stack
    stack.cleanup()
    shutil.rmtree(data_dir, ignore_errors=True)


def _upload_clip(stack: DevStack, clip: Path) -> str:
    """Sign in, create a stream and a video, PUT the bytes to the presigned URL; the video id."""
    from infra.local.google_keys import DevKey
    token = DevKey(stack.data_dir / "google-dev-key.pem").mint(f"restart-{uuid.uuid4().hex[:8]}@example.com")
    signed = requests.post(f"{stack.api}/auth/verify", json={"id_token": token}, timeout=30)
    assert signed.status_code == 200, signed.text
    who = {"Authorization": f"Bearer {signed.json()['app_token']}"}
    stream = requests.post(f"{stack.api}/streams", json={"name": "Restarts"}, headers=who, timeout=30)
    assert stream.status_code == 201, stream.text
    data = clip.read_bytes()
    video = requests.post(f"{stack.api}/streams/{stream.json()['id']}/videos", headers=who, timeout=30,
                          json={"filename": "restart.mp4", "size_bytes": len(data), "content_type": "video/mp4"})
    assert video.status_code == 201, video.text
    body = video.json()
    put = requests.put(body["upload_url"], data=data, headers=body["upload_headers"], timeout=60)
    assert put.status_code == 200, put.text
    return body["id"]


def _wait_final(stack: DevStack, video_id: str) -> dict:
    """The video's row once it is final and its execution has ended (a complete video's
    Fallbacks state stores the MP4s after playable: wait for its recorded outcome too)."""
    def final():
        rows = stack.sql("SELECT * FROM videos WHERE id = %s", (video_id,))
        if not rows or rows[0]["status"] not in ("complete", "duplicate", "failed"):
            return None
        pending = stack.sql(
            "SELECT 1 FROM pipeline_executions e WHERE e.video_id = %s AND e.status = 'succeeded'"
            " AND NOT EXISTS (SELECT 1 FROM stage_runs r WHERE r.video_id = e.video_id"
            "  AND r.execution_name = e.execution_name AND r.stage = 'mp4_fallbacks')", (video_id,))
        return None if rows[0]["status"] == "complete" and pending else rows[0]
    return wait_for(final, timeout_s=300, interval_s=0.5)


def _assert_rows_and_objects_agree(stack: DevStack) -> None:
    """Every object a row names exists; every object belongs to a live video."""
    keys = set(stack.objects())
    live = {str(r["id"]) for r in stack.sql("SELECT id FROM videos WHERE deleted_at IS NULL")}
    named = {r["raw_key"] for r in stack.sql("SELECT raw_key FROM videos WHERE deleted_at IS NULL")}
    named |= {r["key"] for r in stack.sql("SELECT key FROM video_assets")}
    named |= {r["clip_key"] for r in stack.sql("SELECT clip_key FROM moments WHERE clip_key IS NOT NULL")}
    assert named - keys == set(), "rows name objects that are gone"
    orphans = {k for k in keys if not any(v in k for v in live)}
    assert orphans == set(), "objects of no live video"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stack_restarted_mid_pipeline_finishes_the_video(dev_stack, signum, tmp_path):
    from tests.media.clips import make_clip
    clip = make_clip(tmp_path / "long.mp4", scene="testsrc2", duration=20.0, size=(640, 360), seed=7)
    dev_stack.start()
    video_id = _upload_clip(dev_stack, clip)

    def transcoding():
        # Transcode runs beside Transcribe -> Embed: look at the stage itself, not processing_index.
        [row] = dev_stack.sql("SELECT processing_index, status FROM videos WHERE id = %s", (video_id,))
        assert row["status"] not in ("complete", "failed", "duplicate"), row
        return bool(dev_stack.sql("SELECT 1 FROM stage_runs WHERE video_id = %s AND stage = 'transcode'"
                                  " AND status = 'running'", (video_id,)))
    wait_for(transcoding, timeout_s=180, interval_s=0.05)
    dev_stack.kill(signum)  # while the video is being transcoded

    dev_stack.start()  # on SIGKILL: stops the orphaned API server and restarts Postgres first
    video = _wait_final(dev_stack, video_id)
    assert video["status"] == "complete", (video["failure_reason"], dev_stack.log_tail())
    assert video["processing_index"] == 0 and video["failure_reason"] is None

    # The history says what happened: the cut attempt, then a resumed execution.
    executions = dev_stack.sql("SELECT execution_name, status FROM pipeline_executions WHERE video_id = %s"
                               " ORDER BY started_at", (video_id,))
    assert [e["status"] for e in executions] == ["interrupted", "succeeded"]
    assert "#retry" not in executions[0]["execution_name"] and "retry1" in executions[1]["execution_name"]
    runs = dev_stack.sql("SELECT stage, status, error, resumed FROM stage_runs WHERE video_id = %s"
                         " ORDER BY started_at, id", (video_id,))
    # The cut attempt failed: marked interrupted by the recovery, or (SIGTERM) by the step itself
    # when the emulator went away under it during the shutdown.
    cut = [r for r in runs if r["stage"] == "transcode" and r["status"] == "failed"]
    assert cut and (cut[0]["error"] == persistence.INTERRUPTED or signum == signal.SIGTERM), runs
    assert {"stage": "dedup", "status": "succeeded", "error": None, "resumed": True} in runs  # not redone
    assert not [r for r in runs if r["status"] == "running"]
    assert dev_stack.sql("SELECT id FROM idempotency_records WHERE status = 'INPROGRESS'") == []
    _assert_rows_and_objects_agree(dev_stack)

    if signum == signal.SIGTERM:
        # A finished video survives a restart byte for byte, and nothing runs again.
        before = dev_stack.objects()
        assert any(k.endswith(".m3u8") for k in before) and any("thumbnail" in k for k in before)
        dev_stack.kill(signal.SIGTERM)
        dev_stack.start()
        assert dev_stack.objects() == before
        assert len(dev_stack.sql("SELECT 1 FROM pipeline_executions WHERE video_id = %s", (video_id,))) == 2
        [again] = dev_stack.sql("SELECT status, processing_index FROM videos WHERE id = %s", (video_id,))
        assert again == {"status": "complete", "processing_index": 0}
