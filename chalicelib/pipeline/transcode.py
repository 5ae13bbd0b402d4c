"""Transcode step (processing_index 2): HLS ladder and thumbnails."""
from __future__ import annotations

from chalicelib.pipeline.step import Envelope, stage_step


@stage_step("transcode")
def run(event: Envelope) -> dict:
    """Interim: records the stage; the FFmpeg work lands with the media issue."""
    return {}
