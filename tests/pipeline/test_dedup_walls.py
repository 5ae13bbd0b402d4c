"""Dedup never crosses a wall: duplicates only within a stream, cross-stream matches for platform admins only.

Real clips through the real pipeline: upload over the API, storage event,
state machine, FFmpeg; then every member-facing read route is asked what it
says about the other stream's clip.
"""
from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.helpers import call, wait_for_final
from tests.media import clips as make

pytestmark = pytest.mark.attack  # hostile callers: counted in bench/results/reliability.json

PLATFORM_ADMIN = "admin@example.com"


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Clips of their own (not shared with other files), so matches here are ours alone."""
    d = tmp_path_factory.mktemp("dedup-walls")
    base = make.make_clip(d / "base.mp4", scene="testsrc2", duration=3.0, size=(160, 90), seed=41)
    long = make.make_clip(d / "long.mp4", scene="testsrc2", duration=6.0, size=(320, 180), seed=43)
    return {
        "base": base,
        "reencoded": make.reencode(base, d / "reencoded.mov", size=(128, 72), bitrate="200k"),
        "other": make.make_clip(d / "other.mp4", scene="gradients", duration=2.0, size=(128, 72), seed=42),
        "long": long,
        "cut": make.trim(long, d / "cut.mp4", 2.0, 2.5),
    }


def _add_member(stream_id, user_id, role):
    from chalicelib import db
    db.execute("INSERT INTO stream_members (stream_id, user_id, role) VALUES (%s, %s, %s)",
               (stream_id, user_id, role))


def _upload(client, who, stream_id, path, title) -> str:
    data = path.read_bytes()
    ctype = "video/quicktime" if path.suffix == ".mov" else "video/mp4"
    status, created = call(client, "POST", f"/streams/{stream_id}/videos", who,
                           {"title": title, "filename": path.name, "size_bytes": len(data),
                            "content_type": ctype})
    assert status == 201, created
    put = requests.put(created["upload_url"], data=data, headers={**created["upload_headers"], "Content-Type": ctype}, timeout=60)
    assert put.status_code == 200, put.text
    return created["id"]


def _complete(vid: str) -> dict:
    row = wait_for_final(vid, 180)
    assert (row["status"], row["processing_index"]) == ("complete", 0), (vid, row["failure_reason"])
    return row


def _plays(client, who, vid) -> None:
    status, body = call(client, "GET", f"/videos/{vid}/stream", who)
    assert status == 200, body
    master = requests.get(body["hls_url"], timeout=10)
    assert master.status_code == 200 and "#EXT-X-STREAM-INF" in master.text


def _admin_matches(client, admin, kind="all") -> list[dict]:
    status, body = call(client, "GET", f"/admin/duplicates?kind={kind}&limit=100", admin)
    assert status == 200, body
    assert body["kind"] == kind
    return body["duplicates"]


@pytest.fixture()
def walls(client, sign_in, make_stream, live_api):
    """An uploader in streams A and B; a member of B only; a member of A only; the platform admin.

    live_api serves the playlists that hls_url points at.
    """
    uploader = sign_in()
    a = make_stream({"id": uploader["user"]["id"]}, "stream A")
    b = make_stream({"id": uploader["user"]["id"]}, "stream B")
    member_b, member_a = sign_in(), sign_in()
    _add_member(str(b["id"]), member_b["user"]["id"], "viewer")
    _add_member(str(a["id"]), member_a["user"]["id"], "viewer")
    return {"uploader": uploader, "a": str(a["id"]), "b": str(b["id"]), "member_b": member_b,
            "member_a": member_a, "admin": sign_in(PLATFORM_ADMIN)}


def _no_trace(body, *secrets) -> None:
    text = json.dumps(body)
    for secret in secrets:
        assert secret not in text, (secret, text)


def test_same_clip_in_two_streams_plays_in_both_and_only_the_platform_admin_sees_the_match(
        client, walls, media):
    from chalicelib import db

    up, member_b, admin = walls["uploader"], walls["member_b"], walls["admin"]
    title_a = f"A's secret plan {uuid.uuid4().hex[:8]}"
    in_a = _upload(client, up, walls["a"], media["base"], title_a)
    row_a = _complete(in_a)
    in_b = _upload(client, up, walls["b"], media["base"], "posted in B")
    row_b = _complete(in_b)
    assert row_b["duplicate_of"] is None and row_b["similarity"] is None
    _plays(client, up, in_a)
    _plays(client, up, in_b)
    _plays(client, member_b, in_b)

    # A member of B only: no id, title, uploader or time of A's clip anywhere.
    secrets = (in_a, title_a, row_a["uploaded_at"].isoformat()[:19])
    status, body = call(client, "GET", f"/videos/{in_b}", member_b)
    assert status == 200 and body["duplicate_of"] is None and body["status"] == "complete"
    _no_trace(body, *secrets)
    assert call(client, "GET", f"/videos/{in_b}/duplicates", member_b) == \
        (404, {"error": "Not a duplicate video"})
    for route in ("similar", "trimmed", "timeline", "pov"):
        status, body = call(client, "GET", f"/videos/{in_b}/{route}", member_b)
        assert status == 200, (route, body)
        _no_trace(body, *secrets)
    assert call(client, "GET", f"/videos/{in_a}", member_b)[0] == 403
    # The uploader, a member of both, does see A's clip as similar: the filter hides it, not luck.
    status, body = call(client, "GET", f"/videos/{in_b}/similar", up)
    assert status == 200 and in_a in [v["id"] for v in body["similar_videos"]]
    # And a member of A only learns nothing about B's copy either.
    status, body = call(client, "GET", f"/videos/{in_a}/similar", walls["member_a"])
    assert status == 200
    _no_trace(body, in_b, "posted in B")

    # Nothing about A travelled in B's pipeline state (stage outputs, execution input/output).
    outputs = db.fetch_all("SELECT output FROM stage_runs WHERE video_id = %s", (in_b,))
    assert outputs and all(in_a not in json.dumps(r["output"], default=str) for r in outputs)
    assert db.fetch_one("SELECT content_sha256 FROM videos WHERE id = %s", (in_b,))["content_sha256"] == \
        row_a["content_sha256"]

    # The platform admin sees the match, with both streams; it is not a flagged duplicate.
    [match] = [m for m in _admin_matches(client, admin, "cross_stream") if m["id"] == in_b]
    assert match["kind"] == "cross_stream" and match["similarity"] == 1.0 and match["status"] == "complete"
    assert match["stream_id"] == walls["b"]
    assert match["original_video"]["id"] == in_a and match["original_video"]["title"] == title_a
    assert match["original_video"]["stream_id"] == walls["a"]
    assert match["original_video"]["uploaded_by"] == up["user"]["id"]
    assert in_b not in [m["id"] for m in _admin_matches(client, admin, "duplicate")]
    assert in_b in [m["id"] for m in _admin_matches(client, admin) if m["kind"] == "cross_stream"]
    # A stream admin reaching for the platform view gets 403 and nothing else.
    for who in (up, member_b):
        status, body = call(client, "GET", "/admin/duplicates?kind=cross_stream", who)
        assert (status, body) == (403, {"error": "Admin access required"})
    status, body = call(client, "GET", "/admin/duplicates?kind=everything", admin)
    assert status == 400 and body["error"] == "Invalid kind" and body["details"]


def test_reencoded_copy_in_another_stream_is_a_near_match_not_a_duplicate(client, walls, media):
    up, admin = walls["uploader"], walls["admin"]
    in_a = _upload(client, up, walls["a"], media["base"], "base")
    _complete(in_a)
    copy = _upload(client, up, walls["b"], media["reencoded"], "re-encoded in B")
    _complete(copy)
    _plays(client, walls["member_b"], copy)
    [match] = [m for m in _admin_matches(client, admin, "cross_stream")
               if m["id"] == copy and m["original_video"]["id"] == in_a]
    assert 0.75 <= match["similarity"] <= 1.0
    # Different bytes: the perceptual signatures found it, not the hash.
    assert wait_for_final(copy)["content_sha256"] != wait_for_final(in_a)["content_sha256"]


def test_same_clip_twice_in_one_stream_is_still_a_duplicate(client, walls, media):
    up, member_b, admin = walls["uploader"], walls["member_b"], walls["admin"]
    first = _upload(client, up, walls["b"], media["other"], "first in B")
    _complete(first)
    second = _upload(client, up, walls["b"], media["other"], "again in B")
    row = wait_for_final(second, 120)
    assert (row["processing_index"], row["status"]) == (-1, "duplicate")
    assert str(row["duplicate_of"]) == first and row["similarity"] == 1.0
    status, body = call(client, "GET", f"/videos/{second}/duplicates", member_b)
    assert status == 200 and body["original_video"]["id"] == first
    assert body["original_video"]["title"] == "first in B" and body["similarity"] == 1.0
    assert call(client, "GET", f"/videos/{second}", member_b)[1]["duplicate_of"] == first
    status, body = call(client, "GET", f"/videos/{second}/stream", member_b)
    assert status == 409 and body["duplicate_of"] == first
    [flag] = [m for m in _admin_matches(client, admin, "duplicate") if m["id"] == second]
    assert flag["original_video"]["id"] == first and flag["original_video"]["stream_id"] == walls["b"]
    assert second not in [m["id"] for m in _admin_matches(client, admin, "cross_stream")]

    # Once the original is hidden, members no longer see it named; its stream admin still does.
    status, _ = call(client, "POST", f"/admin/videos/{first}/hide", up, {"reason": "spoiler"})
    assert status == 200
    status, body = call(client, "GET", f"/videos/{second}/duplicates", member_b)
    assert status == 200 and body["original_video"] is None
    _no_trace(body, first, "first in B")
    assert call(client, "GET", f"/videos/{second}", member_b)[1]["duplicate_of"] is None
    assert call(client, "GET", f"/videos/{second}/stream", member_b)[1]["duplicate_of"] is None
    assert call(client, "GET", f"/videos/{second}/duplicates", up)[1]["original_video"]["id"] == first
    # ... and a hidden clip is no original: a third copy is processed, not flagged.
    third = _upload(client, up, walls["b"], media["other"], "third in B")
    _complete(third)


def test_a_cut_from_another_stream_shows_only_to_members_of_both(client, walls, media):
    """Relations stay inside what the caller can see: the trimmed source in A is not shown to B."""
    up, member_b = walls["uploader"], walls["member_b"]
    source = _upload(client, up, walls["a"], media["long"], "full round in A")
    _complete(source)
    cut = _upload(client, up, walls["b"], media["cut"], "highlight in B")
    _complete(cut)
    status, body = call(client, "GET", f"/videos/{cut}/trimmed", up)
    assert status == 200 and [c["id"] for c in body["trimmed_from"]] == [source]
    status, body = call(client, "GET", f"/videos/{cut}/trimmed", member_b)
    assert status == 200 and body["trimmed_from"] == []
    _no_trace(body, source, "full round in A")
    status, body = call(client, "GET", f"/videos/{source}/timeline", walls["member_a"])
    assert status == 200 and body["trimmed_clips"] == []
    _no_trace(body, cut, "highlight in B")


def test_an_old_cross_stream_flag_names_no_original_to_outsiders(client, walls, make_video):
    """A flag from before the rule (or any original the caller cannot open) shows as null."""
    from chalicelib import db

    up, member_b = walls["uploader"], walls["member_b"]
    original = make_video({"id": walls["a"]}, {"id": up["user"]["id"]}, "legacy original in A")
    flagged = make_video({"id": walls["b"]}, {"id": up["user"]["id"]}, "legacy flagged in B")
    db.execute("UPDATE videos SET processing_index = -1, status = 'duplicate', duplicate_of = %s,"
               " similarity = 1.0 WHERE id = %s", (original["id"], flagged["id"]))
    fid, oid = str(flagged["id"]), str(original["id"])
    status, body = call(client, "GET", f"/videos/{fid}/duplicates", member_b)
    assert (status, body) == (200, {"is_duplicate": True, "original_video": None, "similarity": 1.0})
    status, body = call(client, "GET", f"/videos/{fid}", member_b)
    assert status == 200 and body["duplicate_of"] is None
    _no_trace(body, oid, "legacy original in A")
    status, body = call(client, "GET", f"/videos/{fid}/stream", member_b)
    assert status == 409 and body["duplicate_of"] is None
    # The uploader, a member of A too, may be told.
    assert call(client, "GET", f"/videos/{fid}", up)[1]["duplicate_of"] == oid
