"""Dedup and transcode on real clips, end to end through the local stack."""
from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from tests.helpers import wait_for_final
from tests.media import clips as make


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Real clips: a 720p original with speech, copies of it, and unrelated clips."""
    d = tmp_path_factory.mktemp("pipeline-media")
    original = make.make_clip(d / "original.mp4", scene="testsrc2", duration=6.0, size=(1280, 720),
                              speech="Enemy spotted on the left", seed=11)
    return {
        "original": original,
        "reencoded": make.reencode(original, d / "reencoded.mov", size=(640, 360), bitrate="400k"),
        "unrelated": make.make_clip(d / "unrelated.mp4", scene="life", duration=6.0, size=(640, 360), seed=12),
        "trimmed": make.trim(original, d / "trimmed.mp4", 2.0, 2.5),
        "silent": make.make_clip(d / "silent.mp4", scene="sierpinski", duration=3.0, size=(426, 240),
                                 audio=False, seed=13),
        "zero": make.zero_bytes(d / "zero.mp4"),
        "text": make.text_as_mp4(d / "text.mp4"),
        "truncated": make.truncated(original, d / "truncated.mp4", keep=0.4),
        "audio_only": make.audio_only(d / "audio.mp4"),
        "tiny": make.tiny_video(d / "tiny.avi"),
        "ten_hours": make.ten_hour_claim(d / "tenhours.mp4"),
    }


@pytest.fixture()
def uploader(client, sign_in, make_stream):
    me = sign_in()
    stream = make_stream({"id": me["user"]["id"]})

    def upload(path: Path, title: str | None = None) -> str:
        data = path.read_bytes()
        ctype = {".mov": "video/quicktime", ".avi": "video/x-msvideo"}.get(path.suffix, "video/mp4")
        resp = client.http.post(f"/streams/{stream['id']}/videos", headers=me["headers"], body=json.dumps(
            {"title": title or path.stem, "filename": path.name, "size_bytes": max(len(data), 1),
             "content_type": ctype}))
        assert resp.status_code == 201, resp.body
        created = json.loads(resp.body)
        put = requests.put(created["upload_url"], data=data, headers={**created["upload_headers"], "Content-Type": ctype}, timeout=60)
        assert put.status_code == 200
        return created["id"]

    upload.me = me
    upload.stream = stream
    return upload


def _get(client, path, me):
    resp = client.http.get(path, headers=me["headers"])
    return resp.status_code, json.loads(resp.body)


def test_original_is_transcoded_to_a_playable_ladder(client, uploader, media, s3, live_api, tmp_path):
    from chalicelib import db

    vid = uploader(media["original"])
    row = wait_for_final(vid, 180)
    assert row["status"] == "complete", row["failure_reason"]
    assert (row["width"], row["height"]) == (1280, 720)
    assert abs(row["duration_s"] - 6.0) < 0.2 and row["video_codec"] == "h264" and row["audio_codec"] == "aac"
    assert row["bitrates"] == [360, 480, 720]  # never upscaled past the 720p source

    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="clipstream", Prefix=f"processed-videos/{vid}/")["Contents"]}
    assert {f"processed-videos/{vid}/master.m3u8", f"processed-videos/{vid}/360p.m3u8", f"processed-videos/{vid}/480p.m3u8",
            f"processed-videos/{vid}/720p.m3u8"} <= keys
    assert f"processed-videos/{vid}/1080p.m3u8" not in keys
    assert any(k.startswith(f"processed-videos/{vid}/segments/") for k in keys)
    thumbs = {o["Key"] for o in s3.list_objects_v2(Bucket="clipstream", Prefix=f"thumbnails/{vid}")["Contents"]}
    assert thumbs == {f"thumbnails/{vid}.jpg", f"thumbnails/{vid}_processing.jpg"}
    recorded = {r["key"] for r in db.fetch_all("SELECT key FROM video_assets WHERE video_id = %s", (vid,))}
    assert keys | thumbs <= recorded

    # The thumbnail comes from the transcode's own decode and shows the picture.
    import numpy as np
    from PIL import Image

    from chalicelib.media.thumbnails import MIN_LUMA_STD, MIN_MEAN_LUMA
    thumb = tmp_path / "thumb.jpg"
    thumb.write_bytes(s3.get_object(Bucket="clipstream", Key=f"thumbnails/{vid}.jpg")["Body"].read())
    with Image.open(thumb) as img:
        luma = np.asarray(img.convert("L"), np.float32)
    assert luma.shape == (360, 640) and luma.mean() > MIN_MEAN_LUMA and luma.std() > MIN_LUMA_STD
    # Dedup's audio decode handed transcribe a 16 kHz WAV (no second decode, so transcription
    # runs beside the transcode); transcribe deleted it after use.
    out = db.fetch_one("SELECT output FROM stage_runs WHERE video_id = %s AND stage = 'dedup'"
                       " AND status = 'succeeded'", (vid,))["output"]
    assert out["has_audio"] is True
    assert out["speech_audio_key"] == f"processed-videos/{vid}/tmp/speech-16k.wav"
    assert not any("/tmp/" in k for k in keys)
    words = db.fetch_one("SELECT text FROM transcripts WHERE video_id = %s", (vid,))["text"].lower()
    assert "on the left" in words  # tiny.en hears "Enemy spotted" through the noise less well

    status, body = _get(client, f"/videos/{vid}/stream", uploader.me)
    assert status == 200 and body["bitrates"] == [360, 480, 720] and body["dash_url"]
    master = requests.get(body["hls_url"], timeout=10)
    assert master.status_code == 200
    assert master.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    for line in (ln for ln in master.text.splitlines() if ln.startswith("#EXT-X-STREAM-INF")):
        for attr in ("BANDWIDTH=", "AVERAGE-BANDWIDTH=", "RESOLUTION=", "CODECS=", "FRAME-RATE="):
            assert attr in line, line

    # A player's view: FFmpeg itself opens each rendition's playlist over HTTP and decodes it.
    from chalicelib import storage
    from chalicelib.media.ffmpeg import ffmpeg_exe

    for name in ("360p", "480p", "720p"):
        # Segments are fetched relative to the playlist: presign a URL under the same prefix.
        playlist_url = storage.presigned_get(f"processed-videos/{vid}/{name}.m3u8")
        text = requests.get(playlist_url, timeout=10).text
        durations = [float(m) for m in re.findall(r"#EXTINF:([\d.]+)", text)]
        assert durations and all(d <= 4.1 for d in durations[:-1])
        local = Path(f"/tmp/{vid}-{name}")
        local.mkdir(exist_ok=True)
        for obj in s3.list_objects_v2(Bucket="clipstream", Prefix=f"processed-videos/{vid}/")["Contents"]:
            rel = obj["Key"].split(f"processed-videos/{vid}/", 1)[1]
            (local / rel).parent.mkdir(parents=True, exist_ok=True)
            (local / rel).write_bytes(s3.get_object(Bucket="clipstream", Key=obj["Key"])["Body"].read())
        decoded = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(local / f"{name}.m3u8"), "-f", "null", "-"],
                                 capture_output=True, text=True, timeout=60)
        assert decoded.returncode == 0 and not decoded.stderr.strip(), decoded.stderr


def test_stream_url_plays_over_http(client, uploader, media, live_api):
    """FFmpeg as a player: the hls_url of a complete video plays to the end over HTTP."""
    from chalicelib.media.ffmpeg import ffmpeg_exe

    vid = uploader(media["silent"])
    assert wait_for_final(vid, 120)["status"] == "complete"
    status, body = _get(client, f"/videos/{vid}/stream", uploader.me)
    assert status == 200 and body["hls_url"].startswith(f"{live_api}/api/videos/{vid}/hls/master.m3u8?token=")
    master = requests.get(body["hls_url"], timeout=10)
    assert master.status_code == 200 and master.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert master.headers["Access-Control-Allow-Origin"] == "*"
    result = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", body["hls_url"], "-f", "null", "-"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    # Without the token (or with another video's token) the playlist is refused.
    assert requests.get(body["hls_url"].split("?")[0], timeout=10).status_code == 401
    other = body["hls_url"].replace(vid, str(uuid.uuid4()))
    assert requests.get(other, timeout=10).status_code == 401


def test_reencoded_copy_is_a_near_duplicate_of_its_original(client, uploader, media):
    original = uploader(media["original"], "original")
    assert wait_for_final(original, 180)["status"] == "complete"
    copy = uploader(media["reencoded"], "re-encoded copy")
    row = wait_for_final(copy, 120)
    assert (row["processing_index"], row["status"]) == (-1, "duplicate")
    status, body = _get(client, f"/videos/{copy}/duplicates", uploader.me)
    assert status == 200 and body["is_duplicate"] is True
    assert body["original_video"]["id"] == original and body["original_video"]["title"] == "original"
    assert 0.75 <= body["similarity"] <= 1.0

    byte_copy = uploader(media["original"], "byte copy")
    row = wait_for_final(byte_copy, 120)
    assert row["processing_index"] == -1 and str(row["duplicate_of"]) == original and row["similarity"] == 1.0

    # The original itself, an unrelated clip and a trimmed part are not duplicates.
    assert _get(client, f"/videos/{original}/duplicates", uploader.me) == (404, {"error": "Not a duplicate video"})
    unrelated = uploader(media["unrelated"])
    trimmed = uploader(media["trimmed"])
    for vid in (unrelated, trimmed):
        row = wait_for_final(vid, 120)
        assert row["status"] == "complete", (vid, row["failure_reason"])
        assert _get(client, f"/videos/{vid}/duplicates", uploader.me)[0] == 404


def test_duplicates_only_count_within_streams_the_uploader_sees(client, uploader, sign_in, make_stream, media):
    first = uploader(media["unrelated"])
    assert wait_for_final(first, 120)["status"] == "complete"
    other = sign_in()
    stream = make_stream({"id": other["user"]["id"]})
    data = media["unrelated"].read_bytes()
    resp = client.http.post(f"/streams/{stream['id']}/videos", headers=other["headers"], body=json.dumps(
        {"filename": "same.mp4", "size_bytes": len(data), "content_type": "video/mp4"}))
    created = json.loads(resp.body)
    requests.put(created["upload_url"], data=data, headers={**created["upload_headers"], "Content-Type": "video/mp4"}, timeout=60)
    assert wait_for_final(created["id"], 120)["status"] == "complete"


def test_transcribe_without_the_speech_hand_over_decodes_the_upload(make_user, make_stream, make_video,
                                                                    media, s3):
    """A retry resumed past dedup finds no speech WAV: transcribe extracts it itself."""
    from chalicelib import db
    from chalicelib.ml import transcribe as ml
    from chalicelib.pipeline import transcribe

    user = make_user()
    stream = make_stream(user)
    video = make_video(stream, user)
    vid = str(video["id"])
    # A key the upload trigger does not match, so only this test runs steps on the video.
    raw_key = f"raw-uploads/{vid}-copy.mp4"
    s3.put_object(Bucket="clipstream", Key=raw_key, Body=media["original"].read_bytes())
    out = transcribe.run({"video_id": vid, "key": raw_key, "etag": "fallback",
                          "speech_audio_key": f"processed-videos/{vid}/tmp/speech-16k.wav"})
    s3.delete_object(Bucket="clipstream", Key=raw_key)
    expected = ml.transcribe(media["original"], glossary_entries=transcribe.stream_glossary(vid)).text
    assert out["transcript"]["segments"] >= 1 and expected
    assert db.fetch_one("SELECT text FROM transcripts WHERE video_id = %s", (vid,))["text"] == expected

    # A clip the dedup step found silent is not downloaded at all (the key does not exist).
    silent = make_video(stream, user)
    out = transcribe.run({"video_id": str(silent["id"]), "key": f"raw-uploads/{silent['id']}-none.mp4",
                          "etag": "silent", "has_audio": False})
    assert out["transcript"] == {"key": f"transcripts/{silent['id']}.json", "segments": 0,
                                 "language": None}


def test_a_failed_upload_batch_removes_what_it_stored(stack, s3, tmp_path):
    """Uploader: an error inside the block deletes the objects already uploaded."""
    from chalicelib.pipeline import media_io

    files = []
    for i in range(3):
        files.append(tmp_path / f"seg{i}.m4s")
        files[-1].write_bytes(b"x" * 1000)
    prefix = f"processed-videos/{uuid.uuid4()}/segments/"
    with pytest.raises(RuntimeError):
        with media_io.Uploader() as up:
            for f in files:
                up.submit(f, prefix + f.name)
            assert [k for k, _, _ in up.wait()] == [prefix + f.name for f in files]
            raise RuntimeError("ffmpeg failed half-way")
    assert s3.list_objects_v2(Bucket="clipstream", Prefix=prefix).get("KeyCount", 0) == 0
    with media_io.Uploader() as up:
        up.submit(files[0], prefix + "ok.m4s")
        up.submit(files[0], prefix + "ok.m4s")  # a key already submitted is skipped
        assert up.wait() == [(prefix + "ok.m4s", 1000, "video/iso.segment")]
    assert s3.list_objects_v2(Bucket="clipstream", Prefix=prefix)["KeyCount"] == 1
