"""Embed step (processing_index 4): segment and clip vectors for search and relations."""
from __future__ import annotations

from chalicelib.pipeline.step import Envelope, stage_step


@stage_step("embed")
def run(event: Envelope) -> dict:
    """Interim: records the stage; the model work lands with the ML issue."""
    return {}
