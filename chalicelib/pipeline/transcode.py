"""Transcode step (processing_index 2): the HLS ladder and the final thumbnail.

Runs in the container image with FFmpeg in AWS. One FFmpeg process decodes
the upload once and encodes every rendition (measured faster than one process
per rendition: see bench/). The same decode also feeds the thumbnail
candidates. The speech WAV the transcribe step reads comes from dedup's audio
decode, so transcription runs beside this step (stepfunctions/pipeline.asl.json). Segments are uploaded while FFmpeg still encodes;
init segments and playlists follow, the master playlist last. Outputs follow
reference/001: processed-videos/{id}/{360p,480p,720p,1080p,master}.m3u8 and segments/.
"""
from __future__ import annotations

import logging
from pathlib import Path

from chalicelib import storage
from chalicelib.pipeline import media_io, progress
from chalicelib.pipeline.step import Envelope, PermanentStepError, stage_step

logger = logging.getLogger(__name__)


def asset_kind(key: str) -> str:
    if key.endswith("master.m3u8"):
        return "hls_master"
    if key.endswith(".m3u8"):
        return "hls_playlist"
    if key.endswith(".mpd"):
        return "dash_manifest"
    if "/storyboard" in key:
        return "storyboard"
    if key.endswith(".jpg"):
        return "thumbnail"
    return "hls_segment"


@stage_step("transcode")
def run(event: Envelope) -> dict:
    """Transcode the upload to HLS and DASH, store it, the thumbnail and the storyboard; record assets."""
    from chalicelib.media import hls, probe
    from chalicelib.media.errors import InvalidMediaError, MediaTimeoutError

    video_id = event["video_id"]
    prefix = storage.processed_prefix(video_id)
    with media_io.workdir(video_id) as tmp:
        src = tmp / f"source.{event['key'].rsplit('.', 1)[-1]}"
        media_io.download(event["key"], src)
        out = tmp / "hls"
        try:
            info = probe.probe(src, timeout_s=30)
        except (InvalidMediaError, MediaTimeoutError) as exc:
            raise PermanentStepError(f"transcode failed: {exc.reason}", public=exc.public) from None
        side = _side_outputs(tmp, info)
        with media_io.Uploader() as up:
            try:
                result = hls.transcode_hls(
                    src, out, info, side=side,
                    on_segment=lambda rel: up.submit(out / rel, prefix + rel),
                    timeout_s=media_io.ffmpeg_timeout(info.duration_s, 8.0, floor_s=120))
            except (InvalidMediaError, MediaTimeoutError) as exc:
                raise PermanentStepError(f"transcode failed: {exc.reason}", public=exc.public) from None
            return _publish(video_id, up, out, result, info, side, thumbnail_src=src)


def _side_outputs(tmp: Path, info):
    """The thumbnail candidates and storyboard the ladder's decode also writes."""
    from chalicelib.media import hls, storyboard, thumbnails

    return hls.SideOutputs(frames=tmp / "frames.rgb",
                           frame_times=tuple(thumbnails.candidate_times(info)),
                           frame_size=thumbnails.thumb_size(info),
                           storyboard=storyboard.plan(info.width, info.height, info.duration_s or 0.0))


# ---------------------------------------------------------------- the chunked ladder
# Long clips (settings.chunk_threshold_s): plan -> a Map of parts (every chunk's video
# ladder, and the whole audio) -> stitch, which publishes exactly what run() does.

