"""Ingest from a URL: POST /streams/{id}/videos with source_url, fetched by the ingest_url function.

Sources are served by the test's own HTTP server on 127.0.0.1. The stack refuses
private addresses (loopback included) unless OUTBOUND_ALLOW_HOSTS names them; the
`local_sources` fixture allow-lists 127.0.0.1 (and http) for the tests that need a
source, as a developer would for `make dev`. Everything else is what AWS runs.
"""
from __future__ import annotations

import http.server
import os
import threading
import time
import uuid
from urllib.parse import urlparse

import pytest

from tests.helpers import call, video_row, wait_for, wait_for_final

CLIP = "clip.mp4"


class _Source(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    clip = b""
    hits: dict[str, int] = {}

    def log_message(self, *args):
        pass

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        self.hits[self.path] = self.hits.get(self.path, 0) + 1
        if path == "/clip.mp4":
            self._send(200, {"Content-Type": "video/mp4", "Content-Length": str(len(self.clip))}, self.clip)
        elif path == "/redirect":          # to wherever ?... says
            self._send(302, {"Location": query, "Content-Length": "0"})
        elif path.startswith("/loop"):
            n = int(path[len("/loop"):] or 0)
            self._send(302, {"Location": f"/loop{n + 1}", "Content-Length": "0"})
        elif path == "/huge.mp4":          # declares 3 GB: refused before a byte is read
            self._send(200, {"Content-Type": "video/mp4", "Content-Length": str(3 * 1024**3)}, b"\0" * 1024)
            self.close_connection = True
        elif path == "/endless.mp4":       # no length at all: read until the connection closes
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for _ in range(400):
                    self.wfile.write(b"\0" * 1024)
            except OSError:
                pass
        elif path == "/short.mp4":         # declares the whole clip, sends a tenth, hangs up
            self._send(200, {"Content-Type": "video/mp4", "Content-Length": str(len(self.clip))},
                       self.clip[:len(self.clip) // 10])
            self.close_connection = True
        elif path == "/notes.mp4":         # named like a video, is text
            body = b"these are my notes, not a video\n" * 40
            self._send(200, {"Content-Type": "video/mp4", "Content-Length": str(len(body))}, body)
        else:
            self._send(404, {"Content-Type": "text/plain", "Content-Length": "9"}, b"not found")


@pytest.fixture(scope="module")
def source(clips):
    """The base URL of a local HTTP server that serves sources (and lies about some)."""
    _Source.clip = clips[2].read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _settings(**env: str | None):
    """Set (or unset) settings for the stack's handlers, which live in this process; undo with the result."""
    from chalicelib.config import reset_settings
    before = {k: os.environ.get(k) for k in env}
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    reset_settings()

    def undo():
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reset_settings()
    return undo


@pytest.fixture()
def local_sources(stack):
    """The local-only allow-list: http, and 127.0.0.1 though it is loopback (never set in AWS)."""
    undo = _settings(OUTBOUND_ALLOW_HTTP="1", OUTBOUND_ALLOW_HOSTS="127.0.0.1")
    yield
    undo()


@pytest.fixture()
def strict(stack):
    """What AWS runs with: https only, public addresses only."""
    undo = _settings(OUTBOUND_ALLOW_HTTP=None, OUTBOUND_ALLOW_HOSTS=None)
    yield
    undo()


@pytest.fixture()
def small_quota(stack):
    """A 100 000-byte storage quota per user, so a source can outgrow it here (the 2 GB limit cannot)."""
    undo = _settings(USER_STORAGE_QUOTA_BYTES="100000")
    yield 100_000
    undo()


@pytest.fixture()
def creator(sign_in, make_stream):
    me = sign_in()
    return me, make_stream({"id": me["user"]["id"]})


def _ingest(client, me, stream, url, **extra):
    return call(client, "POST", f"/streams/{stream['id']}/videos", me, {"source_url": url, **extra})


def _nothing_stored(video: dict) -> None:
    from chalicelib import db, storage
    assert storage.head(video["raw_key"]) is None
    assert storage.open_multipart_uploads(video["raw_key"]) == []
    assert db.fetch_one("SELECT 1 FROM pipeline_executions WHERE video_id = %s", (video["id"],)) is None


def _failed_with(client, me, video_id: str, reason: str) -> dict:
    row = wait_for_final(video_id, 60)
    assert (row["status"], row["failed_stage"]) == ("failed", "ingest"), row
    assert row["failure_public"] == reason
    status, body = call(client, "GET", f"/videos/{video_id}/processing", me)
    assert status == 200 and body["failure_reason"] == reason and body["status"] == "failed"
    assert "failure_detail" not in body          # the detail (hosts, URLs) is for platform admins
    _nothing_stored(row)
    return row


def test_a_source_url_is_fetched_and_processed_to_ready(client, creator, source, local_sources):
    me, stream = creator
    status, body = _ingest(client, me, stream, f"{source}/{CLIP}", title="From the web")
    assert status == 201, body
    assert body["processing_index"] == 1 and body["status"] == "queued"
    assert body["source_url"] == f"{source}/{CLIP}" and body["max_size"] == "2GB"
    assert "upload_url" not in body
    row = wait_for_final(body["id"], 120)
    assert (row["status"], row["processing_index"]) == ("complete", 0), row
    assert row["title"] == "From the web" and row["filename"] == CLIP
    assert row["raw_key"] == f"raw-uploads/{body['id']}.mp4"
    assert row["size_bytes"] == len(_Source.clip)           # the fetched size, recorded before the trigger
    status, urls = call(client, "GET", f"/videos/{body['id']}/stream", me)
    assert status == 200, urls
    player = urlparse(urls["hls_url"])
    master = client.http.get(f"{player.path}?{player.query}")
    assert master.status_code == 200 and master.body.startswith(b"#EXTM3U")


def test_a_default_title_comes_from_the_url(client, creator, source, local_sources):
    me, stream = creator
    status, body = _ingest(client, me, stream, f"{source}/{CLIP}?token=abc")
    assert status == 201, body
    assert video_row(body["id"])["title"] == "clip"
    wait_for_final(body["id"], 120)


@pytest.mark.attack
@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/",     # the metadata service
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.5/clip.mp4",                   # private
    "https://192.168.1.1/clip.mp4",
    "https://[::ffff:10.0.0.5]/clip.mp4",           # private, IPv4-mapped
    "https://localhost/clip.mp4",                  # loopback by name
    "https://127.0.0.1/clip.mp4",
    "https://user:pw@example.com/clip.mp4",          # credentials
    "ftp://example.com/clip.mp4",
    "file:///etc/passwd",
    "http://example.com/clip.mp4",                  # http where it is not configured
    "not a url",
    "",
])
def test_a_refused_url_is_400_and_creates_nothing(client, creator, strict, url):
    me, stream = creator
    from chalicelib import db
    before = db.fetch_one("SELECT count(*) AS n FROM videos WHERE stream_id = %s", (stream["id"],))["n"]
    status, body = _ingest(client, me, stream, url)
    assert status == 400, body
    assert body["error"] == "Invalid source URL" and body["details"][0].startswith("source_url: ")
    assert db.fetch_one("SELECT count(*) AS n FROM videos WHERE stream_id = %s", (stream["id"],))["n"] == before


@pytest.mark.attack
def test_the_allow_list_admits_only_what_it_names(client, creator, source, local_sources):
    """127.0.0.1 is allow-listed for the local tests; other loopback and private addresses are not."""
    me, stream = creator
    port = urlparse(source).port
    for url in (f"http://127.0.0.2:{port}/{CLIP}", "http://169.254.169.254/latest/meta-data/",
                "http://10.1.2.3/clip.mp4", f"http://[::1]:{port}/{CLIP}"):
        status, body = _ingest(client, me, stream, url)
        assert status == 400 and body["details"] == [
            f"source_url: the host {urlparse(url).hostname} resolves to an address that is not public"], (url, body)


def test_bad_fields_are_400(client, creator, source, local_sources):
    me, stream = creator
    url = f"{source}/{CLIP}"
    for extra, detail in (({"filename": "a.mp4", "size_bytes": 10}, "source_url replaces filename, size_bytes"),
                          ({"upload": "multipart"}, "source_url replaces upload"),
                          ({"title": ""}, "title must be a non-empty string"),
                          ({"title": "x" * 201}, "title must be at most 200 characters")):
        status, body = _ingest(client, me, stream, url, **extra)
        assert status == 400 and detail in body["details"][0], (extra, body)
    status, body = _ingest(client, me, stream, 12)
    assert status == 400 and body["error"] == "Invalid source URL"


@pytest.mark.attack
def test_viewer_and_outsider_cannot_ingest(client, creator, sign_in, source, local_sources):
    from chalicelib import db
    me, stream = creator
    viewer, outsider = sign_in(), sign_in()
    db.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, 'viewer')",
               (stream["id"], viewer["user"]["id"]))
    url = f"{source}/{CLIP}?who=intruder"
    assert _ingest(client, viewer, stream, url) == (403, {"error": "Creator access required"})
    assert _ingest(client, outsider, stream, url) == (403, {"error": "Access denied"})
    assert _ingest(client, me, {"id": str(uuid.uuid4())}, url) == (404, {"error": "Stream not found"})
    assert call(client, "POST", f"/streams/{stream['id']}/videos", None, {"source_url": url})[0] == 401
    time.sleep(0.5)
    assert _Source.hits.get("/clip.mp4?who=intruder", 0) == 0 and \
        db.fetch_one("SELECT count(*) AS n FROM videos WHERE stream_id = %s", (stream["id"],))["n"] == 0


