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
# Long clips (settings.chunk_threshold_s): plan -> a Map of chunks, each writing its final
# segments (video + its share of dedup's whole-track AAC) -> stitch, which writes only the
# playlists, the MPD, the storyboard and the thumbnail: what run() publishes.

def chunks_its_ladder(duration_s: float | None) -> bool:
    """Whether a clip this long encodes in chunks (settings.chunk_threshold_s): plan and dedup ask."""
    from chalicelib.config import get_settings

    return float(duration_s or 0) >= get_settings().chunk_threshold_s


def plan(event: Envelope) -> dict:
    """Whether the Ladder branch encodes in chunks, and which: {"ladder_plan": {...}}, keys only.

    Reads what dedup recorded on the video (length, size, frame rate), so it
    downloads nothing. A transcode already done (a resumed execution), a short
    clip, or a clip with sound whose AAC dedup did not hand over takes the single pass.
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
    if not chunks_its_ladder(row["duration_s"]):
        return single
    if event.get("has_audio") and not event.get("ladder_audio"):
        return single
    if event.get("resume") and progress.succeeded_output(video_id, "transcode") is not None:
        return single
    fps = float(row["fps"]) if row["fps"] else None
    parts = chunks.plan(float(row["duration_s"]), hls.output_fps(fps), settings.chunk_s)
    return {"ladder_plan": {
        "chunked": True, "chunks": len(parts), "items": [{"part": "video", **c.to_dict()} for c in parts],
        "concurrency": settings.chunk_concurrency,
        "source": {"duration_s": float(row["duration_s"]), "width": int(row["width"]),
                   "height": int(row["height"]), "fps": fps,
                   "has_audio": bool(event.get("has_audio"))}}}


# A chunk's presigned source URL outlives its FFmpeg run (the function's 900 s timeout caps it).
SOURCE_URL_TTL_S = 3600


def parts_prefix(video_id: str) -> str:
    """The chunked ladder's hand-overs (dedup's AAC): under the video's prefix, so a delete removes leftovers."""
    return f"{storage.processed_prefix(video_id)}tmp/chunks/"


def ladder_audio_key(video_id: str, bitrate: int) -> str:
    """Where dedup leaves the whole-track AAC at `bitrate` for the chunks (the stitch deletes it)."""
    from chalicelib.media import chunks

    return parts_prefix(video_id) + chunks.audio_name(bitrate)


def ladder_audio_bitrates(info) -> list[int]:
    """The AAC bit rates the ladder of `info` uses (what dedup hands over for a chunked clip)."""
    from chalicelib.media import chunks, hls

    return chunks.audio_bitrates(hls.plan_ladder(info.width, info.height, info.fps))


def _source_info(source: dict):
    from chalicelib.media.probe import MediaInfo

    return MediaInfo(duration_s=source["duration_s"], width=source["width"], height=source["height"],
                     fps=source["fps"], video_codec=None, audio_codec=None, has_video=True,
                     has_audio=source["has_audio"], size_bytes=0, format_name="", bitrate=None)


def _part_name(event: Envelope) -> str:
    return f"video{int(event['part']['index']):05d}"


@stage_step("transcode_chunk", part=_part_name)
def encode_part(event: Envelope) -> dict:
    """One Map item: a chunk's final segments of every rung, stored under their final keys.

    Returns the chunk's numbering, segment durations and sizes (a few hundred bytes).
    A retried chunk writes the same keys again. Chunk 0 also stores the init segments.
    """
    from chalicelib.media import chunks
    from chalicelib.media.errors import InvalidMediaError, MediaTimeoutError

    video_id, part = event["video_id"], event["part"]
    info = _source_info(event["source"])
    chunk = chunks.Chunk.from_dict(part)
    # FFmpeg reads the upload and dedup's AAC through presigned URLs: with the seeks before
    # -i, only the container indexes and this chunk's own byte ranges travel.
    src = storage.presigned_get(event["key"], SOURCE_URL_TTL_S)
    audio = ({bps: storage.presigned_get(ladder_audio_key(video_id, bps), SOURCE_URL_TTL_S)
              for bps in ladder_audio_bitrates(info)} if info.has_audio else {})
    prefix = storage.processed_prefix(video_id)
    with media_io.workdir(video_id) as tmp:
        out = tmp / "hls"
        seconds = (chunk.frames / (info.fps or 30)) if chunk.frames else info.duration_s
        try:
            written = chunks.encode_segments(src, audio, out, info, chunk, timeout_s=media_io.ffmpeg_timeout(
                seconds, 8.0, floor_s=120))
        except (InvalidMediaError, MediaTimeoutError) as exc:
            raise PermanentStepError(f"transcode failed: {exc.reason}", public=exc.public) from None
        with media_io.Uploader() as up:
            for rel in written.files:
                if chunk.index == 0 or not rel.endswith("_init.mp4"):
                    up.submit(out / rel, prefix + rel)
            up.wait()
    return {"part": _part_name(event), **written.summary()}


