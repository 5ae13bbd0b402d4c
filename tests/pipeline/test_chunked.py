"""The chunked ladder on the real stack: a long clip (kept tiny in resolution) is planned on the
4 s keyframe grid, encoded by a Map of chunk Lambdas that write its final segments (with their
share of dedup's whole-track AAC), published in the single pass's layout by a stitch that writes
only playlists, and plays as one stream; a failing chunk is retried."""
from __future__ import annotations

import json
import os
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from tests.helpers import wait_for_final
from tests.media import clips as make
from tests.pipeline.test_fanout import _entered, _history, _runs
from tests.pipeline.test_media_pipeline import uploader  # noqa: F401 - the fixture

CHUNK_FN = "clipstream-local-pipeline_transcode_chunk"
LENGTH_S = 22.0
FPS = 30


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("chunked-media")
    return make.make_clip(d / "long.mp4", scene="testsrc2", duration=LENGTH_S, size=(320, 180), seed=7)


@pytest.fixture
def chunking():
    """Chunk clips of 10 s and more into 8 s chunks (the default threshold is far above the test clip)."""
    from chalicelib.config import reset_settings

    os.environ.update(CHUNK_THRESHOLD_SECONDS="10", CHUNK_SECONDS="8")
    reset_settings()
    yield
    os.environ.pop("CHUNK_THRESHOLD_SECONDS")
    os.environ.pop("CHUNK_SECONDS")
    reset_settings()


def _keys(s3, prefix: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket="clipstream", Prefix=prefix).get("Contents", [])}


def decode_report(playlist: Path) -> dict:
    """Decode a whole HLS playlist: errors, and per stream the frame count, duration and timestamp gaps."""
    from chalicelib.media.ffmpeg import ffmpeg_exe

    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-v", "error", "-i", str(playlist),
                           "-f", "framemd5", "-"], capture_output=True, text=True, timeout=120)
    streams: dict[int, list[tuple[int, int]]] = {}
    timebase: dict[int, Fraction] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("#tb"):                      # "#tb 0: 1/30"
            index, tb = line[3:].split(":", 1)
            timebase[int(index)] = Fraction(tb.strip())
        if line.startswith("#") or not line.strip():
            continue
        cols = [c.strip() for c in line.split(",")]
        streams.setdefault(int(cols[0]), []).append((int(cols[2]), int(cols[3])))
    report = {"errors": proc.stderr.strip(), "returncode": proc.returncode, "streams": {}}
    for index, frames in streams.items():
        gaps = [(a, b) for (a, d), (b, _) in zip(frames, frames[1:]) if b - a != d]
        end = frames[-1][0] + frames[-1][1] - frames[0][0]
        report["streams"][index] = {"frames": len(frames), "gaps": gaps,
                                    "duration_s": float(end * timebase[index])}
    return report


def _download(s3, prefix: str, dest: Path) -> None:
    for key in _keys(s3, prefix):
        target = dest / key[len(prefix):]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file("clipstream", key, str(target))


