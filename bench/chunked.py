"""The chunked ladder against the single pass on the same clip (issue 19, item 2).

Encodes one 1080p clip both ways with the pipeline's own code and reports, per
rendition, the chunked/single ratio of average bitrate and of VMAF (the bundled
FFmpeg's libvmaf, each rendition scaled back to the source size and scored
against the source), the continuity of every chunked rendition (decode errors,
timestamp gaps, frame count, the audio whole) and the time to a complete ladder.

The chunked path is the product's: dedup's audio decode also encodes the
whole-track AAC (fingerprint.audio_fingerprint with `aac`, as dedup calls it),
then each Map item runs chunks.encode_segments (its final segments, placed on
the clip's timeline), `--concurrency` at a time (the Map's local
MaxConcurrency: the cores), then the stitch: transcode.joined_parts,
hls.write_playlists, dash.write_mpd, and the storyboard and thumbnail
candidates from the lowest rung (chunks.side_outputs). The single pass is
hls.transcode_hls with the same side outputs, plus dash.write_mpd (the short
clips' Ladder step). Both times start after dedup; the AAC's cost inside dedup
is reported on its own (`dedup_audio_s`: the same decode with and without it).

    .venv/bin/python bench/chunked.py [--seconds 60] [--chunk 16 [8 4 ...]]   # bench/results/chunked.json

Several chunk lengths share one single pass. The file keeps earlier results
under `earlier_runs`. Targets: bitrate and VMAF within 2 % of the single pass.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.media import chunks, dash, fingerprint, hls  # noqa: E402
from chalicelib.media.ffmpeg import ffmpeg_exe  # noqa: E402
from chalicelib.media.probe import probe  # noqa: E402
from chalicelib.pipeline import transcode  # noqa: E402
from tests.media import clips  # noqa: E402
from tests.pipeline.test_chunked import decode_report  # noqa: E402

TARGET = 0.02
RESULT = ROOT / "bench" / "results" / "chunked.json"


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


def dedup_aac(src: Path, info, work: Path) -> tuple[dict[int, Path], dict[str, float]]:
    """Dedup's audio decode with the ladder's AAC (what the chunks read), and its cost over the decode alone."""
    timings = {}
    start = time.perf_counter()
    fingerprint.audio_fingerprint(src, 600, work / "speech_alone.wav")
    timings["without_aac"] = round(time.perf_counter() - start, 2)
    aac = {bps: work / f"audio_{bps}.m4a" for bps in transcode.ladder_audio_bitrates(info)}
    start = time.perf_counter()
    fingerprint.audio_fingerprint(src, 600, work / "speech.wav", aac=aac)
    timings["with_aac"] = round(time.perf_counter() - start, 2)
    return aac, timings


def single_pass(src: Path, work: Path, info) -> tuple[hls.HlsResult, float]:
    """The short clips' Ladder step: one FFmpeg for the ladder and its side outputs, then the MPD."""
    out = work / "single"
    start = time.perf_counter()
    side = transcode._side_outputs(work / "single_side", info)
    (work / "single_side").mkdir(exist_ok=True)
    result = hls.transcode_hls(src, out, info, side=side, timeout_s=3600)
    dash.write_mpd(out, result)
    return result, time.perf_counter() - start


def chunked_ladder(src: Path, aac: dict[int, Path], work: Path, info, chunk_s: int,
                   concurrency: int) -> tuple[hls.HlsResult, Path, dict]:
    """The Map of chunks then the stitch, on local files; (result, ladder dir, timings)."""
    fps = hls.output_fps(info.fps)
    plan = chunks.plan(info.duration_s, fps, chunk_s)
    ladder = hls.plan_ladder(info.width, info.height, info.fps)
    out = work / f"chunked{chunk_s}"
    start = time.perf_counter()

    def item(c: chunks.Chunk) -> dict:
        # Each Map item encodes in its own scratch directory and stores its files under the
        # final keys (here: moves them into the ladder's folder); chunk 0 stores the inits.
        tmp = work / f"item{chunk_s}_{c.index:05d}"
        written = chunks.encode_segments(src, aac if info.has_audio else {}, tmp, info, c, timeout_s=3600)
        for rel in written.files:
            if c.index == 0 or not rel.endswith("_init.mp4"):
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.move(tmp / rel, out / rel)
        shutil.rmtree(tmp)
        return {"part": f"video{c.index:05d}", **written.summary()}

    with ThreadPoolExecutor(concurrency) as pool:
        parts = list(pool.map(item, plan))
    encoded = time.perf_counter() - start
    plan_ = {"chunks": len(plan)}
    durations, sizes, codecs, _inits = transcode.joined_parts(plan_, parts)
    result = hls.write_playlists(out, ladder, fps, info.has_audio, durations, sizes, codecs)
    dash.write_mpd(out, result)
    lowest = work / f"lowest{chunk_s}.mp4"
    with open(lowest, "wb") as f:       # the stitch's _join_rung, from local files
        for rel in [f"segments/{ladder[0].name}_init.mp4",
                    *(f"segments/{ladder[0].name}_{i:05d}.m4s" for i in range(len(durations)))]:
            f.write((out / rel).read_bytes())
    side = transcode._side_outputs(work / f"side{chunk_s}", info)
    (work / f"side{chunk_s}").mkdir(exist_ok=True)
    chunks.side_outputs(lowest, out, fps, side, timeout_s=3600)
    total = time.perf_counter() - start
    return result, out, {"chunks": len(plan), "encode": round(encoded, 2),
                         "stitch": round(total - encoded, 2), "total": round(total, 2)}


