"""The web pages in headless Chromium: sign in, upload through the page, watch, switch quality, captions,
scrub-bar previews, transcript seeking, the MP4 fallback without MSE, and /docs. Screenshots are kept."""
from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.media import clips as make

SHOTS = Path(os.environ.get("WEB_SCREENSHOTS_DIR", "")) if os.environ.get("WEB_SCREENSHOTS_DIR") else None


def _open(browser, *, no_mse: bool = False):
    """A page that records script errors and every request's origin."""
    page = browser.new_page()
    page.errors, page.origins = [], set()
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda msg: msg.type == "error" and not msg.text.startswith("Failed to load resource")
            and page.errors.append(msg.text))
    # A 404 thumbnail is the documented "none yet" (a clip that failed before any frame was made, from
    # another test in the same stream): the page keeps its grey box. Any other failed response counts.
    page.on("response", lambda resp: resp.status >= 400 and not (resp.status == 404 and resp.url.endswith("/thumbnail"))
            and page.errors.append(f"{resp.status} {resp.url}"))
    page.on("request", lambda request: request.url.startswith(("blob:", "data:"))
            or page.origins.add("{0.scheme}://{0.netloc}".format(urlsplit(request.url))))
    if no_mse:   # a browser with neither Media Source Extensions nor HLS of its own (some TVs, old browsers)
        page.add_init_script("delete window.MediaSource; delete window.ManagedMediaSource;"
                             " delete window.WebKitMediaSource;"
                             " const can = HTMLMediaElement.prototype.canPlayType;"
                             " HTMLMediaElement.prototype.canPlayType = function (t) {"
                             "   return /mpegurl/i.test(t) ? '' : can.call(this, t); };")
    return page


def _sign_in(page, live_api, token):
    page.goto(f"{live_api}/web")
    page.evaluate("localStorage.clear()")
    page.reload()
    page.fill("#sign-in-token", token)
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#sign-out", timeout=15_000)


def _until(page, expression, timeout=15_000):
    """Poll a JS expression until it is truthy (wait_for_function evaluates strings with eval,
    which the pages' Content-Security-Policy refuses)."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"never true: {expression}; errors {page.errors}")
        time.sleep(0.2)


def _wait(page, selector, timeout_ms):
    """wait_for_selector, failing with what the page said."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    try:
        page.wait_for_selector(selector, timeout=timeout_ms)
    except PlaywrightTimeout:
        raise AssertionError(f"{selector} never came: message {page.inner_text('#message')!r}, "
                             f"errors {page.errors}") from None


def _shot(page, tmp_path, name):
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / name), full_page=True)
    assert path.stat().st_size > 10_000
    print(f"screenshot: {path}")
    return path


@pytest.fixture(scope="module")
def uploaded(browser, live_api, member, google_key, tmp_path_factory, hd_video):
    """A clip uploaded through /web/upload by the member (signed in on the page with a Google ID token)."""
    clip = make.make_clip(tmp_path_factory.mktemp("web-upload") / "flank.mp4", scene="testsrc2", duration=8.0,
                          size=(854, 480), speech="Watch the flank, they are pushing through the tunnel", seed=77)
    tmp = tmp_path_factory.mktemp("web-shots")
    page = _open(browser)
    try:
        _sign_in(page, live_api, google_key.mint(member["me"]["user"]["email"]))
        page.goto(f"{live_api}/web/upload?stream={member['stream_id']}")
        page.wait_for_selector("body[data-loaded=true]")
        assert page.input_value("#stream") == member["stream_id"]
        page.set_input_files("#file", str(clip))
        page.fill("#video-title", "Flank callout")
        page.click("#start-upload")
        _wait(page, "body[data-uploaded=true]", 60_000)
        assert page.evaluate("document.getElementById('upload-progress').value") == 100 and page.inner_text("#upload-percent") == "100%"
        video_id = page.evaluate("document.body.dataset.video")
        _wait(page, "#watch-link", 240_000)
        states = dict(page.eval_on_selector_all("#stages li", "ls => ls.map(l => [l.dataset.stage, l.dataset.state])"))
        assert states == {"upload": "done", "dedup": "done", "transcode": "done", "transcribe": "done",
                          "embed": "done", "complete": "done"}, states
        _shot(page, tmp, "upload.png")
        assert page.errors == []
        assert page.origins <= {live_api, member_storage(member)}, page.origins
    finally:
        page.close()
    return {"id": video_id, "shots": tmp}


