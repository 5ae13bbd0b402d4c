"""What the 360p rung adds to the transcode (issue 20, item 2).

The 360p rendition is one more encoder on the ladder's single decode
(`hls.LADDER`'s first rung). This times `hls.transcode_hls` on the same 1080p
clip, with the transcode step's side outputs (thumbnail candidates, speech WAV,
storyboard), with the full ladder and with the ladder minus 360p, interleaved,
and reports the median ratio of the FFmpeg child's CPU seconds (wall time beside it).

    .venv/bin/python bench/rung360.py [--seconds 20] [--runs 3]   # writes bench/results/rung360.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.storyboard import one_run  # noqa: E402
from chalicelib.media import hls  # noqa: E402
from chalicelib.media.probe import probe  # noqa: E402
from tests.media import clips  # noqa: E402

FULL = hls.LADDER
WITHOUT_360P = tuple(r for r in FULL if r[0] != 360)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = clips.make_clip(work / "src.mp4", scene="testsrc2", duration=args.seconds,
                              size=(1920, 1080), fps=30, seed=7)
        info = probe(src)
        try:
            for i in range(args.runs):
                for with_360 in ((True, False) if i % 2 == 0 else (False, True)):
                    hls.LADDER = FULL if with_360 else WITHOUT_360P
                    times[with_360].append(one_run(src, info, work, True))
                    print(f"run {i} 360p={with_360}: {times[with_360][-1][0]:.2f} s wall, "
                          f"{times[with_360][-1][1]:.2f} s CPU", flush=True)
        finally:
            hls.LADDER = FULL
    wall = {f: statistics.median(t[0] for t in times[f]) for f in times}
    cpu = {f: statistics.median(t[1] for t in times[f]) for f in times}
    out = {"clip": f"{args.seconds:g} s 1920x1080 testsrc2 30 fps with audio", "runs": args.runs,
           "ladder_without_360p_cpu_s": round(cpu[False], 3), "ladder_cpu_s": round(cpu[True], 3),
           "ladder_without_360p_wall_s": round(wall[False], 3), "ladder_wall_s": round(wall[True], 3),
           "samples": {"without_360p": [[round(w, 3), round(c, 3)] for w, c in times[False]],
                       "with_360p": [[round(w, 3), round(c, 3)] for w, c in times[True]]},
           "added_share": round(cpu[True] / cpu[False] - 1, 4),
           "added_share_wall": round(wall[True] / wall[False] - 1, 4),
           "machine": {"cores": os.cpu_count(), "python": platform.python_version()}}
    (ROOT / "bench" / "results" / "rung360.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
