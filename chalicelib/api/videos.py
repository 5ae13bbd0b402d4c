"""Video reads: stream URLs (and, with the videos work, details, edits, deletion)."""
from __future__ import annotations

from chalicelib import access, storage
from chalicelib.api.processing import estimated_time
from chalicelib.errors import ClipstreamError, ConflictError, NotReadyError

RENDITIONS = (480, 720, 1080)


class ProcessingFailed(ClipstreamError):
    status = 422
    message = "Video processing failed"


def stream_urls(user: dict, video_id: str) -> dict:
    """HLS URLs of a complete video; 202 while processing (reference/000)."""
    video = access.require_video_access(user, video_id)
    if video["status"] == "failed":
        raise ProcessingFailed(failure_reason=video["failure_reason"],
                               processing_index=video["processing_index"])
    if video["processing_index"] == -1:
        raise ConflictError("Video is a duplicate", duplicate_of=str(video["duplicate_of"]))
    if video["processing_index"] != 0:
        raise NotReadyError("Video still processing", processing_index=video["processing_index"],
                            estimated_time=estimated_time(video["processing_index"]))
    return {"hls_url": storage.presigned_get(storage.master_playlist_key(str(video["id"]))),
            "dash_url": None,
            "bitrates": list(video["bitrates"] or [])}
