"""The watch page in headless Chromium: the scrub bar's storyboard preview shows the hovered time's tile,
and the thumbnail control sets and removes a custom thumbnail for those who may, and is absent for others."""
from __future__ import annotations

import io
import json

import requests
from PIL import Image, ImageChops, ImageStat

from tests.api.test_files import follow, get_thumbnail
from tests.api.test_videos import add_member
from tests.conftest import _sign_in_with
from tests.api.playback.test_storyboard import CUE
from tests.api.playback.test_web_pages import _open, _shot, _until, member_storage
from tests.media.test_custom_thumbnail import image_bytes


def _seconds(stamp: str) -> float:
    h, m, s = stamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _watch(browser, live_api, vid, app_token):
    page = _open(browser)
    page.goto(f"{live_api}/web/watch?video={vid}#token={app_token}")
    page.wait_for_selector("body[data-thumbnail-control]", timeout=30_000)
    return page


def _mean_difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def test_scrub_bar_preview_shows_the_hovered_times_storyboard_tile(browser, live_api, member, hd_video, tmp_path):
    vid = hd_video["id"]
    resp = member["client"].http.get(f"/videos/{vid}/storyboard.vtt", headers=member["me"]["headers"])
    assert resp.status_code == 200
    cues = [(_seconds(a), _seconds(b), url, *map(int, xywh)) for a, b, url, *xywh in CUE.findall(resp.body.decode())]
    assert len(cues) == 9
    sheet = Image.open(io.BytesIO(requests.get(cues[0][2], timeout=10).content)).convert("RGB")
    tiles = [sheet.crop((x, y, x + w, y + h)) for _, _, _, x, y, w, h in cues]
    page = _watch(browser, live_api, vid, member["me"]["app_token"])
    try:
        _until(page, "Number(document.body.dataset.storyboard) === 9 && document.getElementById('video').duration > 0",
               timeout=30_000)
        duration = page.evaluate("document.getElementById('video').duration")
        box = page.locator("#scrub").bounding_box()
        preview = page.locator("#preview")
        for index in (2, 5, 7):
            start, end, url, x, y, w, h = cues[index]
            t = (start + end) / 2
            page.mouse.move(box["x"] + box["width"] * t / duration, box["y"] + box["height"] / 2)
            _until(page, f"document.getElementById('preview').dataset.cue === '{index}'")
            assert preview.is_visible()
            style = preview.evaluate("p => [p.style.backgroundImage, p.style.backgroundPosition, p.style.width,"
                                     " p.style.height, document.getElementById('preview-time').textContent]")
            sprite = url.split("?")[0].rsplit("/", 1)[-1]
            assert f"/storyboard/{sprite}?" in style[0] and "X-Amz-Signature=" in style[0], style
            assert style[1:4] == [f"{-x}px {-y}px", f"{w}px", f"{h}px"], style
            assert style[4] == f"0:{int(t):02d}", style
            # What the browser drew is that tile of the sheet, whole: closer to it than to any other tile.
            page.evaluate("""src => new Promise(ok => { const i = new Image(); i.onload = i.onerror = ok; i.src = src; })""",
                          style[0][5:-2])
            shot = Image.open(io.BytesIO(preview.screenshot())).convert("RGB")
            # w x h inside the 2 px border (the box may sit on a fractional pixel: one more row or column)
            assert shot.width - 4 in (w, w + 1) and shot.height - 4 in (h, h + 1), shot.size
            inner = shot.crop((2, 2, 2 + w, 2 + h))
            differences = [_mean_difference(inner, tile) for tile in tiles]
            assert min(range(len(tiles)), key=differences.__getitem__) == index, differences
            assert differences[index] < 6, differences
        _shot(page, tmp_path, "scrub-preview.png")
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] - 200)      # leaving the bar hides it
        _until(page, "getComputedStyle(document.getElementById('preview')).display === 'none'")
        assert page.errors == [], page.errors
        assert page.origins <= {live_api, member_storage(member)}, page.origins
    finally:
        page.close()


def _shown_colours(page) -> list[list[int]]:
    """The RGB of the shown thumbnail's top-left quadrant and of its bottom-right one."""
    return page.evaluate("""() => { const i = document.getElementById('thumb-current');
        const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight;
        const g = c.getContext('2d'); g.drawImage(i, 0, 0);
        const at = (x, y) => [...g.getImageData(Math.floor(x), Math.floor(y), 1, 1).data.slice(0, 3)];
        return [at(c.width / 4, c.height / 4), at(3 * c.width / 4, 3 * c.height / 4)]; }""")