def plan(event: Envelope) -> dict:
    """Whether the Ladder branch encodes in chunks, and which: {"ladder_plan": {...}}, keys only.

    Reads what dedup recorded on the video (length, size, frame rate), so it
    downloads nothing. A transcode already done (a resumed execution) or a
    short clip takes the single pass.
    """
    from chalicelib import db
    from chalicelib.config import get_settings
    from chalicelib.media import chunks, hls

    settings = get_settings()
    video_id = event["video_id"]
    row = db.fetch_one("SELECT duration_s, width, height, fps FROM videos WHERE id = %s", (video_id,))
    single = {"ladder_plan": {"chunked": False}}
    if row is None or not row["duration_s"] or not row["width"] or not row["height"]:
        return single
    if float(row["duration_s"]) < settings.chunk_threshold_s:
        return single
    if event.get("resume") and progress.succeeded_output(video_id, "transcode") is not None:
        return single
    fps = float(row["fps"]) if row["fps"] else None
    parts = chunks.plan(float(row["duration_s"]), hls.output_fps(fps), settings.chunk_s)
    items = [{"part": "video", **c.to_dict()} for c in parts]
    if event.get("has_audio"):
        items.append({"part": "audio"})  # encoded once, whole, beside the video chunks
    return {"ladder_plan": {
        "chunked": True, "chunks": len(parts), "items": items,
        "concurrency": settings.chunk_concurrency,
        "source": {"duration_s": float(row["duration_s"]), "width": int(row["width"]),
                   "height": int(row["height"]), "fps": fps,
                   "has_audio": bool(event.get("has_audio"))}}}


# A chunk's presigned source URL outlives its FFmpeg run (the function's 900 s timeout caps it).
SOURCE_URL_TTL_S = 3600


def parts_prefix(video_id: str) -> str:
    """Where the chunks wait for the stitch: under the video's prefix, so a delete removes leftovers."""
    return f"{storage.processed_prefix(video_id)}tmp/chunks/"


def _source_info(source: dict):
    from chalicelib.media.probe import MediaInfo

    return MediaInfo(duration_s=source["duration_s"], width=source["width"], height=source["height"],
                     fps=source["fps"], video_codec=None, audio_codec=None, has_video=True,
                     has_audio=source["has_audio"], size_bytes=0, format_name="", bitrate=None)


def _part_name(event: Envelope) -> str:
    part = event["part"]
    return "audio" if part["part"] == "audio" else f"video{int(part['index']):05d}"


@stage_step("transcode_chunk", part=_part_name)
def encode_part(event: Envelope) -> dict:
    """One Map item: a chunk's whole video ladder, or the whole audio; stored under parts_prefix."""
    from chalicelib.media import chunks
    from chalicelib.media.errors import InvalidMediaError, MediaTimeoutError

    video_id, part = event["video_id"], event["part"]
    info = _source_info(event["source"])
    prefix = parts_prefix(video_id)
    # FFmpeg reads the upload through its presigned URL: a video chunk seeks before -i, so
    # only the container index and its own byte ranges travel, never the whole upload.
    src = storage.presigned_get(event["key"], SOURCE_URL_TTL_S)
    with media_io.workdir(video_id) as tmp:
        out = tmp / "parts"
        try:
            if part["part"] == "audio":
                names = chunks.encode_audio(src, out, info, timeout_s=media_io.ffmpeg_timeout(
                    info.duration_s, 2.0, floor_s=120))
            else:
                chunk = chunks.Chunk.from_dict(part)
                seconds = (chunk.frames / (info.fps or 30)) if chunk.frames else info.duration_s
                names = chunks.encode_video(src, out, info, chunk, timeout_s=media_io.ffmpeg_timeout(
                    seconds, 8.0, floor_s=120))
        except (InvalidMediaError, MediaTimeoutError) as exc:
            raise PermanentStepError(f"transcode failed: {exc.reason}", public=exc.public) from None
        with media_io.Uploader() as up:
            for name in names:
                up.submit(out / name, prefix + name)
            up.wait()
    return {"part": _part_name(event), "objects": len(names)}


