"""Finalize's MP4 fallback: segments streamed into an S3 multipart upload, byte for byte."""
from __future__ import annotations

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
