"""Fixtures: a real local stack (Postgres, AWS emulator, deploy) on free ports.

The stack starts once per test session, only when a test asks for it; the
in-process API client and the handlers the emulator runs share its settings.
"""
from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

# Outcomes of the tests marked `attack` (a hostile caller's attempt): passed = refused as
# documented, failed = it got through. bench/results/reliability.json reports them.
ATTACKS: dict[str, bool] = {}


def pytest_runtest_logreport(report):
    if "attack" in report.keywords and (report.when == "call" or report.failed):
        ATTACKS[report.nodeid] = ATTACKS.get(report.nodeid, True) and report.passed


@pytest.fixture(scope="session")
def stack():
    """The whole local stack minus `chalice local`, torn down after the session.

    Its data lives in a fresh /tmp folder rather than pytest's tmp_path: the
    Postgres server runs as another user, and pytest re-restricts its own tmp
    root whenever another session starts.
    """
    import shutil

    from infra.local.stack import Stack, test_config

    s = Stack(test_config())
    s.start(api=False)
    yield s
    s.stop()
    shutil.rmtree(s.config.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def live_api(stack):
    """`chalice local` serving the API over HTTP against the test stack; its base URL."""
    stack._start_api()
    yield f"http://127.0.0.1:{stack.config.api_port}"


@pytest.fixture(scope="session")
def app(stack):
    import app as app_module
    return app_module.app


@pytest.fixture()
def client(app):
    """Chalice's in-process test client: the real routes against the real stack."""
    from chalice.test import Client

    with Client(app, stage_name="local") as c:
        yield c


@pytest.fixture(scope="session")
def s3(stack):
    import boto3
    return boto3.client("s3", endpoint_url=stack.env["S3_ENDPOINT_URL"])


@pytest.fixture(scope="session")
def sfn(stack):
    import boto3
    return boto3.client("stepfunctions", endpoint_url=stack.env["AWS_ENDPOINT_URL"])


@pytest.fixture()
def make_user(stack) -> Callable[..., dict]:
    """Insert a user row directly (for tests that do not exercise sign-in)."""
    from chalicelib import db

    def make(email: str | None = None, name: str = "Test User") -> dict:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        return db.fetch_one(
            "INSERT INTO users (email, name) VALUES (%s, %s) RETURNING *", (email, name))

    return make


@pytest.fixture()
def make_stream(stack) -> Callable[..., dict]:
    """Insert a stream owned by a user (admin member)."""
    from chalicelib import db

    def make(owner: dict, name: str = "Test stream") -> dict:
        with db.transaction() as cur:
            cur.execute("INSERT INTO streams (name, owner_id) VALUES (%s, %s) RETURNING *",
                        (name, owner["id"]))
            stream = cur.fetchone()
            cur.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, 'admin')",
                        (stream["id"], owner["id"]))
        return stream

    return make


@pytest.fixture()
def make_video(stack) -> Callable[..., dict]:
    """Insert a video row as POST /streams/{id}/videos would (processing_index 1)."""
    from chalicelib import db, storage

    def make(stream: dict, uploader: dict, title: str = "clip", ext: str = "mp4") -> dict:
        vid = str(uuid.uuid4())
        return db.fetch_one(
            "INSERT INTO videos (id, stream_id, uploaded_by, title, filename, content_type, ext,"
            " size_bytes, raw_key) VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s) RETURNING *",
            (vid, stream["id"], uploader["id"], title, f"{title}.{ext}", "video/mp4", ext,
             storage.raw_key(vid, ext)))

    return make


@pytest.fixture(scope="session")
def google_key(stack):
    """The local stack's Google signing key (mints Google-format ID tokens)."""
    return stack.google_key


def _sign_in_with(client, google_key, email: str | None = None, name: str | None = None) -> dict:
    """Sign in through POST /auth/verify; the response body plus ready headers."""
    import json

    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    resp = client.http.post("/auth/verify", headers={"Content-Type": "application/json"},
                            body=json.dumps({"id_token": google_key.mint(email, name)}))
    assert resp.status_code == 200, resp.body
    body = json.loads(resp.body)
    body["headers"] = {"Authorization": f"Bearer {body['app_token']}",
                       "Content-Type": "application/json"}
    return body


@pytest.fixture()
def sign_in(client, google_key) -> Callable[..., dict]:
    """Sign in through POST /auth/verify; returns the response body plus ready headers."""

    def sign(email: str | None = None, name: str | None = None) -> dict:
        return _sign_in_with(client, google_key, email, name)

    return sign


@pytest.fixture(scope="session")
def clips():
    """Six small, mutually unrelated real clips (2 s, 128x72, H.264 + AAC), made once."""
    import shutil
    import tempfile

    from tests.media import clips as make

    folder = Path(tempfile.mkdtemp(prefix="clipstream-clips-"))
    scenes = ["testsrc2", "life", "smptebars", "sierpinski", "gradients", "rgbtestsrc"]
    paths = [make.make_clip(folder / f"{i}-{scene}.mp4", scene=scene, duration=2.0, size=(128, 72),
                            seed=i + 1) for i, scene in enumerate(scenes)]
    yield paths
    shutil.rmtree(folder, ignore_errors=True)