@stage_step("transcode")
def stitch(event: Envelope) -> dict:
    """Join the parts into the single pass's layout (-c copy), publish it, delete the parts."""
    from chalicelib.media import chunks, hls
    from chalicelib.media.errors import InvalidMediaError, MediaTimeoutError

    video_id, plan_ = event["video_id"], event["ladder_plan"]
    info = _source_info(plan_["source"])
    ladder = hls.plan_ladder(info.width, info.height, info.fps)
    names = [chunks.video_name(r.name, c) for r in ladder for c in range(plan_["chunks"])]
    if info.has_audio:
        names += [chunks.audio_name(bps) for bps in chunks.audio_bitrates(ladder)]
    prefix = parts_prefix(video_id)
    with media_io.workdir(video_id) as tmp:
        parts = tmp / "parts"
        parts.mkdir()
        for name in names:
            media_io.download(prefix + name, parts / name)
        side = _side_outputs(tmp, info)
        out = tmp / "hls"
        try:
            result = chunks.stitch(parts, out, info, plan_["chunks"], side=side,
                                   timeout_s=media_io.ffmpeg_timeout(info.duration_s, 1.0, floor_s=120))
        except (InvalidMediaError, MediaTimeoutError) as exc:
            raise PermanentStepError(f"transcode failed: {exc.reason}", public=exc.public) from None
        with media_io.Uploader() as up:
            output = _publish(video_id, up, out, result, info, side,
                              thumbnail_src=parts / chunks.video_name(ladder[-1].name, 0))
    storage.delete_prefix(prefix)
    return output


def _publish(video_id: str, up: media_io.Uploader, out: Path, result, info, side,
             thumbnail_src: Path) -> dict:
    """Store the ladder in `out` with its thumbnail, DASH MPD and storyboard; record it; the step's output."""
    from chalicelib.media import dash, storyboard

    prefix = storage.processed_prefix(video_id)
    frame = out.parent / "thumbnail.jpg"
    _thumbnail(thumbnail_src, info, side, result.frame_times, frame)
    up.submit(frame, storage.thumbnail_key(video_id))
    _store_ladder(up, out, prefix, result)
    # The DASH MPD names the same segments: it goes up once they are all stored.
    up.submit(out / dash.write_mpd(out, result), prefix + dash.MPD_NAME)
    for rel in storyboard.finish(side.storyboard, out, result.duration_s):
        up.submit(out / rel, prefix + rel)  # scrub-bar previews, from the same decode
    assets = up.wait()
    media_io.record_assets(video_id, assets, asset_kind)
    # "bitrates" in the contract are the rendition heights: [360, 480, 720, 1080].
    progress.update_video(video_id, duration_s=result.duration_s,
                          bitrates=sorted(int(r.name.rstrip("p")) for r in result.renditions))
    logger.info("transcoded", extra={"video_id": video_id, "renditions": len(result.renditions),
                                     "objects": len(assets)})
    return {"hls": {"master_key": storage.master_playlist_key(video_id),
                    "renditions": [r.name for r in result.renditions]},
            "dash": {"manifest_key": storage.dash_manifest_key(video_id)},
            "has_audio": info.has_audio}


def _store_ladder(up: media_io.Uploader, out: Path, prefix: str, result) -> list[tuple[str, int, str]]:
    """Upload what the watcher has not (last segments, init segments), then the playlists.

    A playlist goes up only once every segment it names is stored, the master
    last, so a player never finds a playlist pointing at a missing object.
    Returns every object the uploader stored.
    """
    playlists = [f for f in result.files if f.endswith(".m3u8")]
    for rel in result.files:
        if rel not in playlists:
            up.submit(out / rel, prefix + rel)
    up.wait()
    for group in ([f for f in playlists if f != result.master], [result.master]):
        for rel in group:
            up.submit(out / rel, prefix + rel)
        stored = up.wait()
    return stored


def _thumbnail(src: Path, info, side, frame_times: list[float], out_jpg: Path) -> None:
    """Pick the thumbnail from the frames the transcode wrote; seek in the source if it wrote none."""
    from chalicelib.media import thumbnails
    from chalicelib.media.errors import InvalidMediaError

    try:
        thumbnails.best_raw_frame(side.frames, side.frame_size, frame_times, out_jpg)
        return
    except (InvalidMediaError, FileNotFoundError):
        logger.warning("no thumbnail candidates from the transcode; seeking in the source")
    thumbnails.representative_frame(src, info, out_jpg,
                                    timeout_s=media_io.ffmpeg_timeout(info.duration_s, 1.0))
