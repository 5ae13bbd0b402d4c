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
    from chalicelib.media import dash, hls, probe, storyboard, thumbnails
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
        side = hls.SideOutputs(frames=tmp / "frames.rgb",
                               frame_times=tuple(thumbnails.candidate_times(info)),
                               frame_size=thumbnails.thumb_size(info),
                               storyboard=storyboard.plan(info.width, info.height, info.duration_s or 0.0))
        with media_io.Uploader() as up:
            try:
                result = hls.transcode_hls(
                    src, out, info, side=side,
                    on_segment=lambda rel: up.submit(out / rel, prefix + rel),
                    timeout_s=media_io.ffmpeg_timeout(info.duration_s, 8.0, floor_s=120))
            except (InvalidMediaError, MediaTimeoutError) as exc:
                raise PermanentStepError(f"transcode failed: {exc.reason}", public=exc.public) from None
            frame = tmp / "thumbnail.jpg"
            _thumbnail(src, info, side, result.frame_times, frame)
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
