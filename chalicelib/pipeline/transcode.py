"""Transcode step (processing_index 2): the HLS ladder and the final thumbnail.

Runs in the container image with FFmpeg in AWS. One FFmpeg process decodes
the upload once and encodes every rendition (measured faster than one process
per rendition: see bench/). Outputs follow reference/001:
processed-videos/{id}/{480p,720p,1080p,master}.m3u8 and segments/.
"""
from __future__ import annotations

import logging

from chalicelib import storage
from chalicelib.pipeline import media_io, progress
from chalicelib.pipeline.step import Envelope, PermanentStepError, stage_step

logger = logging.getLogger(__name__)


def asset_kind(key: str) -> str:
    if key.endswith("master.m3u8"):
        return "hls_master"
    if key.endswith(".m3u8"):
        return "hls_playlist"
    if key.endswith(".jpg"):
        return "thumbnail"
    return "hls_segment"


@stage_step("transcode")
def run(event: Envelope) -> dict:
    """Transcode the upload to HLS, store it and the thumbnail, record what was made."""
    from chalicelib.media import hls, probe, thumbnails
    from chalicelib.media.errors import InvalidMediaError, MediaTimeoutError

    video_id = event["video_id"]
    with media_io.workdir(video_id) as tmp:
        src = tmp / f"source.{event['key'].rsplit('.', 1)[-1]}"
        media_io.download(event["key"], src)
        out = tmp / "hls"
        try:
            info = probe.probe(src, timeout_s=30)
            result = hls.transcode_hls(src, out, info,
                                       timeout_s=media_io.ffmpeg_timeout(info.duration_s, 8.0, floor_s=120))
        except (InvalidMediaError, MediaTimeoutError) as exc:
            raise PermanentStepError(f"transcode failed: {exc.reason}") from None
        frame = tmp / "thumbnail.jpg"
        thumbnails.representative_frame(src, info, frame,
                                        timeout_s=media_io.ffmpeg_timeout(info.duration_s, 1.0))
        assets = media_io.upload_tree(out, result.files, storage.processed_prefix(video_id))
        thumb_key = storage.thumbnail_key(video_id)
        assets.append((thumb_key, media_io.upload_file(frame, thumb_key), "image/jpeg"))
    media_io.record_assets(video_id, assets, asset_kind)
    # "bitrates" in the contract are the rendition heights: [480, 720, 1080].
    progress.update_video(video_id, duration_s=result.duration_s,
                          bitrates=sorted(int(r.name.rstrip("p")) for r in result.renditions))
    logger.info("transcoded", extra={"video_id": video_id, "renditions": len(result.renditions),
                                     "objects": len(assets)})
    return {"hls": {"master_key": storage.master_playlist_key(video_id),
                    "renditions": [r.name for r in result.renditions]}}
