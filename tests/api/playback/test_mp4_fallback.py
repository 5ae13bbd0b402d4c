"""The MP4 fallback (the Fallbacks state, after playable): segments streamed into an S3 multipart upload,
byte for byte; the route answers 202 until it is stored, 404 if it failed for good."""
from __future__ import annotations

import json
import os

import pytest


@pytest.fixture()
def large_rendition(stack, s3, make_user, make_stream, make_video):
    """A video whose stored 480p rendition is 21 MB: an init segment and three 7 MB segments."""
    user = make_user()
    vid = str(make_video(make_stream(user), user)["id"])
    prefix = f"processed-videos/{vid}/"
    parts = {"segments/480p_init.mp4": os.urandom(1500)}
    parts.update({f"segments/480p_{i:05d}.m4s": os.urandom(7 * 1024 * 1024 + i) for i in range(3)})
    playlist = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:4", "#EXT-X-PLAYLIST-TYPE:VOD",
                '#EXT-X-MAP:URI="segments/480p_init.mp4"']
    for name in list(parts)[1:]:
        playlist += ["#EXTINF:4.000000,", name]
    playlist.append("#EXT-X-ENDLIST")
    objects = {**{prefix + k: v for k, v in parts.items()},
               prefix + "480p.m3u8": "\n".join(playlist).encode(),
               prefix + "master.m3u8": b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1400000\n480p.m3u8\n"}
    for key, body in objects.items():
        s3.put_object(Bucket="clipstream", Key=key, Body=body)
    return vid, b"".join(parts.values())


def test_segments_stream_into_a_multipart_mp4(large_rendition, s3):
    from chalicelib import db
    from chalicelib.pipeline import finalize

    vid, expected = large_rendition
    assert finalize.build_mp4_fallbacks(vid) == ["480p"]
    key = f"processed-videos/{vid}/480p.mp4"
    obj = s3.get_object(Bucket="clipstream", Key=key)
    assert obj["Body"].read() == expected
    # 21 MB in 8 MB parts: three parts, every part but the last at full size.
    assert obj["ETag"].strip('"').endswith("-3")
    assert obj["ContentType"] == "video/mp4" and "immutable" in obj["CacheControl"]
    asset = db.fetch_one("SELECT kind, size_bytes FROM video_assets WHERE video_id = %s AND key = %s", (vid, key))
    assert asset == {"kind": "mp4_fallback", "size_bytes": len(expected)}

    # A rerun (retried or redriven Finalize) finds the file complete and leaves it alone.
    modified = s3.head_object(Bucket="clipstream", Key=key)["LastModified"]
    assert finalize.build_mp4_fallbacks(vid) == ["480p"]
    assert s3.head_object(Bucket="clipstream", Key=key)["LastModified"] == modified


def test_a_rendition_without_segments_is_refused(stack, s3, make_user, make_stream, make_video):
    from chalicelib.pipeline import finalize

    user = make_user()
    vid = str(make_video(make_stream(user), user)["id"])
    prefix = f"processed-videos/{vid}/"
    s3.put_object(Bucket="clipstream", Key=prefix + "master.m3u8", Body=b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p.m3u8\n")
    s3.put_object(Bucket="clipstream", Key=prefix + "720p.m3u8", Body=b"#EXTM3U\n#EXT-X-ENDLIST\n")
    with pytest.raises(ValueError, match="no fMP4 init segment or no segments"):
        finalize.build_mp4_fallbacks(vid)
    assert "Contents" not in s3.list_objects_v2(Bucket="clipstream", Prefix=prefix + "720p.mp4")


def test_finalize_of_a_video_deleted_meanwhile_leaves_nothing(large_rendition, s3):
    """A DELETE that raced Finalize: the step removes what it wrote and does not complete the video."""
    from chalicelib import db
    from chalicelib.pipeline import finalize, progress

    vid, _ = large_rendition
    db.execute("UPDATE videos SET deleted_at = now() WHERE id = %s", (vid,))
    with pytest.raises(progress.VideoGone):
        finalize.finalize({"video_id": vid, "execution": f"{vid}-gone"})
    assert "Contents" not in s3.list_objects_v2(Bucket="clipstream", Prefix=f"processed-videos/{vid}/")
    assert db.fetch_one("SELECT status FROM videos WHERE id = %s", (vid,))["status"] != "complete"


def test_fallbacks_of_a_video_deleted_meanwhile_leave_nothing(large_rendition, s3):
    """A DELETE that raced the Fallbacks state: it removes what it wrote, records nothing, and ends."""
    from chalicelib import db
    from chalicelib.pipeline import finalize

    vid, _ = large_rendition
    db.execute("UPDATE videos SET deleted_at = now() WHERE id = %s", (vid,))
    assert finalize.fallbacks({"video_id": vid, "execution": f"{vid}-gone"})["mp4_fallbacks"] == []
    assert "Contents" not in s3.list_objects_v2(Bucket="clipstream", Prefix=f"processed-videos/{vid}/")
    assert db.fetch_one("SELECT count(*) AS n FROM stage_runs WHERE video_id = %s", (vid,))["n"] == 0


def _bearer(user: dict) -> dict:
    from chalicelib.auth import tokens
    return {"Authorization": f"Bearer {tokens.issue_access_token(user)[0]}"}


def _complete(vid: str) -> None:
    from chalicelib import db
    db.execute("UPDATE videos SET processing_index = 0, status = 'complete' WHERE id = %s", (vid,))


def test_the_route_answers_202_until_the_mp4_is_stored_then_302(large_rendition, s3, client, make_user):
    """Playable before its fallbacks: the MP4 route says "not ready" (202), then redirects once stored;
    finalize alone (the playable step) writes no MP4 and leaves the stage history to Fallbacks."""
    from chalicelib import db
    from chalicelib.pipeline import finalize

    vid, _ = large_rendition
    owner = db.fetch_one("SELECT u.* FROM users u JOIN videos v ON v.uploaded_by = u.id WHERE v.id = %s", (vid,))
    _complete(vid)
    headers = _bearer(owner)
    resp = client.http.get(f"/api/videos/{vid}/stream/480p", headers=headers)
    body = json.loads(resp.body)
    assert resp.status_code == 202 and body["error"] == "MP4 fallback not ready" and body["details"]
    assert body["retry_after_s"] > 0
    assert client.http.get(f"/api/videos/{vid}/stream/720p", headers=headers).status_code == 404  # no such rung
    assert "Contents" not in s3.list_objects_v2(Bucket="clipstream", Prefix=f"processed-videos/{vid}/480p.mp4")

    out = finalize.fallbacks({"video_id": vid, "execution": f"{vid}-e"})
    assert out["mp4_fallbacks"] == ["480p"]
    run = db.fetch_one("SELECT status, output FROM stage_runs WHERE video_id = %s AND stage = 'mp4_fallbacks'", (vid,))
    assert run == {"status": "succeeded", "output": {"qualities": ["480p"]}}
    assert db.fetch_one("SELECT processing_index FROM videos WHERE id = %s", (vid,))["processing_index"] == 0
    resp = client.http.get(f"/api/videos/{vid}/stream/480p", headers=headers)
    assert resp.status_code == 302 and f"/{vid}/480p.mp4" in resp.headers["Location"]


def test_fallbacks_failing_for_good_are_recorded_and_the_route_answers_404(stack, s3, client, make_user,
                                                                           make_stream, make_video):
    """A rendition the fallback cannot be made of: the failure is recorded, the video stays playable,
    and the route stops saying "not ready"."""
    from chalicelib import db
    from chalicelib.pipeline import finalize

    user = make_user()
    vid = str(make_video(make_stream(user), user)["id"])
    prefix = f"processed-videos/{vid}/"
    s3.put_object(Bucket="clipstream", Key=prefix + "master.m3u8", Body=b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p.m3u8\n")
    s3.put_object(Bucket="clipstream", Key=prefix + "720p.m3u8", Body=b"#EXTM3U\n#EXT-X-ENDLIST\n")
    _complete(vid)
    with pytest.raises(ValueError) as failed:
        finalize.fallbacks({"video_id": vid, "execution": f"{vid}-e"})
    # Until the failure is recorded the route cannot tell it from "not yet": 202.
    headers = _bearer(user)
    assert client.http.get(f"/api/videos/{vid}/stream/720p", headers=headers).status_code == 202
    # What the state machine does next: its Catch hands the error to RecordFallbacksFailed.
    finalize.mark_failed({"video_id": vid, "execution": f"{vid}-e", "side_stage": "mp4_fallbacks",
                          "error": {"Error": "ValueError", "Cause": json.dumps(
                              {"errorMessage": str(failed.value), "errorType": "ValueError"})}})
    run = db.fetch_one("SELECT status, error FROM stage_runs WHERE video_id = %s AND stage = 'mp4_fallbacks'", (vid,))
    assert run["status"] == "failed" and "no fMP4 init segment" in run["error"]
    row = db.fetch_one("SELECT status, processing_index FROM videos WHERE id = %s", (vid,))
    assert row == {"status": "complete", "processing_index": 0}
    resp = client.http.get(f"/api/videos/{vid}/stream/720p", headers=headers)
    assert resp.status_code == 404 and json.loads(resp.body)["details"]