def test_a_long_clip_encodes_in_chunks_and_plays_as_one_stream(uploader, long_clip, chunking, sfn, s3,
                                                               client, tmp_path):
    vid = uploader(long_clip)
    row = wait_for_final(vid, 240)
    assert (row["status"], row["processing_index"]) == ("complete", 0), row["failure_reason"]
    events = _history(sfn, vid)
    entered = _entered(events)
    assert {"LadderPlan", "LadderChunks", "LadderStitch", "Speech", "Finalize"} <= set(entered)
    assert "Ladder" not in entered                 # the single pass did not run
    # 22 s in 8 s chunks on the 4 s grid: [0, 8), [8, 16), [16, 22) (a tail under 4 s would
    # join its neighbour; 6 s stays its own). No audio item: dedup handed the AAC over.
    plan = json.loads(next(e for e in events if e.get("stateExitedEventDetails", {}).get("name") == "LadderPlan")
                      ["stateExitedEventDetails"]["output"])["ladder"]["plan"]
    assert plan["chunks"] == 3 and [i["part"] for i in plan["items"]] == ["video"] * 3
    assert [i["start_frame"] for i in plan["items"][:3]] == [0, 240, 480]
    assert plan["concurrency"] == (os.cpu_count() or 1)
    assert max(len(e.get("stateEnteredEventDetails", {}).get("input", "")) for e in events) < 8 * 1024
    runs = [r for r in _runs(vid) if r["stage"] == "transcode_chunk"]
    assert len(runs) == 3 and {r["status"] for r in runs} == {"succeeded"}
    # The chunks wrote the final segments; what they reported to the stitch is small.
    stitch_in = next(e for e in events if e.get("stateEnteredEventDetails", {}).get("name") == "LadderStitch")
    parts = json.loads(stitch_in["stateEnteredEventDetails"]["input"])["ladder"]["parts"]
    assert [p["first"] for p in parts] == [0, 2, 4] and len(json.dumps(parts)) < 1024
    # The parts are gone; the layout is the single pass's.
    prefix = f"processed-videos/{vid}/"
    keys = _keys(s3, prefix)
    assert not [k for k in keys if "/tmp/" in k]
    assert {f"{prefix}master.m3u8", f"{prefix}360p.m3u8", f"{prefix}manifest.mpd",
            f"{prefix}segments/360p_init.mp4", f"{prefix}segments/360p_00005.m4s"} <= keys
    assert any("storyboard" in k for k in keys)
    assert _keys(s3, f"thumbnails/{vid}")
    # It plays as one stream: no decode error, continuous timestamps, every frame, the audio whole.
    _download(s3, prefix, tmp_path)
    report = decode_report(tmp_path / "360p.m3u8")
    assert report["returncode"] == 0 and report["errors"] == "", report["errors"]
    video, audio = report["streams"][0], report["streams"][1]
    assert video["gaps"] == [] and audio["gaps"] == []
    assert video["frames"] == LENGTH_S * FPS
    assert abs(video["duration_s"] - LENGTH_S) <= 1 / FPS
    # AAC comes in 1024-sample frames and FFmpeg's encoder adds one priming frame, as in the
    # single pass: the track ends within two AAC frames of the clip, with no gap inside.
    assert 0 <= audio["duration_s"] - LENGTH_S <= 2 * 1024 / 48000
    segments = [line for line in (tmp_path / "360p.m3u8").read_text().splitlines() if line.startswith("#EXTINF")]
    assert [float(s[8:].split(",")[0]) for s in segments[:-1]] == [4.0] * (len(segments) - 1)
    status = client.http.get(f"/videos/{vid}/stream", headers=uploader.me["headers"]).status_code
    assert status == 200


def test_a_chunk_failing_once_is_retried(uploader, long_clip, chunking, sfn, s3):
    from chalicelib.pipeline.step import TransientStepError
    from infra.local.emulator import DISPATCHER

    before = DISPATCHER.invocations[CHUNK_FN]
    DISPATCHER.inject_fault(CHUNK_FN, TransientStepError("chunk Lambda lost its network"), times=1)
    vid = uploader(long_clip, title="a chunk fails once")
    row = wait_for_final(vid, 240)
    assert row["status"] == "complete", row["failure_reason"]
    assert DISPATCHER.pending_faults(CHUNK_FN) == 0
    assert DISPATCHER.invocations[CHUNK_FN] - before == 3 + 1      # three chunks, one retry
    events = _history(sfn, vid)
    failed = [e for e in events if "Failed" in e["type"]]
    assert len(failed) == 1, [e["type"] for e in events]       # the one chunk, then its retry
    assert failed[0]["type"] == "TaskFailed" and "TransientStepError" in json.dumps(failed[0], default=str)
    assert "ExecutionFailed" not in {e["type"] for e in events}
    assert not [k for k in _keys(s3, f"processed-videos/{vid}/") if "/tmp/" in k]


