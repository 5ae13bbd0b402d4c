"""The chunked ladder against the single pass on the same clip (issue 19, item 2).

Encodes one 1080p clip both ways with the pipeline's own code (media/hls.py,
media/chunks.py) and reports, per rendition, the chunked/single ratio of
average bitrate and of VMAF (the bundled FFmpeg's libvmaf, each rendition
scaled back to the source size and scored against the source), plus the
continuity of the chunked output (decode errors, timestamp gaps, frame count)
and the time to a complete ladder on this machine: the single pass, and the
chunks run `--concurrency` at a time (the Map's local MaxConcurrency: the
cores) with the audio item beside them, then the stitch.

    .venv/bin/python bench/chunked.py [--seconds 60] [--chunk 16]   # writes bench/results/chunked.json

Targets: bitrate and VMAF within 2 % of the single pass.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.media import chunks, hls  # noqa: E402
from chalicelib.media.ffmpeg import ffmpeg_exe  # noqa: E402
from chalicelib.media.probe import probe  # noqa: E402
from tests.media import clips  # noqa: E402
from tests.pipeline.test_chunked import decode_report  # noqa: E402

TARGET = 0.02


def vmaf(src: Path, playlist: Path, width: int, height: int, subsample: int) -> float:
    """Mean VMAF of a rendition (upscaled to the source size, as a player would) against the source.

    Every `subsample`-th frame is scored (the same frames for both encodes).
    """
    graph = (f"[0:v]scale={width}:{height}:flags=bicubic,setpts=PTS-STARTPTS,format=yuv420p[d];"
             f"[1:v]setpts=PTS-STARTPTS,format=yuv420p[r];"
             f"[d][r]libvmaf=n_threads={os.cpu_count()}:n_subsample={subsample}")
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(playlist), "-i", str(src),
                           "-filter_complex", graph, "-f", "null", "-"], capture_output=True, text=True)
    m = re.search(r"VMAF score: ([0-9.]+)", proc.stderr)
    if not m:
        raise RuntimeError(proc.stderr[-2000:])
    return float(m.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-vmaf", action="store_true")
    parser.add_argument("--vmaf-subsample", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = clips.make_clip(work / "src.mp4", scene="testsrc2", duration=args.seconds,
                              size=(1920, 1080), fps=30, seed=7)
        info = probe(src)
        fps = hls.output_fps(info.fps)
        plan = chunks.plan(info.duration_s, fps, args.chunk)

        start = time.perf_counter()
        single = hls.transcode_hls(src, work / "single", info, timeout_s=3600)
        single_s = time.perf_counter() - start

        start = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            jobs = [pool.submit(chunks.encode_video, src, work / "parts", info, c, timeout_s=3600) for c in plan]
            jobs.append(pool.submit(chunks.encode_audio, src, work / "parts", info, timeout_s=3600))
            for job in jobs:
                job.result()
        encoded_s = time.perf_counter() - start
        chunked = chunks.stitch(work / "parts", work / "chunked", info, len(plan), timeout_s=3600)
        chunked_s = time.perf_counter() - start

        print(f"single pass {single_s:.1f} s; chunks {encoded_s:.1f} s, with the stitch {chunked_s:.1f} s "
              f"(load average {os.getloadavg()[0]:.1f})", flush=True)
        report = decode_report(work / "chunked" / f"{chunked.renditions[-1].name}.m3u8")
        rungs = {}
        for s, c in zip(single.renditions, chunked.renditions, strict=True):
            row = {"single_avg_bps": s.avg_bandwidth, "chunked_avg_bps": c.avg_bandwidth,
                   "bitrate_ratio": round(c.avg_bandwidth / s.avg_bandwidth, 4)}
            if not args.no_vmaf:
                a = vmaf(src, work / "single" / s.playlist, info.width, info.height, args.vmaf_subsample)
                b = vmaf(src, work / "chunked" / c.playlist, info.width, info.height, args.vmaf_subsample)
                row.update(single_vmaf=round(a, 3), chunked_vmaf=round(b, 3), vmaf_ratio=round(b / a, 4))
            rungs[s.name] = row
            print(s.name, row, flush=True)
        out = {
            "clip": f"{args.seconds:g} s 1920x1080 30 fps testsrc2 + audio bed",
            "chunk_s": args.chunk, "vmaf_subsample": args.vmaf_subsample,
            "load_average_after": round(os.getloadavg()[0], 1), "chunks": len(plan), "concurrency": args.concurrency,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "single_pass_s": round(single_s, 2),
            "chunked_s": {"encode": round(encoded_s, 2), "with_stitch": round(chunked_s, 2)},
            "chunked_over_single_time": round(chunked_s / single_s, 3),
            "durations_s": {"single": single.duration_s, "chunked": chunked.duration_s},
            "continuity": {"errors": report["errors"], "streams": {
                i: {"frames": st["frames"], "gaps": len(st["gaps"]), "duration_s": round(st["duration_s"], 3)}
                for i, st in report["streams"].items()}},
            "renditions": rungs,
            "target": f"bitrate and VMAF within {TARGET:.0%} of the single pass",
            "met": all(abs(r["bitrate_ratio"] - 1) <= TARGET and abs(r.get("vmaf_ratio", 1) - 1) <= TARGET
                       for r in rungs.values()),
        }
        print(json.dumps(out, indent=2))
        (ROOT / "bench" / "results" / "chunked.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