def continuity(playlist: Path, seconds: float, fps: int) -> dict:
    """decode_report of one rendition, summarised: what tests/pipeline/test_chunked asserts."""
    report = decode_report(playlist)
    video, audio = report["streams"].get(0, {}), report["streams"].get(1, {})
    return {"errors": report["errors"], "returncode": report["returncode"],
            "video_frames": video.get("frames"), "video_gaps": len(video.get("gaps", [])),
            "video_duration_s": round(video.get("duration_s", 0), 3),
            "audio_gaps": len(audio.get("gaps", [])), "audio_duration_s": round(audio.get("duration_s", 0), 3),
            "every_frame": video.get("frames") == round(seconds * fps),
            "audio_whole": bool(audio) and not audio["gaps"]
            and 0 <= audio["duration_s"] - seconds <= 2 * 1024 / 48000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--chunk", type=int, nargs="+", default=[16], help="chunk lengths (s) to measure")
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-vmaf", action="store_true")
    parser.add_argument("--vmaf-subsample", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    fps = 30
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = clips.make_clip(work / "src.mp4", scene="testsrc2", duration=args.seconds,
                              size=(1920, 1080), fps=fps, seed=7)
        info = probe(src)
        aac, dedup_audio = dedup_aac(src, info, work)
        print(f"dedup's audio decode {dedup_audio}", flush=True)
        single, single_s = single_pass(src, work, info)
        print(f"single pass {single_s:.1f} s (load average {os.getloadavg()[0]:.1f})", flush=True)
        single_rungs = {}
        for s in single.renditions:
            single_rungs[s.name] = {"avg_bps": s.avg_bandwidth}
            if not args.no_vmaf:
                single_rungs[s.name]["vmaf"] = round(vmaf(src, work / "single" / s.playlist, info.width,
                                                          info.height, args.vmaf_subsample), 3)
            print("single", s.name, single_rungs[s.name], flush=True)
        runs = []
        for chunk_s in args.chunk:
            chunked, out, timing = chunked_ladder(src, aac, work, info, chunk_s, args.concurrency)
            load = round(os.getloadavg()[0], 1)
            print(f"chunk {chunk_s} s: {timing} (load average {load})", flush=True)
            rungs = {}
            for s, c in zip(single.renditions, chunked.renditions, strict=True):
                row = {"single_avg_bps": s.avg_bandwidth, "chunked_avg_bps": c.avg_bandwidth,
                       "bitrate_ratio": round(c.avg_bandwidth / s.avg_bandwidth, 4)}
                if not args.no_vmaf:
                    a = single_rungs[s.name]["vmaf"]
                    b = vmaf(src, out / c.playlist, info.width, info.height, args.vmaf_subsample)
                    row.update(single_vmaf=a, chunked_vmaf=round(b, 3), vmaf_ratio=round(b / a, 4))
                row["continuity"] = continuity(out / c.playlist, args.seconds, fps)
                rungs[s.name] = row
                print(chunk_s, s.name, row, flush=True)
            runs.append({
                "chunk_s": chunk_s, "chunks": timing["chunks"],
                "chunked_s": {k: timing[k] for k in ("encode", "stitch", "total")},
                "chunked_over_single_time": round(timing["total"] / single_s, 3),
                "load_average_after": load, "duration_s": chunked.duration_s,
                "renditions": rungs,
                "met": all(abs(r["bitrate_ratio"] - 1) <= TARGET and abs(r.get("vmaf_ratio", 1) - 1) <= TARGET
                           and r["continuity"]["errors"] == "" and r["continuity"]["video_gaps"] == 0
                           and r["continuity"]["every_frame"] and r["continuity"]["audio_whole"]
                           for r in rungs.values()),
            })
    result = {
        "path": "dedup's whole-track AAC + chunks.encode_segments per chunk (final segments) + the stitch's "
                "playlists, MPD and side outputs from the lowest rung; against hls.transcode_hls + MPD",
        "clip": f"{args.seconds:g} s 1920x1080 {fps} fps testsrc2 + audio bed",
        "vmaf_subsample": args.vmaf_subsample, "concurrency": args.concurrency,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "dedup_audio_s": dedup_audio,
        "single_pass_s": round(single_s, 2), "single_duration_s": single.duration_s,
        "runs": runs,
        "target": f"bitrate and VMAF within {TARGET:.0%} of the single pass on every rendition, "
                  "and every rendition plays through (no decode error or gap, every frame, the audio whole)",
    }
    earlier = []
    if args.out.exists():
        previous = json.loads(args.out.read_text())
        earlier = previous.pop("earlier_runs", [])
        earlier.insert(0, previous)
    result["earlier_runs"] = earlier
    print(json.dumps({k: v for k, v in result.items() if k != "earlier_runs"}, indent=2))
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