def joined_parts(plan_: dict, parts: list[dict]) -> tuple[list[float], dict[str, list[int]], dict[str, str], dict]:
    """The chunks' outputs as one ladder: (durations, sizes per rung, codecs, init sizes); checks they join.

    The chunks must number their segments one after another from 0 and agree on
    the codecs (every chunk's fragments are read with chunk 0's init segment).
    """
    from chalicelib.media.errors import MediaError

    if len(parts) != plan_["chunks"]:
        raise MediaError(f"{len(parts)} chunks reported, {plan_['chunks']} planned")
    durations: list[float] = []
    sizes: dict[str, list[int]] = {}
    for part in parts:
        if part["first"] != len(durations):
            raise MediaError(f"a chunk starts at segment {part['first']}, expected {len(durations)}")
        if part["codecs"] != parts[0]["codecs"]:
            raise MediaError("the chunks' encodes differ")
        durations += part["durations"]
        for rung, seg in part["sizes"].items():
            sizes.setdefault(rung, []).extend(seg)
    return durations, sizes, parts[0]["codecs"], parts[0].get("init") or {}


@stage_step("transcode")
def stitch(event: Envelope) -> dict:
    """Publish the chunks' segments: playlists, master, MPD, storyboard, thumbnail; delete the hand-overs.

    No segment is copied: the chunks stored them under their final keys. The
    storyboard and thumbnail come from decoding the lowest rung (the smallest).
    """
    from chalicelib.media import chunks, dash, hls, storyboard
    from chalicelib.media.errors import InvalidMediaError, MediaError, MediaTimeoutError

    video_id, plan_ = event["video_id"], event["ladder_plan"]
    info = _source_info(plan_["source"])
    ladder = hls.plan_ladder(info.width, info.height, info.fps)
    fps = hls.output_fps(info.fps)
    prefix = storage.processed_prefix(video_id)
    try:
        durations, sizes, codecs, inits = joined_parts(plan_, event["parts"])
    except MediaError as exc:
        raise PermanentStepError(f"transcode failed: {exc.reason}", public=exc.public) from None
    with media_io.workdir(video_id) as tmp:
        out = tmp / "hls"
        try:
            result = hls.write_playlists(out, ladder, fps, info.has_audio, durations, sizes, codecs)
        except MediaError as exc:
            raise PermanentStepError(f"transcode failed: {exc.reason}", public=exc.public) from None
        lowest = tmp / "lowest.mp4"
        _join_rung(prefix, ladder[0].name, len(durations), lowest)
        side = _side_outputs(tmp, info)
        try:
            frame_times = chunks.side_outputs(lowest, out, fps, side, timeout_s=media_io.ffmpeg_timeout(
                info.duration_s, 1.0, floor_s=120))
        except (InvalidMediaError, MediaTimeoutError) as exc:
            raise PermanentStepError(f"transcode failed: {exc.reason}", public=exc.public) from None
        segments = [(prefix + rel, size, media_io.content_type(out / rel))
                    for rung, seg in sizes.items()
                    for rel, size in [(hls.init_segment_name(rung), inits.get(rung, 0)),
                                      *((hls.segment_name(rung, i), n) for i, n in enumerate(seg))]]
        frame = tmp / "thumbnail.jpg"
        _thumbnail(lowest, info, side, frame_times, frame)
        with media_io.Uploader() as up:
            up.submit(frame, storage.thumbnail_key(video_id))
            for rel in storyboard.finish(side.storyboard, out, result.duration_s):
                up.submit(out / rel, prefix + rel)
            up.submit(out / dash.write_mpd(out, result), prefix + dash.MPD_NAME)
            for rel in [r.playlist for r in result.renditions]:
                up.submit(out / rel, prefix + rel)
            up.wait()
            up.submit(out / result.master, prefix + result.master)   # the master last
            assets = up.wait()
            media_io.record_assets(video_id, segments + assets, asset_kind)
    storage.delete_prefix(parts_prefix(video_id))
    logger.info("stitched", extra={"video_id": video_id, "renditions": len(result.renditions),
                                   "segments": len(segments)})
    return _ladder_stored(video_id, result, info)


def _join_rung(prefix: str, rung: str, count: int, dest: Path) -> None:
    """The stored rung as one fragmented MP4 (its init segment, then every segment): to decode."""
    from concurrent.futures import ThreadPoolExecutor

    from chalicelib import aws
    from chalicelib.media import hls

    keys = [prefix + hls.init_segment_name(rung), *(prefix + hls.segment_name(rung, i) for i in range(count))]
    parts = [dest.parent / f"{dest.name}.{i}" for i in range(len(keys))]
    with ThreadPoolExecutor(8, thread_name_prefix="join") as pool:
        jobs = [pool.submit(aws.in_context(media_io.download), key, part)
                for key, part in zip(keys, parts, strict=True)]
        for job in jobs:
            job.result()
    with open(dest, "wb") as out:
        for part in parts:
            out.write(part.read_bytes())
            part.unlink()


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
    logger.info("transcoded", extra={"video_id": video_id, "renditions": len(result.renditions),
                                     "objects": len(assets)})
    return _ladder_stored(video_id, result, info)


def _ladder_stored(video_id: str, result, info) -> dict:
    """Record the stored ladder's length and rungs on the video; the Ladder branch's output."""
    # "bitrates" in the contract are the rendition heights: [360, 480, 720, 1080].
    progress.update_video(video_id, duration_s=result.duration_s,
                          bitrates=sorted(int(r.name.rstrip("p")) for r in result.renditions))
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
