"""Delivery fixtures: real processed clips, a real browser (Debian's Chromium via Playwright).

Chromium is Debian's package (`make system-deps`); Playwright drives it and
never downloads a browser of its own. The background-networking flags keep
it from reaching out (connections to the outside are refused here), and each
session gets a new, empty profile.
"""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
import uuid
from pathlib import Path

import pytest
import requests

from tests.helpers import wait_for_fallbacks, wait_for_final
from tests.media import clips as make

ROOT = Path(__file__).resolve().parents[3]
HLS_JS = ROOT / "tests" / "tools" / "node_modules" / "hls.js" / "dist" / "hls.min.js"
SHAKA = ROOT / "tests" / "tools" / "node_modules" / "shaka-player" / "dist" / "shaka-player.compiled.js"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ADMIN_EMAIL = "admin@example.com"  # in ADMIN_EMAILS of the test stack


def chromium_path() -> str:
    path = shutil.which("chromium")
    if not path:
        pytest.fail("Debian's chromium is not installed: run `make system-deps`")
    return path


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """A headless Chromium context with a fresh profile, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=chromium_path(),
            args=CHROMIUM_ARGS, headless=True, viewport={"width": 1500, "height": 1000})
        yield context
        context.close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def player_site(tmp_path_factory):
    """A page with hls.js and Shaka Player (from npm, tests/tools) on its own origin, as a product's site would be."""
    if not HLS_JS.exists() or not SHAKA.exists():
        pytest.fail("hls.js or shaka-player is not installed: run `make node-tools`")
    site = tmp_path_factory.mktemp("player-site")
    shutil.copy(HLS_JS, site / "hls.min.js")
    shutil.copy(SHAKA, site / SHAKA.name)
    shutil.copy(Path(__file__).with_name("player.html"), site / "player.html")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def delivery_clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("delivery-clips")
    return {
        # 720p with sound, two 4 s segments and a short one: a 480p and a 720p rendition.
        "hd": make.make_clip(folder / "hd.mp4", scene="testsrc2", duration=9.0, size=(1280, 720), seed=41),
        "small": make.make_clip(folder / "small.mp4", scene="gradients", duration=3.0, size=(320, 180),
                                audio=False, seed=42),
        "not_video": make.text_as_mp4(folder / "not-video.mp4"),
    }


@pytest.fixture(scope="session")
def member(stack, google_key):
    """A signed-in user who owns a stream, with an upload() that goes the way clients go."""
    from chalice.test import Client

    import app as app_module
    from tests.conftest import _sign_in_with

    with Client(app_module.app, stage_name="local") as client:
        me = _sign_in_with(client, google_key)
        resp = client.http.post("/streams", headers=me["headers"], body=json.dumps({"name": "Delivery"}))
        assert resp.status_code == 201, resp.body
        stream_id = json.loads(resp.body)["id"]

        def upload(path: Path, title: str | None = None) -> str:
            data = path.read_bytes()
            resp = client.http.post(f"/streams/{stream_id}/videos", headers=me["headers"], body=json.dumps(
                {"title": title or path.stem, "filename": path.name, "size_bytes": len(data),
                 "content_type": "video/mp4"}))
            assert resp.status_code == 201, resp.body
            created = json.loads(resp.body)
            put = requests.put(created["upload_url"], data=data, headers={**created["upload_headers"], "Content-Type": "video/mp4"},
                               timeout=60)
            assert put.status_code == 200
            return created["id"]

        yield {"me": me, "stream_id": stream_id, "upload": upload, "client": client}


@pytest.fixture(scope="session")
def admin(stack, google_key):
    """A platform admin's sign-in (ADMIN_EMAILS)."""
    from chalice.test import Client

    import app as app_module
    from tests.conftest import _sign_in_with

    with Client(app_module.app, stage_name="local") as client:
        return _sign_in_with(client, google_key, ADMIN_EMAIL, "Operator")


@pytest.fixture(scope="session")
def speech_video(member, tmp_path_factory, live_api):
    """A processed 480p clip where someone speaks: its id and player URLs."""
    clip = make.make_clip(tmp_path_factory.mktemp("speech") / "callout.mp4", scene="testsrc2", duration=6.0,
                          size=(854, 480), speech="Enemy spotted on the left", seed=11)
    vid = member["upload"](clip, title="Callout")
    row = wait_for_final(vid, 240)
    assert row["status"] == "complete", row["failure_reason"]
    resp = member["client"].http.get(f"/videos/{vid}/stream", headers=member["me"]["headers"])
    assert resp.status_code == 200, resp.body
    return {"id": vid, **json.loads(resp.body)}


@pytest.fixture(scope="session")
def hd_video(member, delivery_clips, live_api):
    """A processed 720p clip: its id, execution name and player URL."""
    from chalicelib import db

    vid = member["upload"](delivery_clips["hd"], title="Clutch round")
    row = wait_for_final(vid, 240)
    assert row["status"] == "complete", row["failure_reason"]
    resp = member["client"].http.get(f"/videos/{vid}/stream", headers=member["me"]["headers"])
    assert resp.status_code == 200, resp.body
    # Playable before its MP4 fallbacks: the Fallbacks state writes them next.
    assert wait_for_fallbacks(vid)["status"] == "succeeded"
    execution = db.fetch_one("SELECT execution_name FROM pipeline_executions WHERE video_id = %s",
                             (vid,))["execution_name"]
    urls = json.loads(resp.body)
    return {"id": vid, "execution": execution, "hls_url": urls["hls_url"], "dash_url": urls["dash_url"],
            "row": row}


@pytest.fixture(scope="session")
def failed_video(member, delivery_clips):
    """A clip whose upload is not a video: its execution fails at Dedup with a reason."""
    from chalicelib import db

    vid = member["upload"](delivery_clips["not_video"], title="Not a video")
    row = wait_for_final(vid, 120)
    assert row["status"] == "failed"
    execution = db.fetch_one("SELECT execution_name FROM pipeline_executions WHERE video_id = %s",
                             (vid,))["execution_name"]
    return {"id": vid, "execution": execution, "row": row}


def unique_email() -> str:
    return f"viewer-{uuid.uuid4().hex[:10]}@example.com"
