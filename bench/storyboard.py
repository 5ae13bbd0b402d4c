"""What the scrub-bar storyboard adds to the transcode's decode pass (issue 20: at most 5 %).

The storyboard is an extra branch of the ladder's FFmpeg filter graph
(`hls.SideOutputs.storyboard`): every interval's frame, scaled to 160 px and
tiled into JPEG sheets. This times `hls.transcode_hls` on the same 1080p clip
with the side outputs the transcode step asks for (thumbnail candidates, the
speech WAV) with and without the storyboard branch, interleaved (with, without,
without, with ...), and reports the median ratio.

    .venv/bin/python bench/storyboard.py [--seconds 30] [--runs 3]   # writes bench/results/storyboard.json
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.media import hls, storyboard, thumbnails  # noqa: E402
from chalicelib.media.probe import probe  # noqa: E402
from tests.media import clips  # noqa: E402

TARGET = 0.05


def one_run(src: Path, info, work: Path, with_storyboard: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the FFmpeg child) of one transcode."""
    side = hls.SideOutputs(frames=work / "frames.rgb", frame_times=tuple(thumbnails.candidate_times(info)),
                           frame_size=thumbnails.thumb_size(info), speech_wav=work / "speech.wav",
                           storyboard=storyboard.plan(info.width, info.height, info.duration_s)
                           if with_storyboard else None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = hls.transcode_hls(src, work / "out", info, side=side, timeout_s=1800)
    if with_storyboard:
        assert storyboard.finish(side.storyboard, work / "out", result.duration_s)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = clips.make_clip(work / "src.mp4", scene="testsrc2", duration=args.seconds,
                              size=(1920, 1080), fps=30, seed=7)
        info = probe(src)
        times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for i in range(args.runs):
            order = (True, False) if i % 2 == 0 else (False, True)
            for flag in order:
                times[flag].append(one_run(src, info, work, flag))
                print(f"run {i} storyboard={flag}: {times[flag][-1][0]:.2f} s wall, "
                      f"{times[flag][-1][1]:.2f} s CPU", flush=True)
    wall = {f: statistics.median(t[0] for t in times[f]) for f in times}
    cpu = {f: statistics.median(t[1] for t in times[f]) for f in times}
    # CPU seconds are the figure that matters on a shared machine (wall time moves with other load)
    # and the one Lambda bills in the end; wall time is reported beside it.
    added = cpu[True] / cpu[False] - 1
    out = {"clip": f"{args.seconds:g} s 1920x1080 testsrc2 30 fps with audio", "runs": args.runs,
           "transcode_cpu_s": round(cpu[False], 3), "transcode_with_storyboard_cpu_s": round(cpu[True], 3),
           "transcode_wall_s": round(wall[False], 3), "transcode_with_storyboard_wall_s": round(wall[True], 3),
           "samples": {"without": [[round(w, 3), round(c, 3)] for w, c in times[False]],
                       "with": [[round(w, 3), round(c, 3)] for w, c in times[True]]},
           "added_share": round(added, 4), "added_share_wall": round(wall[True] / wall[False] - 1, 4),
           "target": TARGET, "met": added <= TARGET,
           "machine": {"cores": __import__("os").cpu_count(), "python": platform.python_version()}}
    (ROOT / "bench" / "results" / "storyboard.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