def member_storage(member) -> str:
    from chalicelib.api.web import storage_origin
    return storage_origin()


def test_upload_page_puts_the_clip_and_follows_processing(uploaded, member):
    from chalicelib import db
    row = db.fetch_one("SELECT title, status, stream_id::text AS sid, uploaded_by::text AS by FROM videos"
                       " WHERE id = %s", (uploaded["id"],))
    assert row == {"title": "Flank callout", "status": "complete", "sid": member["stream_id"],
                   "by": member["me"]["user"]["id"]}


def test_watch_page_plays_switches_quality_shows_captions_previews_and_seeks(browser, live_api, member, uploaded):
    page = _open(browser)
    try:
        page.goto(f"{live_api}/web#token={member['me']['app_token']}")   # an app token in the fragment
        page.wait_for_selector("body[data-loaded=true]")
        assert "token=" not in page.url
        card = page.locator(f'a.clip[data-video="{uploaded["id"]}"]')
        assert "Flank callout" in card.inner_text() and "complete" in card.inner_text()
        _until(page, f"""document.querySelector('a.clip[data-video="{uploaded["id"]}"] img').naturalWidth > 0""")
        _shot(page, uploaded["shots"], "clips.png")
        card.click()
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        assert page.evaluate("document.body.dataset.player") == "hls"
        assert page.inner_text("#title") == "Flank callout"
        page.evaluate("const v = document.getElementById('video'); v.muted = true; v.play()")
        _until(page, "document.getElementById('video').currentTime > 0.5", timeout=30_000)
        # The quality menu lists the ladder (480p source: 360p and 480p) and switches to the one picked.
        options = page.eval_on_selector_all("#quality option", "os => os.map(o => o.textContent)")
        assert options == ["Auto", "360p", "480p"]
        page.evaluate("const v = document.getElementById('video'); v.currentTime = 0; v.play()")
        page.select_option("#quality", label="360p")
        _until(page, "document.body.dataset.level === '360p' && "
                               "document.getElementById('video').videoHeight === 360", timeout=30_000)
        page.evaluate("const v = document.getElementById('video'); v.currentTime = 0; v.play()")
        page.select_option("#quality", label="480p")
        _until(page, "document.body.dataset.level === '480p' && "
                               "document.getElementById('video').videoHeight === 480", timeout=30_000)
        # Captions: the HLS SUBTITLES rendition, shown as a text track with the spoken words.
        _until(page, "!document.getElementById('captions').disabled", timeout=15_000)
        page.check("#captions")
        page.evaluate("const v = document.getElementById('video'); v.currentTime = 0; v.play()")
        tracks = "[...document.getElementById('video').textTracks]"
        try:
            _until(page, f"{tracks}.some(t => t.mode === 'showing' && t.cues && t.cues.length > 0)", timeout=30_000)
        finally:
            shown = page.evaluate(f"{tracks}.map(t => [t.kind, t.mode, [...(t.cues || [])].map(c => c.text)])")
            print("text tracks:", shown, page.evaluate("window.player.hls.subtitleTracks.length"))
        assert any(mode == "showing" and "tunnel" in " ".join(cues).lower() for _, mode, cues in shown), shown
        # Storyboard previews on the scrub bar.
        _until(page, "Number(document.body.dataset.storyboard) > 0", timeout=15_000)
        box = page.locator("#scrub").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
        preview = page.locator("#preview")
        assert preview.is_visible()
        assert "url(" in preview.evaluate("p => p.style.backgroundImage") and int(preview.get_attribute("data-cue")) > 0
        loaded = page.evaluate("""() => new Promise(ok => { const i = new Image(); i.onload = () => ok(i.naturalWidth);
            i.onerror = () => ok(0); i.src = window.player.cues[0].url; })""")
        assert loaded > 0                                  # the sprite URL really serves an image
        _shot(page, uploaded["shots"], "watch.png")
        # The transcript seeks the player to where it is said.
        segment = page.locator("#transcript button").last
        start = float(segment.get_attribute("data-start"))
        page.evaluate("const v = document.getElementById('video'); v.pause(); v.currentTime = 0")
        segment.click()
        _until(page, f"Math.abs(document.getElementById('video').currentTime - {start}) < 1.5")
        assert page.locator("#transcript button").count() >= 1
        # Similar clips: other complete clips of the member's streams, linked to their watch pages.
        links = page.eval_on_selector_all("#similar a", "as => as.map(a => a.getAttribute('href'))")
        assert links and all(h.startswith("/web/watch?video=") for h in links)
        assert page.errors == [], page.errors
        assert page.origins <= {live_api, member_storage(member)}, page.origins
    finally:
        page.close()


