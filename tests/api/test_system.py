"""GET /system/storage: usage from a full listing of the bucket (platform admins)."""
from __future__ import annotations

import pytest

from tests.api.test_videos import BUCKET, call


def test_human_sizes():
    from chalicelib.api.system import human

    assert human(0) == "0B"
    assert human(1023) == "1023B"
    assert human(1536) == "1.5KB"
    assert human(230 * 1024**3) == "230GB"
    assert human(500 * 1024**3) == "500GB"
    assert human(3 * 1024**4) == "3TB"


def test_storage_usage_counts_every_prefix(client, sign_in, s3, make_stream, make_video):
    admin = sign_in("admin@example.com")
    status, before = call(client, "GET", "/system/storage", admin)
    assert status == 200
    s3.put_object(Bucket=BUCKET, Key="raw-uploads/usage-test.mp4", Body=b"x" * 1000)
    s3.put_object(Bucket=BUCKET, Key="thumbnails/usage-test.jpg", Body=b"x" * 24)
    s3.put_object(Bucket=BUCKET, Key="elsewhere/usage-test.bin", Body=b"x" * 7)
    make_video(make_stream(admin["user"]), admin["user"])
    status, after = call(client, "GET", "/system/storage", admin)
    assert status == 200
    raw_before, raw_after = before["by_prefix"]["raw-uploads/"], after["by_prefix"]["raw-uploads/"]
    assert raw_after["objects"] >= raw_before["objects"] + 1
    assert raw_after["bytes"] >= raw_before["bytes"] + 1000
    assert set(after["by_prefix"]) == {"raw-uploads/", "processed-videos/", "thumbnails/",
                                       "transcripts/", "embeddings/", "clips/", "thumbnail-uploads/", "other"}
    assert after["by_prefix"]["other"]["bytes"] >= 7
    assert after["used_bytes"] == sum(p["bytes"] for p in after["by_prefix"].values())
    assert after["total_space"] == "500GB" and after["total_bytes"] == 500 * 1024**3
    assert after["free_bytes"] == after["total_bytes"] - after["used_bytes"]
    assert after["video_count"] >= before["video_count"] + 1
    assert isinstance(after["used_space"], str) and after["used_space"].endswith("B")


@pytest.mark.parametrize("who", ["member", "nobody"])
def test_storage_usage_is_for_platform_admins(client, sign_in, who):
    if who == "member":
        assert call(client, "GET", "/system/storage", sign_in()) == (403, {"error": "Admin access required"})
    else:
        assert call(client, "GET", "/system/storage")[0] == 401