@pytest.mark.attack
def test_a_redirect_to_a_private_address_fails_the_video(client, creator, source, local_sources):
    me, stream = creator
    for target in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/clip.mp4"):
        status, body = _ingest(client, me, stream, f"{source}/redirect?{target}")
        assert status == 201, body                       # the URL itself is fine: the fetch finds out
        row = _failed_with(client, me, body["id"], "the source URL could not be fetched: it is not a public address")
        assert "resolves to an address that is not public" in row["failure_reason"]


def test_too_many_redirects_fail_the_video(client, creator, source, local_sources):
    me, stream = creator
    status, body = _ingest(client, me, stream, f"{source}/loop0")
    assert status == 201
    _failed_with(client, me, body["id"], "the source URL could not be fetched: too many redirects")
    assert _Source.hits.get("/loop3") == 1 and "/loop4" not in _Source.hits    # 3 redirects followed, no more


def test_a_source_declaring_more_than_the_upload_limit_fails_unread(client, creator, source, local_sources):
    me, stream = creator
    status, body = _ingest(client, me, stream, f"{source}/huge.mp4")
    assert status == 201
    row = _failed_with(client, me, body["id"], "video too large")
    assert f"larger than {2 * 1024**3} bytes" in row["failure_reason"]


@pytest.mark.attack
def test_a_source_past_the_quota_fails_declared_or_not(client, creator, source, local_sources, small_quota):
    """Without a length the fetch stops at the quota's room; with one it does not start."""
    me, stream = creator
    for path in ("/endless.mp4", f"/{CLIP}?big"):
        if path.endswith("?big"):
            assert len(_Source.clip) > 0
            _settings(USER_STORAGE_QUOTA_BYTES=str(len(_Source.clip) - 1))   # undone by small_quota
        status, body = _ingest(client, me, stream, f"{source}{path}")
        assert status == 201, body
        row = _failed_with(client, me, body["id"], "the source URL could not be fetched: storage quota exceeded")
        assert row["size_bytes"] == 0