def _near(rgb, expected, tolerance=40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(rgb, expected))


def test_uploader_sets_a_png_thumbnail_on_the_watch_page_and_goes_back_to_a_frame(
        browser, live_api, member, hd_video, tmp_path):
    from chalicelib import db

    vid = hd_video["id"]
    png = tmp_path / "cover.png"
    png.write_bytes(image_bytes("PNG", size=(320, 180), color=(200, 30, 30)))   # red, a green top-left quadrant
    page = _watch(browser, live_api, vid, member["me"]["app_token"])
    try:
        assert page.evaluate("document.body.dataset.thumbnailControl") == "true"
        _until(page, "document.getElementById('thumb-current').naturalWidth > 0")
        frame = page.evaluate("document.getElementById('thumb-current').naturalWidth")
        page.set_input_files("#thumb-file", str(png))
        _until(page, "document.body.dataset.thumbnail === 'your image (320 x 180)'", timeout=30_000)
        _until(page, "document.getElementById('thumb-current').naturalWidth === 320")
        green, red = _shown_colours(page)
        assert _near(green, (10, 200, 10)) and _near(red, (200, 30, 30)), (green, red)
        assert page.evaluate("document.getElementById('video').poster === document.getElementById('thumb-current').src")
        _shot(page, tmp_path, "thumbnail-control.png")
        # The thumbnail route now serves a JPEG of it, re-encoded by the API (not the PNG's bytes).
        key = db.fetch_one("SELECT custom_thumbnail_key FROM videos WHERE id = %s", (vid,))["custom_thumbnail_key"]
        assert key and key.startswith(f"thumbnails/{vid}_custom_") and key.endswith(".jpg")
        served = follow(get_thumbnail(member["client"], member["me"], vid))
        assert served.status_code == 200 and served.headers["Content-Type"] == "image/jpeg"
        assert served.content[:3] == b"\xff\xd8\xff"
        with Image.open(io.BytesIO(served.content)) as img:
            assert img.format == "JPEG" and img.size == (320, 180)
            assert _near(img.convert("RGB").getpixel((80, 45)), (10, 200, 10))
            assert _near(img.convert("RGB").getpixel((240, 135)), (200, 30, 30))
        # "Use a frame" deletes it: the row forgets it, storage drops it, the page shows the frame again.
        page.click("#thumb-frame")
        _until(page, "document.body.dataset.thumbnail === 'a frame of the clip'", timeout=30_000)
        _until(page, f"document.getElementById('thumb-current').naturalWidth === {frame}")
        assert db.fetch_one("SELECT custom_thumbnail_key FROM videos WHERE id = %s", (vid,))["custom_thumbnail_key"] is None
        again = follow(get_thumbnail(member["client"], member["me"], vid))
        with Image.open(io.BytesIO(again.content)) as img:
            assert img.size != (320, 180)
        assert page.errors == [], page.errors
        assert page.origins <= {live_api, member_storage(member)}, page.origins
    finally:
        member["client"].http.delete(f"/videos/{vid}/thumbnail", headers=member["me"]["headers"])
        page.close()


def test_only_the_uploader_while_a_creator_and_stream_admins_get_the_control(
        browser, live_api, member, google_key):
    """A clip a creator uploaded: the creator and the stream admin see the control; another creator and a
    viewer do not (the API refuses them too: tests/api/test_thumbnails.py)."""
    client = member["client"]
    crew = {role: _sign_in_with(client, google_key) for role in ("uploader", "other_creator", "viewer")}
    for who, role in (("uploader", "creator"), ("other_creator", "creator"), ("viewer", "viewer")):
        add_member(member["stream_id"], crew[who], role)
    resp = client.http.post(f"/streams/{member['stream_id']}/videos", headers=crew["uploader"]["headers"], body=json.dumps(
        {"title": "Cover me", "filename": "cover.mp4", "size_bytes": 1000, "content_type": "video/mp4"}))
    assert resp.status_code == 201, resp.body
    vid = json.loads(resp.body)["id"]
    for who, token, expected in (("uploader", crew["uploader"]["app_token"], "true"),
                                 ("stream admin", member["me"]["app_token"], "true"),
                                 ("other creator", crew["other_creator"]["app_token"], "false"),
                                 ("viewer", crew["viewer"]["app_token"], "false")):
        page = _watch(browser, live_api, vid, token)
        try:
            assert page.evaluate("document.body.dataset.thumbnailControl") == expected, who
            present = page.locator("#thumb-edit, #thumb-file, #thumb-frame").count()
            assert present == (3 if expected == "true" else 0), (who, present)
        finally:
            page.close()
