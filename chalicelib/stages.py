"""processing_index, the contract's progress codes (reference/000), and the stage name of each.

1 dedup, 2 transcoding, 3 speech-to-text, 4 ai-analysis, then 0 complete or -1 duplicate.
The pipeline moves a video through them (chalicelib/pipeline/progress.py); the API and
live updates (chalicelib/live.py) name them.
"""
from __future__ import annotations

STAGE_NAMES = {1: "dedup", 2: "transcoding", 3: "speech-to-text", 4: "ai-analysis",
               0: "complete", -1: "duplicate"}