def test_a_chunk_failing_for_good_fails_the_video_and_deleting_it_leaves_nothing(
        uploader, long_clip, chunking, s3, client):
    from chalicelib.pipeline.step import PermanentStepError
    from infra.local.emulator import DISPATCHER

    DISPATCHER.inject_fault(CHUNK_FN, PermanentStepError("the chunk's frames would not decode"), times=1)
    vid = uploader(long_clip, title="a chunk fails")
    row = wait_for_final(vid, 240)
    assert (row["status"], row["failed_stage"]) == ("failed", "transcode"), row
    resp = client.http.delete(f"/videos/{vid}", headers=uploader.me["headers"])
    assert resp.status_code in (200, 204), resp.body
    assert not _keys(s3, f"processed-videos/{vid}/")


def test_chunks_start_on_the_keyframe_grid():
    from chalicelib.config import parse_chunk_seconds
    from chalicelib.media import chunks
    from chalicelib.media.hls import output_fps

    ntsc = output_fps(29.97)
    plan = chunks.plan(61.0, ntsc, 8)
    # 61 s: chunks at 0, 8, ..., 56 s; the last runs to the end (5 s, more than a segment).
    assert [c.start_frame for c in plan] == [chunks.grid_frame(s, ntsc) for s in range(0, 57, 8)]
    assert plan[1].start_frame == 240 and plan[2].start_frame == 480       # ceil(8 * 29.97) = 240
    assert plan[-1].frames == 0 and all(c.frames > 0 for c in plan[:-1])
    # A tail shorter than one segment joins the chunk before it.
    assert len(chunks.plan(18.0, Fraction(30), 8)) == 2
    assert [c.start_frame for c in chunks.plan(18.0, Fraction(30), 8)] == [0, 240]
    with pytest.raises(ValueError):
        chunks.plan(60.0, Fraction(30), 6)
    assert parse_chunk_seconds(None) == 16 and parse_chunk_seconds("12") == 12
    for bad in ("6", "0", "-4"):
        with pytest.raises(ValueError, match="CHUNK_SECONDS"):
            parse_chunk_seconds(bad)


def test_the_chunks_reports_keep_a_ten_minute_clip_far_under_the_state_limit():
    from chalicelib.media import chunks, hls
    from chalicelib.pipeline import transcode

    fps = hls.output_fps(59.94)
    plan = chunks.plan(600.0, fps, 16)
    ladder = hls.plan_ladder(1920, 1080, 59.94)
    parts = []
    for c in plan:
        n = 4 if c.frames else 2
        parts.append({"part": f"video{c.index:05d}", **chunks.ChunkSegments(
            first=chunks.first_segment(c, fps), durations=[4.004] * n,
            sizes={r.name: [9_999_999] * n for r in ladder}, codecs={r.name: "avc1.640028" for r in ladder},
            files=[], init_sizes={r.name: 1_500 for r in ladder}).summary()})
    state = {"ladder": {"plan": {"items": [c.to_dict() for c in plan], "chunks": len(plan)}, "parts": parts}}
    assert len(json.dumps(state)) < 32 * 1024           # Step Functions allows 256 KiB
    durations, sizes, codecs, inits = transcode.joined_parts({"chunks": len(plan)}, parts)
    assert len(durations) == len(sizes["1080p"]) == 150 and set(inits) == set(codecs)


def test_the_stitch_refuses_chunks_that_do_not_join():
    from chalicelib.media.errors import MediaError
    from chalicelib.pipeline import transcode

    part = {"first": 0, "durations": [4.0, 4.0], "sizes": {"360p": [1, 2]}, "codecs": {"360p": "avc1.64000d"}}
    transcode.joined_parts({"chunks": 2}, [part, {**part, "first": 2}])
    for parts, why in (([part, {**part, "first": 3}], "starts at segment 3"),       # a gap
                       ([part, {**part, "first": 1}], "starts at segment 1"),       # an overlap
                       ([part], "1 chunks reported"),
                       ([part, {**part, "first": 2, "codecs": {"360p": "avc1.640028"}}], "differ")):
        with pytest.raises(MediaError, match=why):
            transcode.joined_parts({"chunks": 2}, parts)