def test_without_mse_the_watch_page_falls_back_to_mp4(browser, live_api, member, uploaded):
    page = _open(browser, no_mse=True)
    try:
        page.goto(f"{live_api}/web/watch?video={uploaded['id']}#token={member['me']['app_token']}")
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        assert page.evaluate("document.body.dataset.player") == "mp4"
        assert member_storage(member) in page.origins           # the MP4's bytes come from storage
        src = page.evaluate("document.getElementById('video').currentSrc")
        assert src.startswith(f"{live_api}/api/videos/{uploaded['id']}/stream/480p?token=")   # 302 to storage
        page.evaluate("const v = document.getElementById('video'); v.muted = true; v.play()")
        _until(page, "document.getElementById('video').currentTime > 0.5", timeout=30_000)
        assert page.evaluate("document.getElementById('video').videoHeight") == 480
        page.select_option("#quality", label="360p")
        _until(page, "document.getElementById('video').videoHeight === 360", timeout=30_000)
        page.check("#captions")
        _until(page, """[...document.getElementById('video').textTracks].some(t => t.mode === 'showing'
            && t.cues && t.cues.length > 0)""", timeout=15_000)
        assert page.errors == [], page.errors
    finally:
        page.close()


def test_docs_renders_the_openapi_document(browser, live_api, uploaded):
    page = _open(browser)
    try:
        page.goto(f"{live_api}/docs")
        page.wait_for_selector("body[data-loaded=true]", timeout=30_000)
        page.wait_for_selector(".opblock", timeout=30_000)
        assert page.locator(".opblock").count() > 80
        assert page.locator('.opblock-summary-path[data-path="/videos/{video_id}/thumbnail"]').count() == 3
        _shot(page, uploaded["shots"], "docs.png")
        assert page.origins == {live_api}, page.origins      # no CDN, no validator.swagger.io
        assert page.errors == [], page.errors
    finally:
        page.close()


def test_pages_refuse_a_bad_token_and_show_nothing(browser, live_api, member):
    page = _open(browser)
    try:
        page.goto(f"{live_api}/web")
        page.evaluate("localStorage.clear()")                # the profile is shared with the other tests
        page.reload()
        page.fill("#sign-in-token", "not-a-token")
        page.click("#sign-in button[type=submit]")
        _until(page, "document.getElementById('sign-in-message').textContent.includes('401')")
        assert page.locator("a.clip").count() == 0
        page.goto(f"{live_api}/web/watch?video={member['stream_id']}#token={member['me']['app_token']}")
        _until(page, "document.getElementById('message').textContent.includes('404')")
    finally:
        page.close()
