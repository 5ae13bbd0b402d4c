"""Benchmark: one decode-once ffmpeg process vs one process per rendition.

Run: python -m tests.media.bench_hls [duration_s] [reverse]  (not collected by pytest)
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from chalicelib.media.hls import transcode_hls, transcode_hls_per_rendition
from chalicelib.media.probe import probe
from tests.media import clips


def main(duration: float = 60.0, reverse: bool = False) -> None:
    """Transcode a 1080p30 testsrc2 clip with audio both ways and print wall/CPU times."""
    with tempfile.TemporaryDirectory() as tmp:
        src = clips.make_clip(Path(tmp) / "src.mp4", scene="testsrc2", duration=duration,
                              size=(1920, 1080), fps=30)
        info = probe(src)
        print(f"source: {info.width}x{info.height} {info.fps} fps {info.duration_s} s, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        ways = [("single process (split)", transcode_hls),
                ("one process per rendition", transcode_hls_per_rendition)]
        for name, fn in reversed(ways) if reverse else ways:
            before = os.times()
            started = time.perf_counter()
            result = fn(src, Path(tmp) / name.replace(" ", "_"), info, timeout_s=3600)
            wall = time.perf_counter() - started
            after = os.times()
            cpu = (after.children_user - before.children_user
                   + after.children_system - before.children_system)
            print(f"{name}: wall {wall:.1f} s, CPU {cpu:.1f} s, "
                  f"{duration / wall:.2f}x realtime, {len(result.files)} files")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0, "reverse" in sys.argv[2:])
