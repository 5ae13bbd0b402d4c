"""The web pages as files: served with their headers, vendored players equal to npm's, no CDN."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chalicelib.api import web

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "tests" / "tools" / "node_modules"
VENDORED = {"hls.min.js": NODE / "hls.js" / "dist" / "hls.min.js",
            "swagger-ui-bundle.js": NODE / "swagger-ui-dist" / "swagger-ui-bundle.js",
            "swagger-ui.css": NODE / "swagger-ui-dist" / "swagger-ui.css"}


@pytest.mark.parametrize("name", sorted(VENDORED))
def test_vendored_files_are_the_npm_packages_files(name):
    """chalicelib/web carries the exact files of the versions tests/tools pins (refresh: copy them again)."""
    npm = VENDORED[name]
    assert npm.exists(), f"{npm} is missing: run `make node-tools`"
    assert (web.WEB / name).read_bytes() == npm.read_bytes(), f"chalicelib/web/{name} differs from {npm}"
    pinned = json.loads((ROOT / "tests" / "tools" / "package.json").read_text())["dependencies"]
    package = json.loads((npm.parents[1 if npm.parent.name == "dist" else 0] / "package.json").read_text())
    assert pinned[package["name"]] == package["version"]


def test_pages_load_nothing_from_elsewhere():
    """Every script and stylesheet a page names is one of ours, served under /web/assets/."""
    for page in web.PAGES.values():
        html = (web.WEB / page).read_text()
        refs = re.findall(r'(?:src|href)="([^"]+)"', html)
        for ref in refs:
            assert ref.startswith("/"), (page, ref)
            if ref.startswith("/web/assets/"):
                assert ref.removeprefix("/web/assets/") in web.ASSETS, (page, ref)
        assert "<script>" not in html and not re.search(r"\son[a-z]+=", html), page   # no inline code (CSP)
    for name in web.ASSETS:
        assert (web.WEB / name).exists(), name


@pytest.mark.parametrize("path", ["/web", "/web/upload", "/web/watch", "/docs"])
def test_pages_are_served_with_a_strict_policy(client, path):
    resp = client.http.get(path)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "http://127.0.0.1:" in csp.split("media-src", 1)[1].split(";")[0]   # storage's origin, for media
    assert resp.headers["X-Content-Type-Options"] == "nosniff" and resp.headers["Referrer-Policy"] == "no-referrer"
    assert b"<!doctype html>" in resp.body[:20]


def test_assets_are_cached_by_etag_and_nothing_else_is_served(client):
    resp = client.http.get("/web/assets/hls.min.js")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/javascript")
    assert len(resp.body) == VENDORED["hls.min.js"].stat().st_size
    etag = resp.headers["ETag"]
    again = client.http.get("/web/assets/hls.min.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.body
    assert client.http.get("/web/assets/style.css").headers["Content-Type"].startswith("text/css")
    for name in ("app.py", "..%2F..%2Fapp.py", "index.html", "hls.js", "%2e%2e", "x" * 300):
        resp = client.http.get(f"/web/assets/{name}")
        assert resp.status_code == 404 and json.loads(resp.body)["error"] == "Not found", name