@pytest.mark.attack
def test_a_source_that_sends_less_than_it_declares_fails(client, creator, source, local_sources):
    me, stream = creator
    status, body = _ingest(client, me, stream, f"{source}/short.mp4")
    assert status == 201
    _failed_with(client, me, body["id"], "the source URL could not be fetched: the connection failed")


def test_a_source_answering_an_error_fails(client, creator, source, local_sources):
    me, stream = creator
    status, body = _ingest(client, me, stream, f"{source}/gone.mp4")
    assert status == 201
    row = _failed_with(client, me, body["id"], "the source URL could not be fetched: the source answered with an error")
    assert "HTTP 404" in row["failure_reason"]


def test_not_a_video_fails_in_dedup_with_its_reason(client, creator, source, local_sources):
    me, stream = creator
    status, body = _ingest(client, me, stream, f"{source}/notes.mp4")
    assert status == 201
    row = wait_for_final(body["id"], 60)
    assert (row["status"], row["failure_public"]) == ("failed", "not a video file"), row
    assert row["failed_stage"] == "dedup"


def test_a_repeated_invocation_fetches_nothing(client, creator, source, local_sources):
    """Lambda may deliver an async invocation twice: the second finds the pipeline started."""
    from chalicelib.pipeline import ingest
    me, stream = creator
    status, body = _ingest(client, me, stream, f"{source}/{CLIP}?late")
    assert status == 201
    row = wait_for(lambda: (r := video_row(body["id"])) and r["status"] != "queued" and r, 120)
    assert ingest.run({"video_id": body["id"], "source_url": f"{source}/{CLIP}?late"})["outcome"] == "ignored"
    assert _Source.hits.get("/clip.mp4?late") == 1
    wait_for_final(body["id"], 120)
    assert row is not None
