"""POV matching across voice chat: precision, recall and offset error per condition.

Run: .venv/bin/python bench/pov_quality.py [--per-condition 6]
Builds the pairs of tests/ml/pov_pairs.py (one firefight bed under two players' voice
chats, offsets up to +-30 s, overlaps down to 5 s; negatives: one voice over two beds),
encodes each clip as AAC (what uploads carry), decodes it back to the 16 kHz speech WAV
and scores each pair with two matchers:
- chromaprint: what relate.py uses today (align() on the chromaprint sequence);
- bed: fingerprint.bed_fingerprint/align_bed (band energies, VAD-gated frames).
A pair is found when its score reaches the matcher's threshold AND the offset is
within 0.5 s; writes bench/results/pov_quality.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "pov_quality.json"
MAX_OFFSET_ERROR_S = 0.5


def _via_aac(samples, work: Path, name: str) -> Path:
    from chalicelib.media.ffmpeg import ffmpeg_exe, speech_wav_args
    from tests.ml.clips import write_wav

    wav = write_wav(work / f"{name}.wav", samples)
    m4a = work / f"{name}.m4a"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), "-c:a", "aac",
                    "-b:a", "96k", str(m4a)], check=True, timeout=120)
    back = work / f"{name}.16k.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(m4a), *speech_wav_args(),
                    str(back)], check=True, timeout=120)
    return m4a, back


def _score(pair, work: Path) -> dict:
    from chalicelib.media import fingerprint as fp
    from tests.ml.clips import SR

    out = {"pair": pair.name, "condition": pair.condition, "offset_s": pair.offset_s,
           "overlap_s": round(pair.overlap_s, 2), "seconds": round((len(pair.a) + len(pair.b)) / SR, 1)}
    (ma, wa), (mb, wb) = _via_aac(pair.a, work, pair.name + "-a"), _via_aac(pair.b, work, pair.name + "-b")
    # B's start in A's time: align(short, long) gives the short clip's start in the long one.
    b_is_short = len(pair.b) <= len(pair.a)

    def b_in_a(offset: float) -> float:
        return offset if b_is_short else -offset

    t = time.perf_counter()
    ca, cb = fp.audio_fingerprint(ma, 60), fp.audio_fingerprint(mb, 60)
    short, long_ = (cb, ca) if b_is_short else (ca, cb)
    chroma = fp.align(fp.MediaSignature(0, None, short), fp.MediaSignature(0, None, long_))
    out["chromaprint"] = {"score": chroma.score, "offset_s": round(b_in_a(chroma.offset_s), 3),
                          "matched": chroma.score >= fp.ALIGN_MIN_SCORE}
    t_chroma = time.perf_counter() - t
    t = time.perf_counter()
    ba, bb = fp.bed_fingerprint(fp.read_speech_wav(wa)), fp.bed_fingerprint(fp.read_speech_wav(wb))
    t_fp = time.perf_counter() - t
    short, long_ = (bb, ba) if b_is_short else (ba, bb)
    t = time.perf_counter()
    bed = fp.align_bed(short, long_)
    t_align = time.perf_counter() - t
    out["bed"] = {"score": bed.score, "offset_s": round(b_in_a(bed.offset_s), 3),
                  "matched": bed.score >= fp.BED_MIN_SCORE, "fingerprint_s": round(t_fp, 3),
                  "align_s": round(t_align, 4)}
    out["chromaprint"]["seconds"] = round(t_chroma, 3)
    for key in ("chromaprint", "bed"):
        r = out[key]
        if pair.offset_s is not None:
            r["offset_error_s"] = round(abs(r["offset_s"] - pair.offset_s), 3)
            r["found"] = r["matched"] and r["offset_error_s"] <= MAX_OFFSET_ERROR_S
    return out


def summarise(rows: list[dict]) -> dict:
    """Per matcher and condition: recall (positives), false matches (negatives), offset error."""
    summary: dict = {}
    for key in ("chromaprint", "bed"):
        per: dict = {}
        for cond in sorted({r["condition"] for r in rows}):
            rs = [r for r in rows if r["condition"] == cond]
            if rs[0]["offset_s"] is None:
                per[cond] = {"pairs": len(rs), "false_matches": sum(r[key]["matched"] for r in rs),
                             "max_score": max(r[key]["score"] for r in rs)}
            else:
                found = [r for r in rs if r[key]["found"]]
                per[cond] = {"pairs": len(rs), "recall": round(len(found) / len(rs), 3),
                             "min_score": min(r[key]["score"] for r in rs),
                             "max_offset_error_s_found": max(
                                 (r[key]["offset_error_s"] for r in found), default=None)}
        pos = [r for r in rows if r["offset_s"] is not None]
        matched = [r for r in rows if r[key]["matched"]]
        true = [r for r in pos if r[key]["found"]]
        per["all"] = {"recall": round(len(true) / len(pos), 3),
                      "precision": round(len(true) / len(matched), 3) if matched else None}
        summary[key] = per
    audio_s = sum(r["seconds"] for r in rows)
    summary["bed_fingerprint_rtf"] = round(sum(r["bed"]["fingerprint_s"] for r in rows) / audio_s, 5)
    summary["bed_align_s_per_pair"] = round(sum(r["bed"]["align_s"] for r in rows) / len(rows), 5)
    return summary


def main() -> None:
    from tests.ml import pov_pairs

    parser = argparse.ArgumentParser()
    parser.add_argument("--per-condition", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [_score(p, Path(tmp)) for p in pov_pairs.pairs(args.per_condition)]
    summary = summarise(rows)
    result = {"per_condition": args.per_condition, "load_average": os.getloadavg(),
              "summary": summary, "pairs": rows}
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    for row in rows:
        print(row["pair"], row["offset_s"], row["overlap_s"],
              "chroma", row["chromaprint"]["score"], row["chromaprint"]["offset_s"],
              "bed", row["bed"]["score"], row["bed"]["offset_s"])
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
